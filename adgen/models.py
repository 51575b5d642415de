"""Where models come from: resolving a model ref ('default', a local folder or a hub id), choosing
device and dtype for this machine, hashing local folders for lineage, and the least-recently-used
set of brand adapters that both model kinds keep loaded (`adgen.resident` holds the models).
"""

import hashlib
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from adgen.defaults import ensure_defaults
from adgen.settings import Settings

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class ModelError(ValueError):
    """A model ref that cannot be used; the message names the field and the ref."""


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: what the user wrote, where it lives, and its identity for lineage."""

    ref: str
    path: str  # local folder, or the hub id for from_pretrained
    hash: str  # content hash of a local folder, or the hub revision


def pick_device(settings: Settings) -> torch.device:
    """The device to run models on; also applies ADGEN_TORCH_THREADS, since CPU results (to the
    last bit) depend on how many threads split each reduction."""
    if settings.torch_threads and torch.get_num_threads() != settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    if settings.device:
        return torch.device(settings.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


_hashes: dict[tuple, str] = {}


def folder_hash(path: Path) -> str:
    """sha256 over every file's relative path and bytes; cached per process by size and mtime."""
    files = sorted(p for p in path.rglob("*") if p.is_file())
    key = (str(path), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key not in _hashes:
        h = hashlib.sha256()
        for p in files:
            h.update(str(p.relative_to(path)).encode())
            with p.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        _hashes[key] = h.hexdigest()[:16]
    return _hashes[key]


# The file a saved model folder always has: transformers' config, diffusers' pipeline index.
MODEL_FILES = {"text": "config.json", "image": "model_index.json", "judge": "config.json"}


def resolve_model(ref: str, kind: str, settings: Settings, progress=None) -> ModelRef:
    """Turn models.text / models.image of a spec into a ModelRef, or raise ModelError naming the field."""
    field = f"models.{kind}"
    if ref == "default":
        path = ensure_defaults(settings.models_dir, progress=progress)[kind]
        return ModelRef(ref, str(path), folder_hash(path))
    local = Path(ref).expanduser()
    if local.is_dir():
        marker = MODEL_FILES[kind]
        if not (local / marker).is_file():
            raise ModelError(f"{field}: {ref!r} is a folder but not a saved {kind} model (no {marker}); "
                             "use 'default', a folder written by save_pretrained or a hub id")
        return ModelRef(ref, str(local.resolve()), folder_hash(local.resolve()))
    if ref.startswith((".", "/", "~")) or not HUB_ID.match(ref):
        raise ModelError(f"{field}: {ref!r} is not a folder; use 'default', a local folder or a hub id like org/name")
    return ModelRef(ref, ref, _hub_revision(ref, field, MODEL_FILES[kind]))


def _hub_revision(repo_id: str, field: str, filename: str) -> str:
    """The cached or remote revision of a hub model; fails fast when neither is reachable."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        cached = hf_hub_download(repo_id, filename, local_files_only=True)
        return Path(cached).parent.name
    except (LocalEntryNotFoundError, OSError):
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "false", "False", ""):
        raise ModelError(f"{field}: hub id {repo_id!r} is not in the local cache and HF_HUB_OFFLINE is set")
    try:
        from huggingface_hub import model_info

        return model_info(repo_id, timeout=10).sha or "unknown"
    except Exception as e:  # any network or hub failure means the same thing to the user
        raise ModelError(f"{field}: cannot reach hub id {repo_id!r} ({type(e).__name__}); use 'default' or a local folder") from None


def folder_size(path: Path | str) -> int:
    """Bytes of an adapter file or of the files under its folder: what the byte cap on resident adapters counts."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class LoadedAdapters(OrderedDict[str, str]):
    """The brand adapters loaded on a resident model: name -> ref, least recently used first, with
    each one's size in bytes. Before one more is loaded the model deletes `evict(size)`'s answer,
    so at most `capacity` adapters stay loaded and, when `max_bytes` is set, their files add up to
    no more than it (one adapter larger than the cap on its own is still loaded, alone)."""

    def __init__(self, capacity: int, max_bytes: int | None = None):
        super().__init__()
        self.capacity, self.max_bytes = capacity, max_bytes
        self.sizes: dict[str, int] = {}

    def evict(self, size: int = 0) -> list[str]:
        """The adapters to delete, least recently used first, before one more of `size` bytes is loaded."""
        names, count, total = [], len(self), sum(self.sizes.values())
        for name in self:
            if count < self.capacity and (self.max_bytes is None or total + size <= self.max_bytes):
                break
            names.append(name)
            count, total = count - 1, total - self.sizes[name]
        return names

    def used(self, name: str, ref: str = "", size: int | None = None) -> None:
        self[name] = ref or self.get(name) or name
        self.sizes[name] = self.sizes.get(name, 0) if size is None else size
        self.move_to_end(name)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        del self.sizes[name]
