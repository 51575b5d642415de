"""Training hyperparameters as typed dataclasses, one field per knob with its help text, validated
when constructed; YAML recipes (finetune/recipes/) fill them, and a bad field raises one line that
names it.
"""

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml


class RecipeError(ValueError):
    """A recipe or hyperparameter that cannot be used; the message names the field."""


def _help(text: str, default, **kw):
    return field(default=default, metadata={"help": text}, **kw)


@dataclass
class TextConfig:
    """LoRA on a causal LM (transformers + peft + accelerate)."""

    rank: int = _help("LoRA rank r: the size of the low-rank update.", 8)
    alpha: int = _help("LoRA alpha; the update is scaled by alpha / rank.", 16)
    dropout: float = _help("Dropout on the LoRA input during training.", 0.0)
    target_modules: list[str] = _help(
        "Linear layers that get a LoRA (names inside the model); attention and MLP projections of Llama-like models.",
        None, )
    steps: int = _help("Optimizer steps.", 60)
    batch_size: int = _help("Rows per optimizer step, over all processes together.", 8)
    learning_rate: float = _help("AdamW peak learning rate (constant after a short warm-up).", 2e-3)
    weight_decay: float = _help("AdamW weight decay.", 0.0)
    warmup_steps: int = _help("Linear warm-up steps.", 5)
    max_length: int = _help("Rows are cut to this many tokens.", 384)
    validation_fraction: float = _help("Share of rows held out for validation loss and perplexity.", 0.2)
    checkpoint_every: int = _help("Save a resumable checkpoint every this many steps (0: only at the end).", 20)
    seed: int = _help("Seed for the split, the row order and the LoRA initialisation.", 0)
    mixed_precision: str = _help("'no', 'bf16' or 'fp16' (accelerate); bf16 on GPUs that have it.", "no")

    def __post_init__(self):
        if self.target_modules is None:
            self.target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        if not 0 < self.validation_fraction < 1:
            raise RecipeError(f"validation_fraction: {self.validation_fraction} is outside (0, 1)")
        _check(self)


# TRL DPOTrainer losses built on the chosen-rejected reward difference: the ones every f-divergence applies to.
LOSS_TYPES = ("sigmoid", "ipo", "robust", "hinge", "sigmoid_norm")
F_DIVERGENCES = ("reverse_kl", "forward_kl", "js_divergence", "alpha_divergence")


@dataclass
class PreferenceConfig:
    """DPO (TRL's DPOTrainer) on chosen/rejected copy pairs, as a LoRA on the brand's text adapter or the base."""

    beta: float = _help("DPO beta: how far the tuned model may move from the reference (higher: closer).", 0.1)
    rpo_alpha: float = _help(
        "Weight of the chosen text's negative log-likelihood per token, added to the DPO loss (RPO: TRL's "
        "loss_type ['sigmoid', 'sft'] weighted [1, rpo_alpha]); keeps the copy well-formed while it moves toward "
        "the chosen style. 0: plain DPO.", 0.0)
    loss_type: str = _help(
        "TRL's DPO loss: 'sigmoid' (DPO), 'ipo' (squared, bounded: stops pushing once the margin reaches 1 / (2 beta)), "
        "'robust' (DPO that assumes label_smoothing of the labels are flipped), 'hinge', 'sigmoid_norm' (DPO on the "
        "log-ratios per token).",
        "sigmoid")
    f_divergence_type: str = _help(
        "How the tuned model is held to the reference (TRL's f-DPO): 'reverse_kl' (DPO's own, mode-seeking), "
        "'forward_kl', 'js_divergence' or 'alpha_divergence' (mode-covering: they cap how far one text's "
        "probability can be pushed up).", "reverse_kl")
    label_smoothing: float = _help(
        "With loss_type 'robust': the assumed share of pairs whose labels are wrong, in [0, 0.5).", 0.0)
    fields: list[str] = _help(
        "Train only on pairs of these copy fields (e.g. [headline]); empty: every field.", None)
    rank: int = _help("LoRA rank r of a new adapter (a brand adapter being tuned keeps its own).", 8)
    alpha: int = _help("LoRA alpha of a new adapter; the update is scaled by alpha / rank.", 16)
    target_modules: list[str] = _help("Linear layers that get a LoRA when there is no brand adapter yet.", None)
    steps: int = _help("Optimizer steps.", 40)
    batch_size: int = _help("Pairs per optimizer step.", 8)
    learning_rate: float = _help("AdamW learning rate.", 3e-4)
    max_length: int = _help("Prompt and answer are cut to this many tokens together.", 384)
    validation_fraction: float = _help("Share of pairs held out for preference accuracy, reward margin and KL.", 0.2)
    checkpoint_every: int = _help("Save a resumable checkpoint every this many steps (0: only at the end).", 20)
    seed: int = _help("Seed for the split, the pair order and the LoRA initialisation.", 0)
    mixed_precision: str = _help("'no', 'bf16' or 'fp16'; bf16 on GPUs that have it.", "no")

    def __post_init__(self):
        if self.target_modules is None:
            self.target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        if not 0 < self.validation_fraction < 1:
            raise RecipeError(f"validation_fraction: {self.validation_fraction} is outside (0, 1)")
        if self.beta <= 0:
            raise RecipeError(f"beta: must be above 0, got {self.beta}")
        if self.rpo_alpha < 0:
            raise RecipeError(f"rpo_alpha: must be 0 or above, got {self.rpo_alpha}")
        if self.loss_type not in LOSS_TYPES:
            raise RecipeError(f"loss_type: {self.loss_type!r} is not valid; use {', '.join(LOSS_TYPES)}")
        if self.f_divergence_type not in F_DIVERGENCES:
            raise RecipeError(f"f_divergence_type: {self.f_divergence_type!r} is not valid; use {', '.join(F_DIVERGENCES)}")
        if not 0 <= self.label_smoothing < 0.5:
            raise RecipeError(f"label_smoothing: {self.label_smoothing} is outside [0, 0.5)")
        if self.label_smoothing and self.loss_type != "robust":
            raise RecipeError(f"label_smoothing: only loss_type 'robust' uses it, not {self.loss_type!r}")
        self.fields = list(self.fields or [])
        _check(self)


@dataclass
class ImageConfig:
    """LoRA on a diffusers text-to-image pipeline's UNet (optionally its text encoder too)."""

    rank: int = _help("LoRA rank r.", 8)
    alpha: int = _help("LoRA alpha; the update is scaled by alpha / rank.", 8)
    target_modules: list[str] = _help(
        "UNet layers that get a LoRA: attention projections, as in diffusers' text-to-image LoRA example.",
        None, )
    train_text_encoder: bool = _help("Also put a LoRA on the CLIP text encoder's attention.", False)
    resolution: int = _help("Training side in pixels; 0: the pipeline's native size.", 0)
    crop: str = _help("'center': resize the short side and center crop to a square; 'bucket': keep the "
                      "aspect ratio, resized to the nearest of a few buckets of about the same area.", "center")
    instance_token: str | None = _help("A rare word put before every caption (DreamBooth style), e.g. 'nwstyle'.", None)
    steps: int = _help("Optimizer steps.", 200)
    batch_size: int = _help("Images per optimizer step, over all processes together.", 4)
    learning_rate: float = _help("AdamW learning rate.", 1e-3)
    min_side: int = _help("Images whose shorter side is below this many pixels are refused.", 64)
    validation_every: int = _help("Render the validation prompts every this many steps into the grid (0: start and end only).", 100)
    validation_prompts: list[str] = _help("Prompts rendered into validation.png; default: the first captions.", None)
    validation_steps: int = _help("Denoising steps of each validation image.", 20)
    checkpoint_every: int = _help("Save a resumable checkpoint every this many steps (0: only at the end).", 100)
    seed: int = _help("Seed for the row order, noise, timesteps and validation images.", 0)
    mixed_precision: str = _help("'no', 'bf16' or 'fp16' (accelerate).", "no")

    def __post_init__(self):
        if self.target_modules is None:
            self.target_modules = ["to_q", "to_k", "to_v", "to_out.0"]
        if self.crop not in ("center", "bucket"):
            raise RecipeError(f"crop: {self.crop!r} is not valid; use 'center' or 'bucket'")
        _check(self)


def _check(config) -> None:
    for name in ("rank", "alpha", "steps", "batch_size"):
        if getattr(config, name) < 1:
            raise RecipeError(f"{name}: must be at least 1, got {getattr(config, name)}")
    if not 0 < config.learning_rate < 1:
        raise RecipeError(f"learning_rate: {config.learning_rate} is outside (0, 1)")
    if config.mixed_precision not in ("no", "bf16", "fp16"):
        raise RecipeError(f"mixed_precision: {config.mixed_precision!r} is not valid; use no, bf16 or fp16")


RECIPES = resources.files("finetune").joinpath("recipes")


def load_recipe(path: Path | None, cls, kind: str) -> tuple:
    """A config from a recipe file (or the shipped default), and the recipe's `base` model.
    A recipe is YAML: `base:` (a model ref), `kind:` (text or image) and `hyperparameters:`."""
    if path is None:
        text, where = RECIPES.joinpath(f"default-{kind}.yaml").read_text(), f"default-{kind}.yaml"
    else:
        if not Path(path).is_file():
            raise RecipeError(f"--config: {path} is not a file")
        text, where = Path(path).read_text(), str(path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"{where}: not valid YAML ({e.problem} at line {e.problem_mark.line + 1})") from None
    if data.get("kind", kind) != kind:
        raise RecipeError(f"{where}: kind is {data['kind']!r}, but this is 'adgen finetune {kind}'")
    values = data.get("hyperparameters") or {}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise RecipeError(f"{where}: hyperparameters.{unknown[0]} is not a field; valid: {', '.join(sorted(known))}")
    try:
        config = cls(**values)
    except RecipeError as e:
        raise RecipeError(f"{where}: hyperparameters.{e}") from None
    except TypeError as e:
        raise RecipeError(f"{where}: {e}") from None
    return config, data.get("base", "default")


