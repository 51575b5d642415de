"""Shared fixtures: a fresh ADGEN_HOME per test, and the offline default models built once per
machine (they are real models trained here, reused across runs while the corpus is unchanged)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / ".adgen-test-models"
EXAMPLE = REPO / "examples" / "campaign.yaml"


# `make test` runs two processes, each a whole test file at a time; the files that take longest go
# first so that neither process is left running a long one alone at the end. Within a file the
# tests keep their written order (the sort is stable).
LONGEST_FIRST = ["test_workers.py", "test_ui.py", "test_multilingual.py", "test_finetune.py", "test_campaign.py",
                 "test_worker_attempts.py", "test_exports.py", "test_product_photos.py", "test_preference.py",
                 "test_ui_security.py", "test_families.py", "test_input_limits.py", "test_ui_browser.py"]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def default_models() -> dict[str, Path]:
    from adgen.defaults import ensure_defaults

    return ensure_defaults(MODELS)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "adgen-home"
    monkeypatch.setenv("ADGEN_HOME", str(home))
    monkeypatch.setenv("ADGEN_MODELS", str(MODELS))
    for var in ("ADGEN_DATABASE_URL", "ADGEN_STORAGE_URL", "ADGEN_S3_ENDPOINT_URL", "ADGEN_DEVICE", "ADGEN_BROKER_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(REPO)
    return home


def adgen(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `adgen` command line in a subprocess, as a user would."""
    result = subprocess.run(
        [sys.executable, "-m", "adgen", *args], capture_output=True, text=True, cwd=REPO,
        env={**os.environ, **(env or {})}, timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"adgen {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def with_safety_checker(pipe, threshold: float):
    """The same pipeline (text-to-image or inpainting) with a real (tiny) CLIP safety checker whose
    concept thresholds are set: -2 flags every image (cosine similarity is never below -1), +2 flags
    none, and one in between flags the images that resemble its random concepts more than that."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=8,
    )
    checker = StableDiffusionSafetyChecker(config).eval()
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(threshold)
        checker.special_care_embeds_weights.fill_(2.0)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    checked = type(pipe)(**{**pipe.components, "safety_checker": checker, "feature_extractor": processor})
    checked.set_progress_bar_config(disable=True)
    return checked
