"""The build script of the offline default models: trains them on this machine from configs and the
bundled corpus (no download is possible). `adgen.defaults.ensure_defaults` runs it when a default is
missing or its recipe changed; `python -m adgen.build_defaults FOLDER` runs it by hand.

Text: a byte-level BPE tokenizer and a ~4M-parameter Llama trained for about a minute on the ad-copy
corpus in data/corpus.yaml. The corpus is delexicalised (slot markers such as {product}) and the
training prompts are the generator's own prompts (adgen.prompts.copy_messages), so the model learns
to answer them with readable copy for any product. Image: a tiny Stable Diffusion pipeline with
random weights; it makes abstract colour fields, not photos. Both are saved with `save_pretrained`
and loaded back through `from_pretrained`, exactly like a hub model.
"""

import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import yaml

if TYPE_CHECKING:
    import numpy as np

from adgen.platforms import registry
from adgen.precision import fast_bf16
from adgen.prompts import SLOTS, aimed_persona, copy_messages
from adgen.spec import Audience, Brand, Product

# Bump when a builder changes, so `adgen init` rebuilds that model (adgen.defaults reads the stamps).
RECIPES = {"text": "7", "image": "3"}
# Share of an angle's training answers drawn from that angle's own copy (the rest: general copy).
TARGETED = 0.85
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
VOICES = ["warm, witty, never pushy", "calm and confident", "playful and bright", "plain-spoken and kind", "bold but friendly"]
BANNED = [[], ["cheap"], ["guarantee"], ["cheap", "guarantee"], ["free"]]

Progress = Callable[[str, int, int], None]


@cache
def load_corpus() -> dict:
    """The corpus (read-only: one parse per process, which scoring asks for in every job)."""
    return yaml.load(resources.files("adgen").joinpath("data/corpus.yaml").read_text(),
                     Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def corpus_hash() -> str:
    return hashlib.sha256(resources.files("adgen").joinpath("data/corpus.yaml").read_bytes()).hexdigest()[:16]


def _training_examples(corpus: dict, n: int, answers: int, rng: random.Random) -> list[tuple[list[dict], list[str]]]:
    """(messages, answers) in the generator's prompt format, over random products, brands,
    audiences and every written field of every placement. Each prompt gets several answers from the
    same pool: the prompt is most of the compute, so one prompt teaches several completions."""
    fields = [(p, f) for p in registry().placements.values() for f in p.fields.values() if f.written]
    angles = list(corpus["personas"])
    examples = []
    for _ in range(n):
        placement, field = rng.choice(fields)
        angle = rng.choice(angles)
        p = rng.choice(corpus["products"])
        product = Product(name=p["name"], description=p["description"], benefits=p["benefits"])
        brand = Brand(name=rng.choice(corpus["brands"]), voice=rng.choice(VOICES), banned_terms=rng.choice(BANNED))
        # At run time the label is the user's own audience name, which the model never saw: half the
        # labels here come from another angle, so the model learns to follow the named angle instead.
        label = rng.choice(corpus["audiences"][angle if rng.random() < 0.5 else rng.choice(angles)])
        persona = aimed_persona(angle, rng.choice(corpus["personas"][angle]))
        audience = Audience(name=re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-"), persona=persona)
        by_angle = corpus["copy"][field.style]
        targeted = by_angle.get(angle) if angle != "general" else None
        picks = [rng.choice(targeted if targeted and rng.random() < TARGETED else by_angle["general"]) for _ in range(answers)]
        examples.append((copy_messages(brand, product, audience, placement, field), picks))
    return examples


def _train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|end|>", padding_side="left", model_max_length=512
    )
    # Slot markers are whole tokens so the model copies them in one step.
    fast.add_tokens(list(SLOTS))
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_text_model(
    out: Path, *, language_steps: int = 300, prompt_steps: int = 1500, batch_size: int = 4, prompt_batch_size: int = 4,
    answers: int = 3, row_tokens: int = 256, seed: int = 0, corpus: dict | None = None, progress: Progress | None = None,
) -> dict:
    """Train the default copy model into `out`; returns training figures.

    Two phases, because the prompts are most of the tokens: first the copy alone, packed into
    rows, so every token teaches phrasing and spelling; then prompt -> answers in the generator's
    exact format, so the model learns which field and which audience each prompt asks for."""
    from transformers import LlamaConfig, LlamaForCausalLM

    rng = random.Random(seed)
    torch.manual_seed(seed)
    corpus = corpus or load_corpus()
    raw = _training_examples(corpus, prompt_steps * prompt_batch_size, answers, rng)
    templates = [t for styles in corpus["copy"].values() for pool in styles.values() for t in pool]
    tok_texts = templates + [m["content"] for msgs, _ in raw[:3000] for m in msgs]
    tokenizer = _train_tokenizer(tok_texts, vocab_size=2048)
    assistant, end = tokenizer.convert_tokens_to_ids("<|assistant|>"), tokenizer.eos_token_id

    # Phase 1 rows: <|assistant|> copy <|end|> <|assistant|> copy <|end|> ... cut into equal rows.
    encoded = [[assistant] + tokenizer(t, add_special_tokens=False)["input_ids"] + [end] for t in templates]
    stream: list[int] = []
    while len(stream) < language_steps * batch_size * row_tokens:
        rng.shuffle(encoded)
        stream += [i for t in encoded for i in t]
    rows = [stream[i : i + row_tokens] for i in range(0, language_steps * batch_size * row_tokens, row_tokens)]

    # Phase 2 rows: prompt <|assistant|> answer <|end|> <|assistant|> answer <|end|> ..., loss on answers.
    examples = []
    for messages, picks in raw:
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        completion_ids: list[int] = []
        for i, pick in enumerate(picks):
            completion_ids += ([assistant] if i else []) + tokenizer(pick, add_special_tokens=False)["input_ids"] + [end]
        examples.append((list(prompt_ids), completion_ids))
    max_len = max(len(p) + len(c) for p, c in examples)

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=192, intermediate_size=512, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=max(512, max_len + 64),
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=end, bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    steps = language_steps + prompt_steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 0.5 * (1 + math.cos(math.pi * s / steps)))
    )
    model.train()
    start, losses = time.perf_counter(), []
    for step in range(steps):
        if step < language_steps:
            ids = torch.tensor(rows[step * batch_size : (step + 1) * batch_size])
            labels, mask = ids.clone(), torch.ones_like(ids)
        else:
            first = (step - language_steps) * prompt_batch_size
            batch = examples[first : first + prompt_batch_size]
            length = max(len(p) + len(c) for p, c in batch)
            ids = torch.full((len(batch), length), tokenizer.pad_token_id)
            labels = torch.full((len(batch), length), -100)
            mask = torch.zeros((len(batch), length), dtype=torch.long)
            for i, (p, c) in enumerate(batch):
                ids[i, : len(p) + len(c)] = torch.tensor(p + c)
                labels[i, len(p) : len(p) + len(c)] = torch.tensor(c)
                mask[i, : len(p) + len(c)] = 1
        labels[labels == assistant] = -100  # the turn marker is given, never predicted
        # bf16 autocast where the device has native bf16 (about 1.5x faster there); weights stay fp32.
        with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=fast_bf16(model.device.type)):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if progress:
            phase = "copy" if step < language_steps else "prompts"
            progress(f"text model ({phase}, loss {loss.item():.2f})", step + 1, steps)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "steps": steps, "seconds": round(time.perf_counter() - start, 1), "first_loss": round(losses[0], 3),
        "language_loss": round(sum(losses[language_steps - 10 : language_steps]) / 10, 3),
        "final_loss": round(sum(losses[-10:]) / 10, 3), "parameters": sum(p.numel() for p in model.parameters()),
    }


def _clip_tokenizer(texts: list[str]):
    """A CLIP tokenizer trained here. Every byte-level character must be in the vocab, with and
    without the end-of-word mark, or CLIP's BPE silently drops lone digits and punctuation."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    base = CLIPTokenizer(
        vocab={"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}, merges=[], model_max_length=77
    )
    trained = base.train_new_from_iterator(texts, vocab_size=1000)
    vocab = dict(trained.get_vocab())
    for ch in pre_tokenizers.ByteLevel.alphabet():
        for piece in (ch, ch + "</w>"):
            vocab.setdefault(piece, len(vocab))
    model = json.loads(trained.backend_tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77, pad_token="<|endoftext|>")


def _abstract_scenes(n: int, size: int, rng: "np.random.Generator") -> torch.Tensor:
    """Soft abstract compositions in [-1, 1]: a two-colour gradient with a few blurred discs."""
    import numpy as np

    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.zeros((n, 3, size, size), np.float32)
    for i in range(n):
        a, b = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3)
        angle = rng.uniform(0, 2 * np.pi)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        t = (t - t.min()) / (t.max() - t.min() + 1e-6)
        img = a[:, None, None] * (1 - t) + b[:, None, None] * t
        for _ in range(rng.integers(1, 4)):
            color, (cx, cy, r) = rng.uniform(-1, 1, 3), rng.uniform(0, 1, 3)
            disc = np.clip(1 - np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / (0.1 + 0.3 * r), 0, 1) ** 1.5
            img = img * (1 - disc) + color[:, None, None] * disc
        out[i] = img
    return torch.from_numpy(out)


def _train_vae(vae, *, steps: int, seed: int, progress: Progress | None) -> float:
    """A short autoencoder fit on abstract scenes (at 64 px; the VAE is fully convolutional), so
    the decoder paints soft colour fields instead of the high-frequency noise of random weights."""
    import numpy as np

    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    vae.train()
    for step in range(steps):
        x = _abstract_scenes(8, 64, rng)
        with torch.autocast(vae.device.type, dtype=torch.bfloat16, enabled=fast_bf16(vae.device.type)):
            posterior = vae.encode(x).latent_dist
            recon = vae.decode(posterior.sample()).sample
        loss = torch.nn.functional.mse_loss(recon.float(), x) + 1e-6 * posterior.kl().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if progress:
            progress(f"image decoder (loss {loss.item():.3f})", step + 1, steps)
    vae.eval()
    return loss.item()


def build_image_pipeline(
    out: Path, *, vae_steps: int = 120, seed: int = 0, corpus: dict | None = None, progress: Progress | None = None
) -> dict:
    """A tiny Stable Diffusion pipeline (128 px) saved in the diffusers format. The UNet and text
    encoder keep random weights; the VAE gets a short fit on abstract scenes (see _train_vae)."""
    from diffusers import (
        AutoencoderKL,
        DPMSolverMultistepScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    corpus = corpus or load_corpus()
    words = [p["name"] + " " + p["description"] for p in corpus["products"]] + [
        s for pool in corpus["personas"].values() for s in pool
    ]
    tokenizer = _clip_tokenizer(words)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=77, projection_dim=64,
            bos_token_id=0, eos_token_id=1, pad_token_id=1,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32, 64, 64), layers_per_block=1,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, norm_num_groups=8,
        sample_size=128,
    )
    vae_loss = _train_vae(vae, steps=vae_steps, seed=seed, progress=progress)
    scheduler = DPMSolverMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(out)
    return {"parameters": sum(p.numel() for m in (unet, vae, text_encoder) for p in m.parameters()),
            "vae_loss": round(vae_loss, 4)}


if __name__ == "__main__":
    import sys

    # python -m adgen.build_defaults [FOLDER]: the same builds `adgen init` makes, without the stamps.
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "default-models")
    for name, build in (("text", build_text_model), ("image", build_image_pipeline)):
        print(name, build(target / f"{name}-default", progress=lambda label, done, total: None))
