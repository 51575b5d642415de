"""Ad images from a diffusers text-to-image pipeline, batched and seeded per creative.

The pipeline (local folder or hub id) loads once per process with `from_pretrained`. Each job's
images come from one batched call at the model's native resolution, in the aspect-ratio bucket
nearest the placement; the renderer then fits them to the placement's exact pixels.
"""

import math
import time

import torch
from PIL import Image

from adgen.models import LoadedAdapters

# Brand adapters kept loaded on the resident pipeline. diffusers' set_adapters slows as more adapters
# are loaded, so the least recently used one is deleted beyond this.
MAX_ADAPTERS = 4


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
        self.model_seconds = 0.0

    def use_adapter(self, name: str | None, path=None, ref: str = "") -> None:
        """Make `name` the only active LoRA (loading it from `path` the first time with stock
        `load_lora_weights`), or None for the bare pipeline."""
        if name is not None and name not in self.adapters:
            self.pipe.load_lora_weights(str(path), adapter_name=name)
            if oldest := self.adapters.evict():
                self.pipe.delete_adapters(oldest)
                del self.adapters[oldest]
        if name is None:
            if self.adapters:
                self.pipe.disable_lora()
        else:
            self.pipe.enable_lora()
            self.pipe.set_adapters(name)
            self.adapters.used(name, ref)
        self.active = name

    def bucket(self, width: int, height: int) -> tuple[int, int]:
        """The size to generate at for a placement of width x height (see `bucket_for`)."""
        return bucket_for(self.native, width, height)

    @torch.inference_mode()
    def generate(
        self, prompt: str, *, negative: str, seeds: list[int], size: tuple[int, int], steps: int, guidance: float
    ) -> list[Image.Image]:
        """One batched call: an image per seed, at `size` (a bucket from `bucket`)."""
        start = time.perf_counter()
        images = sample(self.pipe, [prompt] * len(seeds), negative=negative, seeds=seeds, size=size, steps=steps,
                        guidance=guidance)
        self.model_seconds += time.perf_counter() - start
        return images


def sample(pipe, prompts: list[str], *, negative: str, seeds: list[int], size: tuple[int, int], steps: int,
           guidance: float) -> list[Image.Image]:
    """One batched, seeded call of a text-to-image pipeline: an image per prompt and seed, at `size`.
    Campaigns generate through here (in inference mode), and the image trainer renders its validation
    images with it (under no_grad, between training steps)."""
    generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
    return pipe(
        prompt=prompts, negative_prompt=[negative] * len(prompts) if guidance > 1 else None,
        width=size[0], height=size[1], num_inference_steps=steps, guidance_scale=guidance, generator=generators,
    ).images
