"""Ad images from a diffusers text-to-image pipeline, batched and seeded per creative.

The pipeline (local folder or hub id) loads once per process with `from_pretrained`. Each job's
images come from one batched call at the model's native resolution, in the aspect-ratio bucket
nearest the placement; the renderer then fits them to the placement's exact pixels. How many steps,
what guidance and whether a negative prompt is sent depend on the pipeline's family
(data/image_families.yaml, keyed by pipeline class), unless the campaign says otherwise. An image the
pipeline's own safety checker flags is never used: that one is made again with a new seed, and
after `MAX_ATTEMPTS` flagged images the job fails with the reason (`adgen.scene.SceneError`).
"""

import json
import math
import time
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import torch
import yaml
from PIL import Image

from adgen.models import LoadedAdapters, ModelError, folder_size
from adgen.scene import SEED_STEP, SceneError

# Brand adapters kept loaded on the resident pipeline. diffusers' set_adapters slows as more adapters
# are loaded, so the least recently used one is deleted beyond this.
MAX_ADAPTERS = 4
MAX_ATTEMPTS = 3  # images made per seed before a flagged one fails the job


@dataclass(frozen=True)
class Generated:
    """A batch's images and the seed each was made with: its own seed, or, when the safety checker
    flagged that image, seed + attempt * SEED_STEP of the attempt that passed."""

    images: list[Image.Image]
    seeds: list[int]


def bucket_for(native: int, width: int, height: int) -> tuple[int, int]:
    """The size to generate (or train) at for a width x height target on a model of `native` pixels:
    about the native area, sides multiples of 64 (32 for models under 512 px), aspect ratio nearest
    the target's. The image trainer buckets its photos with this same function."""
    step = 64 if native >= 512 else 32
    area, target = native**2, math.log(width / height)
    sizes = [
        (w, h)
        for w in range(step, 4 * native + 1, step)
        for h in range(step, 4 * native + 1, step)
        if 0.75 * area <= w * h <= 1.1 * area
    ]
    return min(sizes, key=lambda s: (round(abs(math.log(s[0] / s[1]) - target), 2), -s[0] * s[1]))


@dataclass(frozen=True)
class ImageSettings:
    """How a pipeline is sampled: denoising steps, classifier-free guidance scale, and whether a
    negative prompt is sent (only where the family takes one and guidance is above 1)."""

    family: str  # the pipeline class, e.g. StableDiffusionXLPipeline
    steps: int
    guidance: float
    negative: bool


@cache
def _families() -> dict:
    return yaml.safe_load(resources.files("adgen").joinpath("data/image_families.yaml").read_text())


def image_settings(family: str, ref: str, *, steps: int | None = None, guidance: float | None = None,
                   field: str = "models.image") -> ImageSettings:
    """The settings for a pipeline of class `family` loaded from `ref`: the family's published
    defaults, those of a known few-step model named by hub id, then the campaign's own `steps` and
    `guidance` (spec `image_settings`) over both."""
    data = _families()
    if family not in data["pipelines"]:
        raise ModelError(f"{field}: {ref!r} is a {family}; supported pipelines: {', '.join(data['pipelines'])}")
    chosen = {**data["pipelines"][family], **data["models"].get(ref, {})}
    chosen.update({k: v for k, v in (("steps", steps), ("guidance", guidance)) if v is not None})
    return ImageSettings(family=family, steps=chosen["steps"], guidance=float(chosen["guidance"]),
                         negative=chosen["negative"] and chosen["guidance"] > 1)


def check_family(path: str, ref: str, field: str = "models.image") -> None:
    """Refuse, before a campaign is recorded, a local pipeline folder whose class has no family
    settings (a hub id is checked when a job loads it)."""
    index = Path(path) / "model_index.json"
    if index.is_file():
        image_settings(json.loads(index.read_text())["_class_name"], ref, field=field)


class ImageModel:
    """A diffusers text-to-image pipeline, loaded once and kept resident, with brand LoRA adapters
    loaded onto it by name (diffusers' named adapters): switching never reloads the pipeline."""

    def __init__(self, path: str, device: torch.device, dtype: torch.dtype):
        from diffusers import AutoPipelineForText2Image

        self.pipe = AutoPipelineForText2Image.from_pretrained(path, dtype=dtype).to(device)
        self.pipe.set_progress_bar_config(disable=True)
        self.device = device
        self.adapters = LoadedAdapters(MAX_ADAPTERS)
        self.active: str | None = None
        denoiser = self.pipe.unet if "unet" in self.pipe.components else self.pipe.transformer
        self.native = denoiser.config.sample_size * self.pipe.vae_scale_factor
        self.family = type(self.pipe).__name__
        self.model_seconds = 0.0

    def use_adapter(self, name: str | None, path=None, ref: str = "") -> None:
        """Make `name` the only active LoRA (loading it from `path` the first time with stock
        `load_lora_weights`), or None for the bare pipeline."""
        size = None
        if name is not None and name not in self.adapters:
            self.pipe.load_lora_weights(str(path), adapter_name=name)
            size = folder_size(path)
            for oldest in self.adapters.evict(size):
                self.pipe.delete_adapters(oldest)
                del self.adapters[oldest]
        if name is None:
            if self.adapters:
                self.pipe.disable_lora()
        else:
            self.pipe.enable_lora()
            self.pipe.set_adapters(name)
            self.adapters.used(name, ref, size)
        self.active = name

    def bucket(self, width: int, height: int) -> tuple[int, int]:
        """The size to generate at for a placement of width x height (see `bucket_for`)."""
        return bucket_for(self.native, width, height)

    @torch.inference_mode()
    def generate(
        self, prompt: str, *, negative: str | None, seeds: list[int], size: tuple[int, int], steps: int, guidance: float
    ) -> Generated:
        """One batched call: an image per seed, at `size` (a bucket from `bucket`); each image the
        safety checker flags is made again alone with a new seed (see `Generated`)."""
        start = time.perf_counter()
        out = sample(self.pipe, [prompt] * len(seeds), negative=negative, seeds=seeds, size=size, steps=steps,
                     guidance=guidance)
        images, used = list(out.images), list(seeds)
        # Only pipelines with a safety checker report on it; the others return no such field.
        for i, flagged in enumerate(getattr(out, "nsfw_content_detected", None) or []):
            tried = [seeds[i]]
            while flagged:
                if len(tried) == MAX_ATTEMPTS:
                    raise SceneError(
                        f"the image model's safety checker flagged every image ({MAX_ATTEMPTS} seeds: "
                        f"{', '.join(map(str, tried))}); change the prompt or the product's description"
                    )
                used[i] = seeds[i] + len(tried) * SEED_STEP
                tried.append(used[i])
                again = sample(self.pipe, [prompt], negative=negative, seeds=[used[i]], size=size, steps=steps,
                               guidance=guidance)
                images[i], flagged = again.images[0], bool(again.nsfw_content_detected[0])
        self.model_seconds += time.perf_counter() - start
        return Generated(images, used)


def sample(pipe, prompts: list[str], *, negative: str | None, seeds: list[int], size: tuple[int, int], steps: int,
           guidance: float):
    """One batched, seeded call of a text-to-image pipeline: its output (`.images`, an image per
    prompt and seed, at `size`, and the safety checker's `.nsfw_content_detected` where it has one);
    `negative` is None where the family takes none or guidance does not use it (ImageSettings).
    Campaigns generate through here (in inference mode), and the image trainer renders its validation
    images with it (under no_grad, between training steps)."""
    generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
    return pipe(
        prompt=prompts, negative_prompt=[negative] * len(prompts) if negative and guidance > 1 else None,
        width=size[0], height=size[1], num_inference_steps=steps, guidance_scale=guidance, generator=generators,
    )
