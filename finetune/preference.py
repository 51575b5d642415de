"""Tune a brand's copy toward what won: DPO with TRL's DPOTrainer on chosen/rejected pairs.

One flow, top to bottom: turn each pair into the generator's own prompt and the two answers (slot
markers for a model trained on them, as the SFT trainer does), split held-out pairs with a seed,
measure them on the reference model, train with DPOTrainer (a LoRA on the brand's current text
adapter, whose frozen copy is the reference, or a new LoRA on the base, whose disabled adapter is
the reference), measure again, and write the adapter in the standard PEFT format with a loss curve.

Held-out measures: preference accuracy (the share of pairs whose chosen text gets the higher
log-probability per token), the DPO reward margin beta * ((log pi - log ref)(chosen) - (log pi -
log ref)(rejected)), zero for the reference by definition, and the KL divergence from the reference
per answer token, averaged over both answers of every held-out pair.
"""

import dataclasses
import json
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch
import yaml

from adgen.precision import training_precision
from finetune.config import PreferenceConfig
from finetune.data import DataError, copy_examples, delexicalised, split
from finetune.pictures import loss_curve

Progress = Callable[[int, int, float], None]


def preference_rows(pairs: list[dict], tokenizer, brand_name: str) -> list[dict]:
    """{"prompt", "chosen", "rejected"} strings per pair, prompted exactly as write_copy prompts."""
    from adgen.text import prompt_text

    uses_slots = "{product}" in tokenizer.get_vocab()
    rows = []
    for n, pair in enumerate(pairs, start=1):
        try:
            example = copy_examples({**pair, "copy": {pair["field"]: [pair["chosen"]]}}, brand_name, n)[0]
        except ValueError as e:
            raise DataError(f"pairs line {n}: {e}") from None
        texts = [pair["chosen"].strip(), pair["rejected"].strip()]
        if uses_slots:
            texts = [delexicalised(t, example.slots) for t in texts]
        rows.append({"prompt": prompt_text(tokenizer, example.messages), "chosen": texts[0], "rejected": texts[1]})
    return rows


@contextmanager
def _reference(model):
    """The reference model inside the block: TRL's frozen copy of a brand adapter ("ref"), else
    the base with the new adapter disabled."""
    if "ref" in model.peft_config:
        model.set_adapter("ref")
        try:
            yield
        finally:
            model.set_adapter("default")
    else:
        with model.disable_adapter():
            yield


@torch.no_grad()
def _answer_scores(model, tokenizer, prompt: str, answer: str, device) -> tuple[torch.Tensor, int]:
    """Per-token log-probability distributions over the answer's positions, and the answer length."""
    prompt_ids = tokenizer(prompt, add_special_tokens=not tokenizer.chat_template)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = torch.tensor([prompt_ids + answer_ids], device=device)
    logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
    return torch.log_softmax(logits, dim=-1), torch.tensor(answer_ids, device=device)


def measure(model, tokenizer, rows: list[dict], beta: float, reference: bool) -> dict:
    """Preference accuracy, reward margin and KL on held-out rows; `reference` False means the
    model itself is the reference (before training)."""
    model.eval()
    device = next(model.parameters()).device
    correct, margins, kl, tokens = 0, [], 0.0, 0
    for row in rows:
        logp, ref_logp = {}, {}
        for side in ("chosen", "rejected"):
            dist, ids = _answer_scores(model, tokenizer, row["prompt"], row[side], device)
            logp[side] = dist.gather(1, ids[:, None]).squeeze(1)
            if reference:
                with _reference(model):
                    ref_dist, _ = _answer_scores(model, tokenizer, row["prompt"], row[side], device)
                ref_logp[side] = ref_dist.gather(1, ids[:, None]).squeeze(1)
                kl += float((dist.exp() * (dist - ref_dist)).sum())
            else:
                ref_logp[side] = logp[side]
            tokens += len(ids)
        correct += int(logp["chosen"].mean() > logp["rejected"].mean())
        margins.append(beta * float((logp["chosen"].sum() - ref_logp["chosen"].sum())
                                    - (logp["rejected"].sum() - ref_logp["rejected"].sum())))
    return {"preference_accuracy": round(correct / len(rows), 4), "reward_margin": round(sum(margins) / len(rows), 4),
            "kl_per_token": round(kl / tokens, 5), "pairs": len(rows)}


def train_preference(pairs: list[dict], brand_name: str, base, adapter: Path | None, config: PreferenceConfig,
                     out: Path, *, resume: bool = False, progress: Progress | None = None) -> dict:
    """Train into out/adapter (out/checkpoints for --resume); returns metrics. `base` is the resolved
    base model (adgen.models.ModelRef); `adapter` the folder of the brand's current text adapter, or None."""
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(base.path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if config.fields:
        pairs = [p for p in pairs if p["field"] in config.fields]
    rows = preference_rows(pairs, tokenizer, brand_name)
    train_idx, val_idx = split(len(rows), config.validation_fraction, config.seed)
    train_rows, val_rows = [rows[i] for i in train_idx], [rows[i] for i in val_idx]
    if len(train_rows) < 2:
        raise DataError(f"{len(rows)} pairs leave {len(train_rows)} to train on; preference tuning needs more "
                        "(import more results, or review more creatives)")

    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
    peft_config = None
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
    else:
        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        targets = [t for t in config.target_modules if t in present]
        if not targets:
            raise DataError(f"target_modules: none of {config.target_modules} is a layer of {base.ref}")
        peft_config = LoraConfig(r=config.rank, lora_alpha=config.alpha, target_modules=targets, task_type="CAUSAL_LM")
    before = measure(model, tokenizer, val_rows, config.beta, reference=False)

    class _Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if progress and logs and "loss" in logs:
                progress(state.global_step, state.max_steps, float(logs["loss"]))

    precision, precision_note = training_precision(config.mixed_precision)
    args = DPOConfig(
        output_dir=str(out / "checkpoints"), max_steps=config.steps, per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate, beta=config.beta, max_length=config.max_length, seed=config.seed,
        logging_steps=1, save_strategy="steps" if config.checkpoint_every else "no",
        save_steps=config.checkpoint_every or config.steps, report_to=[], disable_tqdm=True,
        bf16=precision == "bf16", fp16=precision == "fp16",
        lr_scheduler_type="constant", warmup_steps=0, gradient_checkpointing=False,
        loss_type=[config.loss_type, "sft"] if config.rpo_alpha else [config.loss_type],
        f_divergence_type=config.f_divergence_type, label_smoothing=config.label_smoothing,
        loss_weights=[1.0, config.rpo_alpha] if config.rpo_alpha else None,
    )
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(train_rows),
                         processing_class=tokenizer, peft_config=peft_config, callbacks=[_Progress()])
    trainer.remove_callback(PrinterCallback)  # the progress bar reports the loss; the raw log dicts only clutter
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    policy = trainer.model
    after = measure(policy, tokenizer, val_rows, config.beta, reference=True)
    losses = [round(float(e["loss"]), 5) for e in trainer.state.log_history if "loss" in e]

    metrics = {
        "held_out_before": before, "held_out_after": after, "train_pairs": len(train_rows),
        "held_out_pairs": len(val_rows), "steps": config.steps, "resumed": resume,
        "seconds": round(result.metrics.get("train_runtime", 0.0), 1),
        "final_train_loss": round(sum(losses[-5:]) / max(1, len(losses[-5:])), 4),
        "on_adapter": adapter is not None, "processes": 1,
        "mixed_precision": precision, "precision_note": precision_note,
    }
    folder = out / "adapter"
    policy.save_pretrained(folder, selected_adapters=["default"])
    loss_curve(folder / "loss.png", losses, [], f"preference tuning (DPO): held-out preference accuracy "
               f"{before['preference_accuracy']:.0%} -> {after['preference_accuracy']:.0%}")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (folder / "recipe.yaml").write_text(yaml.safe_dump(
        {"kind": "preference", "base": base.ref, "hyperparameters": dataclasses.asdict(config)}, sort_keys=False))
    return metrics
