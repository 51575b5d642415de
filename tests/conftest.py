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
