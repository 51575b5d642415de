"""The code stays readable at a glance: no source module over 500 lines (see README, "Layout")."""

from tests.conftest import REPO

MAX_LINES = 500
PACKAGES = ("adgen", "workers", "ui", "finetune", "cli", "bench")


def test_no_source_module_is_over_500_lines():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines())
             for package in PACKAGES for p in (REPO / package).rglob("*.py")}
    assert sizes, "no source modules found"
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}
