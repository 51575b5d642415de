"""Checkpoints for --resume, shared by the text and image trainers: one folder per saved step,
written to a side folder and renamed, so a crash mid-save never leaves a checkpoint that --resume
would take for a whole one."""

import dataclasses
from pathlib import Path

import torch

from finetune.data import DataError


def latest(out: Path) -> Path | None:
    found = sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    return found[-1] if found else None


def refuse_unfinished(out: Path, resume: bool) -> None:
    """A run folder holding checkpoints belongs to an unfinished run: continue it or use another."""
    if not resume and (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
        raise DataError(f"{out} holds checkpoints of an unfinished run; pass --resume or choose another --out")


def resume_state(out: Path, resume: bool, config, data_hash: str) -> dict | None:
    """The newest checkpoint's state when resuming, after checking it was made with the same
    hyperparameters and data; None for a fresh run."""
    if not resume:
        return None
    checkpoint = latest(out)
    if checkpoint is None:
        raise DataError(f"--resume: {out / 'checkpoints'} has no checkpoint to resume from")
    state = torch.load(checkpoint / "state.pt", weights_only=False)
    if state["config"] != dataclasses.asdict(config) or state["data"] != data_hash:
        raise DataError(f"--resume: {checkpoint} was made with other hyperparameters or data; start a new --out")
    return state


def save(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    torch.save(state, tmp / "state.pt")
    tmp.rename(path)
