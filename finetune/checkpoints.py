"""Checkpoints for --resume, shared by the text and image trainers: one folder per saved step
(`step-N/state.pt`), written under a temporary name and renamed, so a crash mid-save leaves only a
`.partial` folder that is ignored and cleared, never a checkpoint --resume would take for a whole one.

State is loaded with `torch.load(weights_only=True)`: tensors, numbers, strings, lists and dicts
only, so a checkpoint cannot run code. Pictures in the state (the image trainer's validation shots)
are kept as uint8 tensors and turned back into images on load.
"""

import dataclasses
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from finetune.data import DataError

STEP = re.compile(r"^step-(\d+)$")
PICTURE = "__picture__"


def latest(out: Path) -> Path | None:
    found = [(int(m[1]), p) for p in (out / "checkpoints").glob("step-*") if (m := STEP.match(p.name)) and p.is_dir()]
    return max(found)[1] if found else None


def refuse_unfinished(out: Path, resume: bool) -> None:
    """A run folder holding checkpoints belongs to an unfinished run: continue it or use another.
    Leftovers of a save cut short are not checkpoints: they are removed here."""
    folder = out / "checkpoints"
    if not folder.is_dir():
        return
    for partial in folder.glob("*.partial*"):
        shutil.rmtree(partial, ignore_errors=True)
    if not resume and latest(out) is not None:
        raise DataError(f"{out} holds checkpoints of an unfinished run; pass --resume or choose another --out")


def resume_state(out: Path, resume: bool, config, data_hash: str) -> dict | None:
    """The newest checkpoint's state when resuming, after checking it was made with the same
    hyperparameters and data; None for a fresh run."""
    if not resume:
        return None
    checkpoint = latest(out)
    if checkpoint is None:
        raise DataError(f"--resume: {out / 'checkpoints'} has no checkpoint to resume from")
    try:
        state = _pictures_back(torch.load(checkpoint / "state.pt", weights_only=True))
    except Exception as e:  # noqa: BLE001 -- any unreadable or unsafe file: one line naming it
        raise DataError(f"--resume: {checkpoint / 'state.pt'} is not a readable adgen checkpoint ({type(e).__name__})") from None
    if state.get("config") != dataclasses.asdict(config) or state.get("data") != data_hash:
        raise DataError(f"--resume: {checkpoint} was made with other hyperparameters or data; start a new --out")
    return state


def save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{path.name}.partial-", dir=path.parent))
    try:
        torch.save(_pictures_out(state), tmp / "state.pt")
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pictures_out(value):
    if isinstance(value, Image.Image):
        return {PICTURE: torch.from_numpy(np.asarray(value.convert("RGB")).copy())}
    if isinstance(value, dict):
        return {k: _pictures_out(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_pictures_out(v) for v in value)
    return value


def _pictures_back(value):
    if isinstance(value, dict):
        if set(value) == {PICTURE}:
            return Image.fromarray(value[PICTURE].numpy())
        return {k: _pictures_back(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_pictures_back(v) for v in value)
    return value
