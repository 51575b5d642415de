"""Run examples/multilingual.yaml on the offline default through edits, as a reviewer would.

The default text model writes English drafts (copy_by: edits); this script replaces the drafts of
the Japanese, Arabic and Hindi audiences with the copy in examples/multilingual-copy.yaml using
`adgen review edit`, then writes the report. Usage, from the repository root:

    python examples/multilingual.py [REPORT_HTML]     # default: out/multilingual/report.html
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).parent


def adgen(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "adgen", *args], check=True, capture_output=True, text=True).stdout


def main() -> None:
    report = Path(sys.argv[1] if len(sys.argv) > 1 else "out/multilingual/report.html")
    copy = yaml.safe_load((HERE / "multilingual-copy.yaml").read_text(encoding="utf-8"))
    campaign = json.loads(adgen("campaign", "run", str(HERE / "multilingual.yaml"), "--json"))["campaign_id"]
    with tempfile.TemporaryDirectory() as folder:
        adgen("campaign", "export", campaign, "--out", folder, "--status", "any")
        creatives = json.loads((Path(folder) / "creatives.json").read_text(encoding="utf-8"))
    for creative in creatives:
        for field, text in copy.get(creative["audience"], {}).get(creative["placement"], {}).items():
            result = adgen("review", "edit", creative["id"], "--field", field, "--text", text)
        print(creative["id"], creative["audience"], creative["placement"], result.strip().splitlines()[-1]
              if creative["audience"] in copy else "English copy by the model")
    report.parent.mkdir(parents=True, exist_ok=True)
    adgen("campaign", "report", campaign, "--out", str(report))
    print(f"campaign {campaign}: open {report}")


if __name__ == "__main__":
    main()
