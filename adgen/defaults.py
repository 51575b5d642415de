"""Where the offline default models live and whether they are built: `ensure_defaults` returns their
folders, building a missing or outdated one first with the build script (adgen/build_defaults.py).
A build is stamped with its recipe version and the corpus hash, so a changed builder or corpus
rebuilds it and an unchanged one is reused. Builds take a lock on the models folder, so processes
that start together build each model once and never read a half-written one.
"""

import fcntl
import json
import shutil
from pathlib import Path

from adgen.build_defaults import (
    RECIPES,
    Progress,
    build_image_pipeline,
    build_text_model,
    corpus_hash,
    load_corpus,
)
from adgen.inpaint_default import INPAINT_DIR, INPAINT_RECIPE, build_inpaint_pipeline

__all__ = ["default_manifest", "ensure_defaults", "load_corpus"]

TEXT_DIR, IMAGE_DIR = "text-default", "image-default"


def _stamp(kind: str) -> dict:
    return {"recipe": INPAINT_RECIPE if kind == "inpaint" else RECIPES[kind], "corpus": corpus_hash()}


def _current(path: Path, stamp: dict) -> bool:
    manifest = path / "adgen-default.json"
    return manifest.is_file() and {k: v for k, v in json.loads(manifest.read_text()).items() if k in stamp} == stamp


def ensure_defaults(models_dir: Path, progress: Progress | None = None) -> dict[str, Path]:
    """Build the default models under models_dir unless they are already there for this recipe and
    corpus. Idempotent; a half-written build is never taken for a finished one. The inpainting
    pipeline is built from the image pipeline's parts, so it comes after it."""
    paths = {"text": models_dir / TEXT_DIR, "image": models_dir / IMAGE_DIR, "inpaint": models_dir / INPAINT_DIR}
    builders = {
        "text": build_text_model,
        "image": build_image_pipeline,
        "inpaint": lambda out, progress=None: build_inpaint_pipeline(out, image_pipeline=paths["image"]),
    }
    if all(_current(path, _stamp(kind)) for kind, path in paths.items()):
        return paths
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / ".build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        for kind, path in paths.items():
            stamp = _stamp(kind)
            if _current(path, stamp):  # built by another process while this one waited
                continue
            tmp = path.with_name(path.name + ".partial")
            if tmp.exists():
                shutil.rmtree(tmp)
            figures = builders[kind](tmp, progress=progress)
            (tmp / "adgen-default.json").write_text(json.dumps({**stamp, **figures}, indent=2))
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
    return paths


def default_manifest(path: Path) -> dict | None:
    manifest = path / "adgen-default.json"
    return json.loads(manifest.read_text()) if manifest.is_file() else None
