"""The offline default inpainting pipeline, built on this machine from configs (no download).

It is the default image pipeline's kin: the same CLIP tokenizer, text encoder, fitted VAE and
scheduler, read from a built default image pipeline folder, with a UNet of the same shape that
takes the 9 input channels of Stable Diffusion inpainting (4 noisy latents, 1 mask, 4 latents of
the masked image). The UNet keeps random weights, so like the text-to-image default it paints soft
colour fields around the product, not a scene. It is saved with `save_pretrained` and loads back
through `AutoPipelineForInpainting.from_pretrained`, the code path of any real inpainting model.
"""

from pathlib import Path

import torch

INPAINT_DIR = "inpaint-default"
INPAINT_RECIPE = "1"  # bump when the builder changes, so a build script rebuilds it


def build_inpaint_pipeline(out: Path, *, image_pipeline: Path, seed: int = 0) -> dict:
    """Build the tiny inpainting pipeline into `out` from the default image pipeline at
    `image_pipeline` (its tokenizer, text encoder, VAE and scheduler); returns build figures."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel

    base = StableDiffusionPipeline.from_pretrained(image_pipeline)
    torch.manual_seed(seed)
    config = dict(base.unet.config)
    config["in_channels"] = 9  # noisy latents + mask + masked-image latents
    unet = UNet2DConditionModel.from_config(config)
    pipe = StableDiffusionInpaintPipeline(
        vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet, scheduler=base.scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(out)
    return {"parameters": sum(p.numel() for m in (unet, base.vae, base.text_encoder) for p in m.parameters()),
            "native": unet.config.sample_size * pipe.vae_scale_factor}
