"""Train a brand image adapter: LoRA on a diffusers text-to-image pipeline (diffusers + peft + accelerate),
following diffusers' text-to-image LoRA example.

One flow: read the images (center crop, or aspect-ratio buckets), encode them once with the frozen
VAE, put a LoRA on the UNet's attention (and optionally the text encoder's; SD 1.x/2.x and SDXL), train on the noise
prediction loss with seeded noise and timesteps, render the validation prompts every N steps into a
grid, and save the standard diffusers LoRA file (pytorch_lora_weights.safetensors) that stock
`pipe.load_lora_weights` loads. Checkpoints make it resumable; `accelerate launch` spreads each
global batch over processes with no code change.
"""

import dataclasses
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from adgen.image import bucket_for, image_settings, sample
from adgen.precision import training_precision
from adgen.prompts import NEGATIVE_IMAGE_PROMPT
from finetune import checkpoints
from finetune.config import ImageConfig
from finetune.data import DataError, ImageData
from finetune.pictures import grid, loss_curve

Progress = Callable[[int, int, float], None]


def _pixels(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """An image resized to cover `size` and center cropped to it, as a [-1, 1] tensor."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = size
        scale = max(w / im.width, h / im.height)
        im = im.resize((max(w, round(im.width * scale)), max(h, round(im.height * scale))), Image.Resampling.BICUBIC)
        left, top = (im.width - w) // 2, (im.height - h) // 2
        im = im.crop((left, top, left + w, top + h))
        array = np.asarray(im, dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(array).permute(2, 0, 1)


@torch.no_grad()
def _render(pipe, prompts: list[str], config: ImageConfig, size: tuple[int, int], ref: str):
    """Validation images, made as a campaign makes its images: the family's guidance and negative
    prompt (adgen.image.image_settings), the recipe's validation steps."""
    settings = image_settings(type(pipe).__name__, ref, field="--base")
    return sample(pipe, prompts, negative=NEGATIVE_IMAGE_PROMPT if settings.negative else None,
                  seeds=[config.seed + i for i in range(len(prompts))], size=size, steps=config.validation_steps,
                  guidance=settings.guidance).images


def train_image(
    data: ImageData, base, config: ImageConfig, out: Path, *, resume: bool = False, progress: Progress | None = None
) -> dict:
    """Train into out/adapter (checkpoints in out/checkpoints); returns metrics."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import AutoPipelineForText2Image, DDPMScheduler
    from diffusers.training_utils import cast_training_params
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    if len(data.examples) < config.batch_size:
        raise DataError(f"{len(data.examples)} images are fewer than batch_size {config.batch_size}; "
                        "add images or lower batch_size in the recipe")
    precision, precision_note = training_precision(config.mixed_precision)
    accelerator = Accelerator(mixed_precision=precision)
    set_seed(config.seed)
    pipe = AutoPipelineForText2Image.from_pretrained(base.path)
    pipe.set_progress_bar_config(disable=True)
    # SD 1.x/2.x (a UNet conditioned on one text encoder) and SDXL (two encoders, pooled text and
    # size "time ids" as added conditioning); transformer denoisers (SD3, Flux) are not trained here.
    sdxl = "unet" in pipe.components and pipe.unet.config.addition_embed_type == "text_time"
    if "unet" not in pipe.components or not (sdxl or pipe.unet.config.addition_embed_type is None):
        raise DataError(f"{base.ref}: {type(pipe).__name__} cannot be trained here; only Stable Diffusion 1.x/2.x and "
                        "SDXL pipelines (a UNet denoiser) can")
    if sdxl and config.train_text_encoder:
        raise DataError("train_text_encoder: SDXL's text encoders are not trained here; set it to false")
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    pipe.to(accelerator.device)

    native = unet.config.sample_size * pipe.vae_scale_factor
    resolution = config.resolution or native

    # The VAE is frozen, so every image is encoded once (the mean of its latent distribution, as
    # trainers that cache latents do).
    latents, bucket_of = [], []
    with torch.no_grad():
        for ex in data.examples:
            from PIL import Image

            # Photos are bucketed exactly as campaigns generate, so the adapter learns the shapes it is asked for.
            with Image.open(ex.path) as im:
                size = bucket_for(resolution, im.width, im.height) if config.crop == "bucket" else (resolution, resolution)
            latents.append(vae.encode(_pixels(ex.path, size)[None].to(accelerator.device)).latent_dist.mean[0])
            bucket_of.append(size)
    captions = [" ".join(filter(None, [config.instance_token, ex.caption])) for ex in data.examples]
    prompts = config.validation_prompts or list(dict.fromkeys(captions))[:4]
    preview_size = (resolution, resolution)

    def encode(texts: list[str], size: tuple[int, int]) -> tuple[torch.Tensor, dict | None]:
        """The UNet's text conditioning; for SDXL also its added conditioning: the pooled text and the
        size "time ids" (original size, crop corner, target size), as SDXL's pipeline sends them."""
        if sdxl:
            hidden, _, pooled, _ = pipe.encode_prompt(texts, device=accelerator.device, do_classifier_free_guidance=False)
            time_ids = torch.tensor([[size[1], size[0], 0, 0, size[1], size[0]]] * len(texts), device=accelerator.device,
                                    dtype=hidden.dtype)
            return hidden, {"text_embeds": pooled, "time_ids": time_ids}
        ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids.to(accelerator.device)
        return text_encoder(ids)[0], None

    set_seed(config.seed)
    unet.add_adapter(LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
                                target_modules=config.target_modules))
    text_lora = None
    if config.train_text_encoder:
        # peft's get_peft_model injects the LoRA layers into the text encoder in place (transformers'
        # own add_adapter needs a newer peft than this project pins).
        text_lora = get_peft_model(text_encoder, LoraConfig(
            r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
            target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]))
    cast_training_params([unet, text_encoder], dtype=torch.float32)  # LoRA weights train in fp32 even in half precision
    params = [p for m in (unet, text_encoder) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate)

    start_step, losses, shots = 0, [], []
    state = checkpoints.resume_state(out, resume, config, data.hash)
    if state:
        set_peft_model_state_dict(unet, state["unet"])
        if text_lora is not None:
            set_peft_model_state_dict(text_lora, state["text_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        start_step, losses, shots = state["step"], state["losses"], state["shots"]
    else:
        shots.append(("step 0", _render(pipe, prompts, config, preview_size, base.ref)))
    unet, text_encoder, optimizer = accelerator.prepare(unet, text_encoder, optimizer)

    by_bucket: dict[tuple, list[int]] = {}
    for i, size in enumerate(bucket_of):
        by_bucket.setdefault(size, []).append(i)
    began = time.perf_counter()
    for step in range(start_step, config.steps):
        # Seeded per step (not one running generator), so a resumed run draws what the first would have.
        rng = random.Random(config.seed * 1_000_003 + step)
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        members = by_bucket[rng.choice(sorted(by_bucket))] if len(by_bucket) > 1 else list(range(len(latents)))
        global_batch = [rng.choice(members) for _ in range(config.batch_size)]
        mine = global_batch[accelerator.process_index :: accelerator.num_processes]
        x0 = torch.stack([latents[i] for i in mine]) * vae.config.scaling_factor
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(mine),), generator=gen).to(x0.device)
        noisy = noise_scheduler.add_noise(x0, noise, t)
        target = noise if noise_scheduler.config.prediction_type == "epsilon" else noise_scheduler.get_velocity(x0, noise, t)
        with accelerator.autocast():
            if config.train_text_encoder:
                hidden, added = encode([captions[i] for i in mine], bucket_of[mine[0]])
            else:
                with torch.no_grad():
                    hidden, added = encode([captions[i] for i in mine], bucket_of[mine[0]])
            pred = unet(noisy, t, hidden, added_cond_kwargs=added).sample
        loss = torch.nn.functional.mse_loss(pred.float(), target.float())
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(accelerator.gather(loss.detach()).mean().item(), 5))
        if progress and accelerator.is_main_process:
            progress(step + 1, config.steps, losses[-1])
        done = step + 1
        if config.validation_every and done % config.validation_every == 0 and done < config.steps:
            shots.append((f"step {done}", _render(pipe, prompts, config, preview_size, base.ref)))
        if config.checkpoint_every and done % config.checkpoint_every == 0 and done < config.steps and accelerator.is_main_process:
            checkpoints.save(out / "checkpoints" / f"step-{done}", {
                "unet": get_peft_model_state_dict(accelerator.unwrap_model(unet)),
                "text_encoder": get_peft_model_state_dict(text_lora) if text_lora is not None else None,
                "optimizer": optimizer.state_dict(), "step": done, "losses": losses, "shots": shots,
                "config": dataclasses.asdict(config), "data": data.hash,
            })
    seconds = round(time.perf_counter() - began, 1)
    shots.append((f"step {config.steps}", _render(pipe, prompts, config, preview_size, base.ref)))

    metrics = {
        "images": len(data.examples), "steps": config.steps, "resumed_from": start_step or None, "seconds": seconds,
        "first_loss": round(sum(losses[:10]) / len(losses[:10]), 4), "final_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4),
        "buckets": sorted({f"{w}x{h}" for w, h in bucket_of}), "validation_prompts": prompts,
        "processes": accelerator.num_processes, "mixed_precision": precision, "precision_note": precision_note, "skipped_files": data.skipped,
    }
    if accelerator.is_main_process:
        adapter = out / "adapter"
        unet_ = accelerator.unwrap_model(unet)
        type(pipe).save_lora_weights(
            adapter,
            unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet_)),
            text_encoder_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(text_lora)) if text_lora is not None else None,
            unet_lora_adapter_metadata=unet_.peft_config["default"].to_dict(),
            text_encoder_lora_adapter_metadata=text_lora.peft_config["default"].to_dict() if text_lora is not None else None,
        )
        grid(adapter / "validation.png", shots, prompts)
        loss_curve(adapter / "loss.png", losses, [], f"image adapter: noise-prediction loss {metrics['first_loss']} -> {metrics['final_loss']}")
        (adapter / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (adapter / "recipe.yaml").write_text(yaml.safe_dump(
            {"kind": "image", "base": base.ref, "hyperparameters": dataclasses.asdict(config)}, sort_keys=False))
    accelerator.wait_for_everyone()
    return metrics

