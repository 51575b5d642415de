"""Benchmark: does anything grow faster than the campaign? In-process campaigns of N creatives (text
only: Google responsive search ads, 20 variants a job, 5 audiences and as many products as N needs)
on the offline default models, one after the other in one process, side by side:

- wall seconds per creative to run the campaign, approve its passing creatives, write the HTML
  report and export the bundle; the records queries per creative of the run;
- peak RSS of the process after each size (resource.getrusage; it only grows, so a flat figure
  means the bigger campaign needed no more memory than the smaller one);
- the queries `adgen campaign list` and `adgen campaign show` send, with 200 campaigns recorded.

    ADGEN_MODELS=.adgen-test-models python bench/scale.py                          # N = 100 and 1000
    ADGEN_MODELS=.adgen-test-models python bench/scale.py --creatives 100 --candidates 3
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from sqlalchemy import event, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from adgen import records  # noqa: E402
from adgen.context import Context  # noqa: E402
from adgen.export import export_campaign  # noqa: E402
from adgen.jobs import create_campaign, run_campaign  # noqa: E402
from adgen.report import render_report  # noqa: E402
from adgen.review import approve  # noqa: E402
from adgen.settings import Settings  # noqa: E402
from adgen.spec import MAX_VARIANTS, parse_spec  # noqa: E402

AUDIENCES = ["busy-parents", "night-owl-students", "remote-professionals", "weekend-hikers", "early-risers"]


def spec(creatives: int, candidates: int) -> dict:
    """A google_rsa campaign of `creatives` creatives: MAX_VARIANTS a job, 5 audiences a product."""
    jobs = max(1, creatives // MAX_VARIANTS)
    products = -(-jobs // len(AUDIENCES))
    return {
        "campaign": f"scale-{creatives}",
        "brand": {"name": "Northwind Coffee", "voice": "warm, witty, never pushy", "banned_terms": ["cheap"]},
        "products": [{"name": f"Cold Brew {i + 1}", "description": "Smooth, low-acid cold brew concentrate.",
                      "benefits": ["low acid", "ready in seconds"], "url": f"https://example.com/cold-brew-{i + 1}"}
                     for i in range(products)],
        "audiences": [{"name": a, "persona": f"{a.replace('-', ' ').capitalize()} who like good coffee."}
                      for a in AUDIENCES[: min(len(AUDIENCES), jobs)]],
        "placements": ["google_rsa"],
        "variants": min(MAX_VARIANTS, creatives),
        "candidates": candidates,
        "seed": 7,
    }


@contextmanager
def counted(ctx: Context):
    """Count the statements sent to the records database inside the block (a one-item list)."""
    engine = records.engine_for(ctx.settings.database)
    n = [0]

    def count(*_):
        n[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield n
    finally:
        event.remove(engine, "before_cursor_execute", count)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(ctx: Context, creatives: int, candidates: int, out: Path) -> tuple[str, dict]:
    """Run, approve, report and export one campaign; returns its id and the figures."""
    figures = {}
    start = time.perf_counter()
    with counted(ctx) as queries:
        campaign_id = create_campaign(parse_spec(spec(creatives, candidates)), ctx)
        counts = run_campaign(campaign_id, ctx)
    figures["run"] = time.perf_counter() - start
    figures["run queries"] = queries[0]
    with ctx.db() as s:
        rows = s.execute(select(records.Creative.id, records.Creative.compliance)
                         .where(records.Creative.campaign_id == campaign_id)).all()
    made = len(rows)
    assert counts.get("done") and not counts.get("failed"), counts
    start = time.perf_counter()
    approve(ctx, campaign_id, [r.id for r in rows if r.compliance["ok"]], "bench")
    figures["approve"] = time.perf_counter() - start
    start = time.perf_counter()
    render_report(ctx, campaign_id)
    figures["report"] = time.perf_counter() - start
    start = time.perf_counter()
    export_campaign(ctx, campaign_id, out / campaign_id)
    figures["export"] = time.perf_counter() - start
    figures = {k: v / made for k, v in figures.items()}
    figures["creatives"] = made
    figures["peak RSS, MiB"] = peak_rss_mib()
    return campaign_id, figures


def add_campaigns(ctx: Context, count: int) -> None:
    """`count` more campaigns, each of its own brand, written straight to the records."""
    model = {"ref": "default", "path": "-", "hash": "-"}
    with Session(records.engine_for(ctx.settings.database)) as s, s.begin():
        for i in range(count):
            brand = records.Brand(name=f"filler brand {i}")
            s.add(records.Campaign(name=f"filler-{i}", brand=brand, spec={}, status="done", text_model=model,
                                   image_model=model))


def cli_queries(ctx: Context, *args: str) -> int:
    """The statements one in-process `adgen` command sends."""
    from typer.testing import CliRunner

    from cli.main import app

    with counted(ctx) as queries:
        result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return queries[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creatives", type=int, nargs="+", default=[100, 1000], help="campaign sizes, in order")
    parser.add_argument("--candidates", type=int, default=1, help="best-of-N copies per text (the spec's default is 3)")
    args = parser.parse_args()

    models = os.environ.get("ADGEN_MODELS") or str(Path("~/.adgen/models").expanduser())
    with tempfile.TemporaryDirectory() as home:
        os.environ["ADGEN_HOME"] = home  # the in-process `adgen` commands read the same home
        os.environ["ADGEN_MODELS"] = models
        ctx = Context(Settings())
        measure(ctx, MAX_VARIANTS, args.candidates, Path(home) / "exports")  # load the models, outside the figures
        results, ids = {}, {}
        for n in args.creatives:
            ids[n], results[n] = measure(ctx, n, args.candidates, Path(home) / "exports")
            print(f"N = {n}: {results[n]}", file=sys.stderr, flush=True)
        with ctx.db() as s:
            recorded = len(s.scalars(select(records.Campaign.id)).all())
        add_campaigns(ctx, 200 - recorded)
        queries = {n: (cli_queries(ctx, "campaign", "list"), cli_queries(ctx, "campaign", "show", ids[n]))
                   for n in args.creatives}

    sizes = list(results)
    rows = [("", *(f"N = {results[n]['creatives']}" for n in sizes))]
    for key in ("run", "approve", "report", "export"):
        rows.append((f"{key}, ms per creative", *(f"{results[n][key] * 1000:.1f}" for n in sizes)))
    rows.append(("run, queries per creative", *(f"{results[n]['run queries']:.2f}" for n in sizes)))
    rows.append(("peak RSS after, MiB", *(f"{results[n]['peak RSS, MiB']:.0f}" for n in sizes)))
    rows.append(("`campaign list` queries, 200 campaigns", *(str(queries[n][0]) for n in sizes)))
    rows.append(("`campaign show` queries, this campaign", *(str(queries[n][1]) for n in sizes)))
    width = max(len(r[0]) for r in rows)
    print(f"text-only campaigns (google_rsa, {MAX_VARIANTS} variants a job, {args.candidates} candidate(s) per text), "
          f"load average {os.getloadavg()[0]:.2f}")
    for row in rows:
        print(row[0].ljust(width), *(cell.rjust(12) for cell in row[1:]))


if __name__ == "__main__":
    main()
