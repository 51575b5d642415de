"""Where the offline default models live and whether they are built: `ensure_defaults` returns their
folders, building a missing or outdated one first with the build script (adgen/build_defaults.py).
A build is stamped with its recipe version and the corpus hash, so a changed builder or corpus
rebuilds it and an unchanged one is reused.
"""

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

__all__ = ["default_manifest", "ensure_defaults", "load_corpus"]

TEXT_DIR, IMAGE_DIR = "text-default", "image-default"


def ensure_defaults(models_dir: Path, progress: Progress | None = None) -> dict[str, Path]:
    """Build the default models under models_dir unless they are already there for this recipe and
    corpus. Idempotent; a half-written build is never taken for a finished one."""
    paths = {"text": models_dir / TEXT_DIR, "image": models_dir / IMAGE_DIR}
    builders = {"text": build_text_model, "image": build_image_pipeline}
    for kind, path in paths.items():
        stamp = {"recipe": RECIPES[kind], "corpus": corpus_hash()}
        manifest = path / "adgen-default.json"
        if manifest.is_file() and {k: v for k, v in json.loads(manifest.read_text()).items() if k in stamp} == stamp:
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

