"""Adapter switching cost on the offline default models, from one run, side by side:

1. switch between two adapters already loaded on the resident model (what a worker does between
   jobs of different brands once both are cached);
2. load an adapter from storage: download into an empty cache, verify, load onto the resident model;
3. reload the base model and load the adapter onto it (what a worker without named adapters would do).

Run: python bench/adapters.py [--repeats 20]. Prints seconds per operation and the ratios; the goal is
a cached switch at least 20x faster than a reload. Then, in a fresh process, the memory a worker child
needs: resident set after loading the text, image and inpainting models and the judge, and after 8
text and 4 image brand adapters are loaded onto them (peak and current, MiB).
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


def _timed(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _stock_adapters(paths: dict, folder: Path, count: dict | None = None) -> dict[str, list[Path]]:
    """Text and image adapters (two of each unless `count` says) made with stock peft / diffusers
    code (random, non-zero)."""
    from diffusers import AutoPipelineForText2Image
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    count = count or {"text": 2, "image": 2}
    made: dict[str, list[Path]] = {"text": [], "image": []}
    for i in range(count["text"]):
        torch.manual_seed(i)
        text = get_peft_model(AutoModelForCausalLM.from_pretrained(paths["text"]),
                              LoraConfig(r=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False))
        text.save_pretrained(folder / f"text-{i}")
        made["text"].append(folder / f"text-{i}")
    for i in range(count["image"]):
        torch.manual_seed(i)
        pipe = AutoPipelineForText2Image.from_pretrained(paths["image"])
        pipe.unet.add_adapter(LoraConfig(r=8, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights="gaussian"))
        type(pipe).save_lora_weights(folder / f"image-{i}", unet_lora_layers=convert_state_dict_to_diffusers(
            get_peft_model_state_dict(pipe.unet)))
        made["image"].append(folder / f"image-{i}")
    return made


def _measure(kind, cls, path, made, storage, tmp, device, dtype, repeats) -> tuple[float, float, float]:
    from adgen.adapters import fetch, push
    from adgen.models import folder_hash

    base = {"ref": "default", "hash": folder_hash(path)}
    lineages = [push(storage, p, brand=f"bench{i}", kind=kind, base=base).lineage() for i, p in enumerate(made)]
    model = cls(str(path), device, dtype)
    local = [fetch(storage, lin, tmp / "cache") for lin in lineages]
    for i, folder in enumerate(local):
        model.use_adapter(f"a{i}", folder)

    switch = _timed(lambda i: model.use_adapter(f"a{i % 2}"), repeats)

    def from_storage(i: int) -> None:
        folder = fetch(storage, lineages[i % 2], tmp / f"cold-{kind}-{i}")  # an empty cache each time
        model.use_adapter(f"cold{i}", folder)

    def reload(i: int) -> None:
        fresh = cls(str(path), device, dtype)
        fresh.use_adapter("a", local[i % 2])

    return switch, _timed(from_storage, repeats), _timed(reload, max(3, repeats // 4))


def _rss_mib() -> tuple[float, float]:
    """(peak, current) resident set of this process in MiB."""
    import resource

    current = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, current / 1024


def memory() -> None:
    """A worker child's memory: the resident models and judge, then 8 text + 4 image adapters on them."""
    from adgen.defaults import ensure_defaults
    from adgen.image import ImageModel
    from adgen.models import pick_device, pick_dtype
    from adgen.scene import load_inpainting
    from adgen.score import load_judge
    from adgen.settings import Settings
    from adgen.text import TextModel

    settings = Settings()
    paths = ensure_defaults(settings.models_dir)
    with tempfile.TemporaryDirectory() as tmp:
        made = _stock_adapters(paths, Path(tmp), {"text": 8, "image": 4})
        import gc

        gc.collect()
        before = _rss_mib()
        device = pick_device(settings)
        dtype = pick_dtype(device)
        text, image = TextModel(str(paths["text"]), device, dtype), ImageModel(str(paths["image"]), device, dtype)
        inpaint, judge = load_inpainting(str(paths["inpaint"]), device, dtype), load_judge()
        models = _rss_mib()
        for i, folder in enumerate(made["text"]):
            text.use_adapter(f"t{i}", folder)
        for i, folder in enumerate(made["image"]):
            image.use_adapter(f"i{i}", folder)
        loaded = _rss_mib()
        sizes = {kind: sum(f.stat().st_size for p in made[kind] for f in p.rglob("*") if f.is_file()) for kind in made}
    print(f"\nworker child memory (MiB, peak / current): made 8 text + 4 image adapters {before[0]:.0f} / {before[1]:.0f}; "
          f"+ text, image, inpainting models and judge {models[0]:.0f} / {models[1]:.0f}; "
          f"+ {len(text.adapters)} text and {len(image.adapters)} image adapters loaded {loaded[0]:.0f} / {loaded[1]:.0f} "
          f"(adapter files: text {sizes['text'] / 2**20:.1f} MiB, image {sizes['image'] / 2**20:.1f} MiB)")
    del inpaint, judge  # resident until here, as in a worker child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--memory", action="store_true", help="Only the memory figures, in this process.")
    args = parser.parse_args()
    if args.memory:
        return memory()

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from adgen.defaults import ensure_defaults
    from adgen.image import ImageModel
    from adgen.models import pick_device, pick_dtype
    from adgen.settings import Settings
    from adgen.storage import LocalStorage
    from adgen.text import TextModel

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    settings = Settings()
    paths = ensure_defaults(settings.models_dir)
    device = pick_device(settings)
    dtype = pick_dtype(device)
    classes = {"text": TextModel, "image": ImageModel}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        storage = LocalStorage(tmp / "storage")
        made = _stock_adapters(paths, tmp / "made")
        rows = [(kind, *_measure(kind, cls, paths[kind], made[kind], storage, tmp, device, dtype, args.repeats))
                for kind, cls in classes.items()]

    print(f"device {device}, {torch.get_num_threads()} torch threads; median seconds per operation")
    print(f"{'model':6} {'cached switch':>14} {'from storage':>13} {'reload base':>12} {'storage/switch':>15} {'reload/switch':>14}")
    for kind, switch, cold, reloaded in rows:
        print(f"{kind:6} {switch:14.5f} {cold:13.4f} {reloaded:12.4f} {cold / switch:14.0f}x {reloaded / switch:13.0f}x")
    import subprocess
    import sys

    subprocess.run([sys.executable, __file__, "--memory"], check=True)  # a fresh process: its own peak


if __name__ == "__main__":
    main()
