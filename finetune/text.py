"""Train a brand text adapter: LoRA on a causal LM with transformers + peft + accelerate.

One flow, top to bottom: tokenize the rows (copy rows in the generator's own prompt format, loss on
the answer only), split train/validation with a seed, measure validation loss and perplexity, train
with periodic checkpoints (resumable), measure again, and write the adapter in the standard PEFT
format (adapter_config.json + adapter_model.safetensors) with a loss curve and a model card.

The same code runs on one CPU or under `accelerate launch` on many GPUs: each process takes its
share of every global batch and accelerate averages the gradients.
"""

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
import yaml

from adgen.precision import training_precision
from finetune import checkpoints
from finetune.config import TextConfig
from finetune.data import DataError, TextData, delexicalised, split
from finetune.pictures import loss_curve

Progress = Callable[[int, int, float], None]


def _tokenize(data: TextData, tokenizer, max_length: int) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per example; prompt tokens get label -100 so only the answer is learned.
    A model trained on slot markers ({product}, ...) learns the brand's copy delexicalised, as the
    offline default was trained."""
    from adgen.text import prompt_text

    vocab = tokenizer.get_vocab()
    uses_slots = "{product}" in vocab
    rows = []
    for ex in data.examples:
        answer = delexicalised(ex.answer, ex.slots) if uses_slots else ex.answer
        if ex.messages is None:
            prompt_ids = tokenizer("", add_special_tokens=True)["input_ids"] if not tokenizer.chat_template else []
        else:
            prompt = prompt_text(tokenizer, ex.messages)
            prompt_ids = tokenizer(prompt, add_special_tokens=not tokenizer.chat_template)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt_ids + answer_ids)[:max_length]
        labels = ([-100] * len(prompt_ids) + answer_ids)[:max_length]
        rows.append((ids, labels))
    # A row cut inside its prompt teaches nothing, and a batch of only such rows has no loss at all.
    empty = sum(all(label == -100 for label in labels) for _, labels in rows)
    if empty:
        raise DataError(f"max_length: {empty} of {len(rows)} rows keep no answer token within {max_length} tokens "
                        "(this tokenizer makes their prompt longer); raise max_length in the recipe")
    return rows


def _batch(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    length = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), length), pad_id)
    labels = torch.full((len(rows), length), -100)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


@torch.no_grad()
def evaluate(model, rows, pad_id: int, autocast=nullcontext, batch_size: int = 16) -> dict:
    """Validation loss per answer token and its perplexity."""
    model.eval()
    total, tokens = 0.0, 0
    for i in range(0, len(rows), batch_size):
        batch = {k: v.to(model.device) for k, v in _batch(rows[i : i + batch_size], pad_id).items()}
        with autocast():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        target = batch["labels"][:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), target, ignore_index=-100, reduction="sum")
        total, tokens = total + loss.item(), tokens + int((target != -100).sum())
    model.train()
    mean = total / max(tokens, 1)
    return {"loss": round(mean, 4), "perplexity": round(math.exp(mean), 3), "tokens": tokens}


def _order(step: int, n: int, batch_size: int, seed: int) -> list[int]:
    """The rows of global batch `step`: a seeded shuffle per epoch, so a resumed run sees exactly
    the batches the interrupted one would have."""
    per_epoch = max(1, n // batch_size)
    epoch, position = divmod(step, per_epoch)
    order = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order[position * batch_size : (position + 1) * batch_size]



def train_text(
    data: TextData, base, config: TextConfig, out: Path, *, resume: bool = False, progress: Progress | None = None
) -> dict:
    """Train into out/adapter (with out/checkpoints for --resume); returns metrics. `base` is the
    resolved base model (adgen.models.ModelRef)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    precision, precision_note = training_precision(config.mixed_precision)
    accelerator = Accelerator(mixed_precision=precision)
    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = _tokenize(data, tokenizer, config.max_length)
    train_idx, val_idx = split(len(rows), config.validation_fraction, config.seed)
    train_rows, val_rows = [rows[i] for i in train_idx], [rows[i] for i in val_idx]
    if len(train_rows) < config.batch_size:
        raise DataError(
            f"{len(train_rows)} training examples (of {len(rows)}, {len(val_rows)} held out) are fewer than "
            f"batch_size {config.batch_size}; add rows or lower batch_size in the recipe"
        )

    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in config.target_modules if t in present]
    if not targets:
        raise DataError(f"target_modules: none of {config.target_modules} is a layer of {base.ref}")
    model = get_peft_model(model, LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=targets, task_type="CAUSAL_LM",
    ))
    model.to(accelerator.device)
    before = evaluate(model, val_rows, tokenizer.pad_token_id, accelerator.autocast)  # LoRA starts as a no-op: this is the base model

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, config.warmup_steps)))
    start_step, losses, validation = 0, [], [(0, before["loss"])]
    state = checkpoints.resume_state(out, resume, config, data.hash)
    if state:
        set_peft_model_state_dict(model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start_step, losses, validation = state["step"], state["losses"], state["validation"]
    model, optimizer = accelerator.prepare(model, optimizer)

    model.train()
    began = time.perf_counter()
    for step in range(start_step, config.steps):
        global_batch = _order(step, len(train_rows), config.batch_size, config.seed)
        mine = global_batch[accelerator.process_index :: accelerator.num_processes]
        batch = {k: v.to(accelerator.device) for k, v in _batch([train_rows[i] for i in mine], tokenizer.pad_token_id).items()}
        with accelerator.autocast():
            loss = model(**batch).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(accelerator.gather(loss.detach()).mean().item(), 5))
        if progress and accelerator.is_main_process:
            progress(step + 1, config.steps, losses[-1])
        done = step + 1
        if config.checkpoint_every and done % config.checkpoint_every == 0 and done < config.steps:
            validation.append((done, evaluate(accelerator.unwrap_model(model), val_rows, tokenizer.pad_token_id, accelerator.autocast)["loss"]))
            if accelerator.is_main_process:
                checkpoints.save(out / "checkpoints" / f"step-{done}", {
                    "adapter": get_peft_model_state_dict(accelerator.unwrap_model(model)),
                    "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "step": done,
                    "losses": losses, "validation": validation, "config": dataclasses.asdict(config), "data": data.hash,
                })
    seconds = round(time.perf_counter() - began, 1)
    after = evaluate(accelerator.unwrap_model(model), val_rows, tokenizer.pad_token_id, accelerator.autocast)
    validation.append((config.steps, after["loss"]))

    metrics = {
        "validation_before": before, "validation_after": after, "train_examples": len(train_rows),
        "validation_examples": len(val_rows), "steps": config.steps, "resumed_from": start_step or None,
        "seconds": seconds, "final_train_loss": round(sum(losses[-5:]) / len(losses[-5:]), 4),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "processes": accelerator.num_processes, "mixed_precision": precision, "precision_note": precision_note, "skipped_rows": data.skipped, "negatives": data.negatives,
    }
    if accelerator.is_main_process:
        adapter = out / "adapter"
        accelerator.unwrap_model(model).save_pretrained(adapter)
        loss_curve(adapter / "loss.png", losses, validation, f"text adapter: validation perplexity "
                   f"{before['perplexity']} -> {after['perplexity']}")
        (adapter / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (adapter / "recipe.yaml").write_text(yaml.safe_dump(
            {"kind": "text", "base": base.ref, "hyperparameters": dataclasses.asdict(config)}, sort_keys=False))
    accelerator.wait_for_everyone()
    return metrics

