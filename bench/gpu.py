"""GPU throughput of the product's own generation code on real-size architectures with random weights
(nothing is downloaded): SD 1.5 (UNet at 512 px), SDXL (UNet at 1024 px) and a decoder shaped like
Qwen2.5-1.5B. Each model is built from its published config, saved with `save_pretrained` and loaded
through the product's loaders (adgen.image.ImageModel, adgen.text.TextModel), then timed:

- images: s/image and images/s (the whole call: text encoding, denoising, VAE decode) and it/s
  (denoising steps per second, as diffusers' progress bar counts them) for `--steps` at batch 1, 4
  and 8, with the family's guidance (so two denoiser passes per step where it guides), in the chosen dtype, with SDPA or eager
  attention, and optionally channels-last and torch.compile on the denoiser;
- copy: tokens/s of batched, sampled copy generation (TextModel.complete on the generator's prompts)
  at batch 1, 16 and 64;
- adapters: the first load of a LoRA from disk and a switch between two loaded ones, text and image.

It prints a markdown table beside the published anchors (diffusers' optimisation guide, A100). Random
weights run the same arithmetic as trained ones; the copy they write is noise, and the decoder never
stops early, so every row generates --new-tokens tokens.

Run on a GPU:  python bench/gpu.py [--dtype bf16|fp16] [--compile] [--channels-last] [--attention eager]
At toy size on a CPU (a test runs it):  python bench/gpu.py --toy
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

# Published anchors for the same work, to read the table against (batch 1).
ANCHORS = {
    "sd15": "A100: 21.7 it/s fp16+SDPA, 49.7 it/s with torch.compile (diffusers optimisation guide)",
    "sdxl": "A100, 30 steps: 7.4 s fp32, 4.6 s bf16, 3.3 s +SDPA, 2.5 s +compile+channels-last (same guide)",
    "qwen2.5-1.5b": "no published anchor for this exact setting",
}
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, projection_dim=768)
CLIP_G = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20, projection_dim=1280,
              hidden_act="gelu")
VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, sample_size=512)
DOWN, UP = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",), ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
# Published configs (SD 1.5's and SDXL base's UNet, CLIP and VAE configs; Qwen2.5-1.5B's config.json).
REAL = {
    "sd15": dict(unet=dict(sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                           down_block_types=DOWN, up_block_types=UP, cross_attention_dim=768, attention_head_dim=8),
                 encoders=[CLIP_L], vae=VAE),
    "sdxl": dict(unet=dict(sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
                           down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                           up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                           transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
                           cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
                           addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816),
                 encoders=[CLIP_L, CLIP_G], vae={**VAE, "sample_size": 1024}),
    "qwen2.5-1.5b": dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                         rope_theta=1000000.0, tie_word_embeddings=True),
}
TINY_CLIP = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, projection_dim=32)
TINY_VAE = dict(block_out_channels=(32, 64), layers_per_block=1, sample_size=64, norm_num_groups=8)
TOY = {
    "sd15": dict(unet=dict(sample_size=32, block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
                           down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                           up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, attention_head_dim=8),
                 encoders=[TINY_CLIP], vae=TINY_VAE),
    "sdxl": dict(unet=dict(sample_size=32, block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
                           down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                           up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                           cross_attention_dim=64, use_linear_projection=True, addition_embed_type="text_time",
                           addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32),
                 encoders=[TINY_CLIP, TINY_CLIP], vae=TINY_VAE),
    "qwen2.5-1.5b": dict(vocab_size=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True),
}


def build_image(name: str, sizes: dict, out: Path, device: torch.device, dtype: torch.dtype) -> Path:
    """A pipeline of the family with random weights, saved in the diffusers format."""
    from diffusers import (
        AutoencoderKL,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from adgen.build_defaults import _clip_tokenizer
    from adgen.prompts import NEGATIVE_IMAGE_PROMPT

    config = sizes[name]
    tokenizer = _clip_tokenizer(["cold brew coffee on a wooden table, soft natural light", NEGATIVE_IMAGE_PROMPT])
    clip = [CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
                           **c) for c in config["encoders"]]
    vae_config = {k: v for k, v in config["vae"].items() if k != "block_out_channels"}
    blocks = len(config["vae"]["block_out_channels"])
    with torch.device(device):
        unet = UNet2DConditionModel(**config["unet"])
        vae = AutoencoderKL(block_out_channels=config["vae"]["block_out_channels"], latent_channels=4,
                            down_block_types=["DownEncoderBlock2D"] * blocks, up_block_types=["UpDecoderBlock2D"] * blocks,
                            **vae_config)
        if name == "sd15":
            pipe = StableDiffusionPipeline(
                unet=unet, vae=vae, text_encoder=CLIPTextModel(clip[0]), tokenizer=tokenizer,
                scheduler=DPMSolverMultistepScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                      steps_offset=1),
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        else:
            pipe = StableDiffusionXLPipeline(
                unet=unet, vae=vae, text_encoder=CLIPTextModel(clip[0]), text_encoder_2=CLIPTextModelWithProjection(clip[1]),
                tokenizer=tokenizer, tokenizer_2=tokenizer,
                scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                 timestep_spacing="leading", steps_offset=1))
    if dtype != torch.float32:
        pipe.to(dtype=dtype)
    pipe.save_pretrained(out)
    return out


def build_text(sizes: dict, out: Path, device: torch.device, dtype: torch.dtype) -> Path:
    """A decoder of Qwen2.5-1.5B's shape with random weights, with the default model's tokenizer
    recipe (byte-level BPE and chat template) trained here on the generator's prompts."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from adgen.build_defaults import _train_tokenizer

    tokenizer = _train_tokenizer([m["content"] for messages in _prompts(64) for m in messages], vocab_size=2048)
    with torch.device(device):
        config = {**sizes["qwen2.5-1.5b"]}
        config["vocab_size"] = max(config["vocab_size"], len(tokenizer))  # the toy's vocab fits its tokenizer
        model = Qwen2ForCausalLM(Qwen2Config(**config, pad_token_id=tokenizer.pad_token_id,
                                             eos_token_id=tokenizer.eos_token_id, bos_token_id=None))
    model.to(dtype).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _timed(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of `fn()` over `repeats` runs, after the caller's warm-up."""
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_image(name: str, path: Path, args, device: torch.device, dtype: torch.dtype) -> list[dict]:
    from diffusers.models.attention_processor import AttnProcessor

    from adgen.image import ImageModel, image_settings
    from adgen.prompts import NEGATIVE_IMAGE_PROMPT

    model = ImageModel(str(path), device, dtype)
    settings = image_settings(model.family, name, steps=args.steps)
    unet = model.pipe.unet
    if args.attention == "eager":
        unet.set_attn_processor(AttnProcessor())
    if args.channels_last:
        unet.to(memory_format=torch.channels_last)
    if args.compile:
        model.pipe.unet = torch.compile(unet, mode=args.compile_mode, fullgraph=True)
    size = (model.native, model.native)
    negative = NEGATIVE_IMAGE_PROMPT if settings.negative else None
    passes = 2 if settings.guidance > 1 else 1
    rows = []
    for batch in args.batches:
        def run(steps: int, batch=batch):
            model.generate("cold brew coffee on a wooden table", negative=negative, seeds=list(range(batch)), size=size,
                           steps=steps, guidance=settings.guidance)

        run(settings.steps)  # warm-up (and compilation)
        seconds = _timed(lambda: run(settings.steps), args.repeats, device)
        # The denoising loop alone (what diffusers' progress bar and the anchors count): the same call
        # with one step costs the text encoding, one step and the VAE decode.
        one = _timed(lambda: run(1), args.repeats, device)
        rows.append({"model": name, "work": f"{size[0]} px, {settings.steps} steps, guidance {settings.guidance}",
                     "batch": batch, "s/image": seconds / batch, "images/s": batch / seconds,
                     "it/s": (settings.steps - 1) / max(seconds - one, 1e-9), "unet passes/step": passes})
    return rows


def _prompts(n: int) -> list[list[dict]]:
    """`n` of the generator's own copy prompts, over audiences and every written field."""
    from adgen.platforms import registry
    from adgen.prompts import copy_messages
    from adgen.spec import Audience, Brand, Product

    brand = Brand(name="Northwind Coffee", voice="warm, witty, never pushy")
    product = Product(name="Cold Brew Concentrate", description="Smooth, low-acid cold brew, 16 cups per bottle.")
    fields = [(p, f) for p in registry().placements.values() for f in p.fields.values() if f.written]
    return [copy_messages(brand, product, Audience(name=f"a{i}", persona=f"People who enjoy coffee, group {i}."),
                          *fields[i % len(fields)]) for i in range(n)]


def bench_text(path: Path, args, device: torch.device, dtype: torch.dtype) -> list[dict]:
    from adgen.text import TextModel

    model = TextModel(str(path), device, dtype)
    model.stops = []  # random weights: time every requested token, never an early stop
    rows = []
    for batch in args.text_batches:
        prompts = _prompts(batch)

        def run(prompts=prompts):
            model.complete(prompts, seed=0, max_new_tokens=args.new_tokens)

        run()
        seconds = _timed(run, args.repeats, device)
        rows.append({"model": "qwen2.5-1.5b", "work": f"copy, {args.new_tokens} new tokens", "batch": batch,
                     "tokens/s": batch * args.new_tokens / seconds, "s/batch": seconds})
    return rows


def bench_adapters(image_path: Path, text_path: Path, folder: Path, device: torch.device, dtype: torch.dtype) -> dict:
    """Seconds to load a LoRA from disk onto the resident model, and to switch between two loaded ones."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    from adgen.image import ImageModel
    from adgen.text import TextModel

    image, text = ImageModel(str(image_path), device, dtype), TextModel(str(text_path), device, dtype)
    for i in range(2):
        unet = image.pipe.unet
        unet.add_adapter(LoraConfig(r=16, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights="gaussian"),
                         adapter_name=f"made-{i}")
        StableDiffusionPipeline.save_lora_weights(
            folder / f"image-{i}", unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=f"made-{i}")))
        unet.delete_adapters(f"made-{i}")
    # Text adapters are made on a second copy of the base, so the resident one is loaded exactly as a worker loads it.
    config = LoraConfig(r=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(text_path, dtype=dtype), config, adapter_name="text-0")
    lora.add_adapter("text-1", config)
    lora.save_pretrained(folder)  # named adapters go to folder/<name>
    del lora
    result = {}
    for kind, model in (("image", image), ("text", text)):
        start = time.perf_counter()
        model.use_adapter("a", folder / f"{kind}-0")
        model.use_adapter("b", folder / f"{kind}-1")
        result[f"{kind} adapter load, s"] = (time.perf_counter() - start) / 2
        names = iter(["a", "b"] * 10)
        result[f"{kind} adapter switch, s"] = _timed(lambda model=model, names=names: model.use_adapter(next(names)), 20, device)
    return result


def table(rows: list[dict], adapters: dict, args, device: torch.device) -> str:
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    lines = [f"{where}; {args.dtype}, attention {args.attention}, channels-last {args.channels_last}, "
             f"compile {args.compile_mode if args.compile else 'off'}{' (toy sizes)' if args.toy else ''}", "",
             "| model | work | batch | s/image | images/s | it/s | tokens/s | anchor (batch 1) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def cell(key, r=r):
            return f"{r[key]:.3g}" if key in r else ""

        anchor = ANCHORS[r["model"]] if r["batch"] == 1 else ""
        lines.append(f"| {r['model']} | {r['work']} | {r['batch']} | {cell('s/image')} | {cell('images/s')} | "
                     f"{cell('it/s')} | {cell('tokens/s')} | {anchor} |")
    lines += [""] + [f"{k}: {v:.4f}" for k, v in adapters.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--toy", action="store_true", help="Tiny configs, for a CPU smoke run.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default=None, help="Default: bf16 on GPU, fp32 on CPU.")
    parser.add_argument("--attention", choices=["sdpa", "eager"], default="sdpa")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the denoiser (fullgraph).")
    parser.add_argument("--compile-mode", default="max-autotune")
    parser.add_argument("--steps", type=int, default=None, help="Denoising steps; default 30 (2 with --toy).")
    parser.add_argument("--batches", default=None, help="Image batch sizes; default 1,4,8 (1,2 with --toy).")
    parser.add_argument("--text-batches", default=None, help="Copy batch sizes; default 1,16,64 (1,4 with --toy).")
    parser.add_argument("--new-tokens", type=int, default=None, help="Tokens per copy; default 32 (8 with --toy).")
    parser.add_argument("--repeats", type=int, default=None, help="Timed runs per cell (median); default 3 (1 with --toy).")
    parser.add_argument("--only", choices=["sd15", "sdxl", "text", "adapters"], action="append",
                        help="Run only these parts (repeatable); default all.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args(argv)
    toy = args.toy
    args.dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    args.steps = args.steps or (2 if toy else 30)
    args.batches = [int(b) for b in (args.batches or ("1,2" if toy else "1,4,8")).split(",")]
    args.text_batches = [int(b) for b in (args.text_batches or ("1,4" if toy else "1,16,64")).split(",")]
    args.new_tokens = args.new_tokens or (8 if toy else 32)
    args.repeats = args.repeats or (1 if toy else 3)
    parts = set(args.only or ["sd15", "sdxl", "text", "adapters"])
    device = torch.device(args.device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    sizes = TOY if toy else REAL
    torch.manual_seed(0)
    rows, adapters = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = {}
        for name in ("sd15", "sdxl"):
            if name in parts or (name == "sd15" and "adapters" in parts):
                paths[name] = build_image(name, sizes, root / name, device, dtype)
            if name in parts:
                rows += bench_image(name, paths[name], args, device, dtype)
                if device.type == "cuda":
                    print(f"{name}: peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB", file=sys.stderr)
        if parts & {"text", "adapters"}:
            paths["text"] = build_text(sizes, root / "text", device, dtype)
        if "text" in parts:
            rows += bench_text(paths["text"], args, device, dtype)
        if "adapters" in parts:
            (root / "adapters").mkdir()
            adapters = bench_adapters(paths["sd15"], paths["text"], root / "adapters", device, dtype)
    print(table(rows, adapters, args, device))
    result = {"rows": rows, "adapters": adapters, "device": str(device), "dtype": args.dtype, "toy": toy}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
