"""The `adgen` command line: build the default models, run campaigns, report, review and export,
and the commands of the apps registered on it (workers, the web app, finetuning and adapters).

Nothing in the core imports this package; it is the top of the dependency graph. Every command reads its settings from the environment (ADGEN_HOME, ADGEN_DATABASE_URL, ...). Bad
input ends with a one-line error naming the field or file and exit status 2, having written nothing.
"""

import getpass
import json
import os
import sys
from pathlib import Path

import typer
from rich.progress import Progress

from cli.console import (
    console,
    context,
    model_progress,
    out,
    print_table,
    progress,
    quiet_model_loading,
    user_errors,
)

app = typer.Typer(help="adgen: brand-tuned ad copy and images, laid out per placement, checked, reviewed and exported.",
                  no_args_is_help=True, add_completion=False)
campaign_app = typer.Typer(help="Run, inspect, report and export campaigns.", no_args_is_help=True)
review_app = typer.Typer(help="Approve, reject and edit creatives.", no_args_is_help=True)
creative_app = typer.Typer(help="Inspect and re-render single creatives.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
app.add_typer(review_app, name="review")
app.add_typer(creative_app, name="creative")


def _run_here(campaign_id: str, ctx, bar: Progress, label: str, total: int, only: list[str] | None = None) -> dict:
    """Run a recorded campaign's unfinished jobs in this process with a bar advancing per job
    (only for the jobs in `only`, when given); returns the job counts."""
    from adgen.jobs import run_campaign

    task = bar.add_task(label, total=total)

    def on_job(job, status):
        if only is None or job.id in only:
            bar.update(task, advance=1, description=f"{job.audience} / {job.placement}: {status}")

    return run_campaign(campaign_id, ctx, on_job=on_job)


def _print_counts(counts: dict) -> None:
    """The jobs' outcome on stderr; exit status 1 when any failed."""
    console.print("jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    if counts.get("failed"):
        raise typer.Exit(1)


@app.command()
def init():
    """Build the offline default text, image and inpainting models under ADGEN_HOME (idempotent), and, when no
    C2PA signing certificate is configured, a local test certificate chain (for testing only)."""
    from adgen.defaults import default_manifest, ensure_defaults
    from adgen.provenance import ensure_test_certificate
    from adgen.settings import get_settings

    settings = get_settings()
    if settings.c2pa_cert is None:
        folder = ensure_test_certificate(settings.home)
        out.print(f"C2PA: test certificate chain in {folder} (manifests it signs are trusted by no one; "
                  "set ADGEN_C2PA_CERT and ADGEN_C2PA_KEY for real ones)")
    with progress(transient=True) as bar:
        paths = ensure_defaults(settings.models_dir, progress=model_progress(bar))
    for kind, path in paths.items():
        info = default_manifest(path) or {}
        extra = f", final loss {info['final_loss']}" if "final_loss" in info else ""
        out.print(f"{kind}: {path} ({info.get('parameters', '?'):,} parameters{extra})")


@campaign_app.command("run")
@user_errors
def campaign_run(spec_file: Path = typer.Argument(..., help="Campaign spec (YAML)."),
                 json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
                 detach: bool = typer.Option(False, "--detach", help="With a broker: send the jobs to the workers, print the id and return.")):
    """Validate a spec, record the campaign and generate every creative, with a progress bar. With
    ADGEN_BROKER_URL set the jobs run on `adgen worker` processes and this command follows them."""
    from adgen.jobs import create_campaign, dispatch
    from adgen.spec import SpecError, load_spec

    ctx = context()
    if detach and not ctx.settings.broker_url:
        raise SpecError("--detach: needs ADGEN_BROKER_URL (jobs run on workers); without it the campaign runs here")
    spec = load_spec(spec_file)
    quiet_model_loading()
    with progress() as bar:
        campaign_id = create_campaign(spec, ctx, progress=model_progress(bar))
        n_jobs = len(spec.products) * len(spec.audiences) * len(spec.placements)
        if not dispatch(campaign_id, ctx):
            counts = _run_here(campaign_id, ctx, bar, f"campaign {spec.campaign}", n_jobs)
        elif detach:
            counts = None
        else:
            from workers.cli import follow_on_workers

            counts = follow_on_workers(campaign_id, ctx, bar, n_jobs)
    if counts is None:  # detached: the workers go on
        if json_out:
            out.print_json(json.dumps({"campaign_id": campaign_id, "jobs": None}))
        else:
            out.print(campaign_id)
        return
    if json_out:
        out.print_json(json.dumps({"campaign_id": campaign_id, "jobs": counts}))
        if counts.get("failed"):
            raise typer.Exit(1)
        return
    out.print(campaign_id)
    _print_counts(counts)


@campaign_app.command("resume")
@user_errors
def campaign_resume(campaign_id: str):
    """Run the unfinished jobs of a recorded campaign: pending ones, failed ones again, and ones whose
    run was lost (still running past the job time limit). With ADGEN_BROKER_URL set they are sent to
    the workers and followed; otherwise they run in this process, unless another runner holds the
    campaign (then it makes them)."""
    from adgen.jobs import dispatch, reset_failed
    from adgen.recovery import recover

    ctx = context()
    _summary(ctx, campaign_id)  # an unknown id fails here, before any model loads
    reset_failed(campaign_id, ctx)
    recover(campaign_id, ctx)
    jobs = _summary(ctx, campaign_id)["jobs"]
    left = sum(n for s, n in jobs.items() if s != "done")
    with progress() as bar:
        if dispatch(campaign_id, ctx):
            from workers.cli import follow_on_workers

            counts = follow_on_workers(campaign_id, ctx, bar, sum(jobs.values()))
        else:
            quiet_model_loading()
            counts = _run_here(campaign_id, ctx, bar, f"campaign {campaign_id}", left)
    _print_counts(counts)


@campaign_app.command("list")
def campaign_list():
    """Every campaign with its status and creative counts."""
    from sqlalchemy import case, func, select

    from adgen.records import Brand, Campaign, Creative

    # One query however many campaigns: the counts are grouped once and joined, not asked per row.
    counts = (select(Creative.campaign_id, func.count().label("made"),
                     func.sum(case((Creative.status == "approved", 1), else_=0)).label("approved"))
              .group_by(Creative.campaign_id).subquery())
    query = (select(Campaign.id, Campaign.name, Brand.name, Campaign.status, func.coalesce(counts.c.made, 0),
                    func.coalesce(counts.c.approved, 0), Campaign.created_at)
             .join(Brand, Campaign.brand_id == Brand.id).outerjoin(counts, counts.c.campaign_id == Campaign.id)
             .order_by(Campaign.created_at, Campaign.id))
    rows = [("id", "name", "brand", "status", "creatives", "approved", "created")]
    with context().db() as s:
        for id_, name, brand, status, made, approved, created in s.execute(query):
            rows.append((id_, name, brand, status, str(made), str(approved), created.strftime("%Y-%m-%d %H:%M")))
    print_table(rows)


def _summary(ctx, campaign_id: str) -> dict:
    """One campaign's counts in three queries (the campaign, its jobs, its creatives), however many
    campaigns, jobs and creatives there are; only the columns counted are read."""
    from sqlalchemy import select

    from adgen.records import Brand, Campaign, Creative, Job

    with ctx.db() as s:
        found = s.execute(select(Campaign, Brand.name).join(Brand, Campaign.brand_id == Brand.id)
                          .where(Campaign.id == campaign_id)).first()
        if found is None:
            raise LookupError(f"no campaign {campaign_id!r}; see 'adgen campaign list'")
        c, brand = found
        jobs = s.execute(select(Job.id, Job.status, Job.error).where(Job.campaign_id == campaign_id)
                         .order_by(Job.position)).all()
        creatives = s.execute(select(Creative.status, Creative.compliance, Creative.lineage)
                              .where(Creative.campaign_id == campaign_id)).all()
    by_status: dict[str, int] = {}
    for cr in creatives:
        by_status[cr.status] = by_status.get(cr.status, 0) + 1
    job_status: dict[str, int] = {}
    for j in jobs:
        job_status[j.status] = job_status.get(j.status, 0) + 1
    return {
        "id": c.id, "name": c.name, "brand": brand, "status": c.status,
        "text_model": c.text_model, "image_model": c.image_model,
        "jobs": job_status, "creatives": by_status, "total": len(creatives),
        "compliance": {"pass": sum(cr.compliance["ok"] for cr in creatives),
                       "fail": sum(not cr.compliance["ok"] for cr in creatives),
                       "fixed": sum(bool(cr.lineage["fixes"]) for cr in creatives)},
        "failed_jobs": [{"id": j.id, "error": j.error} for j in jobs if j.status == "failed"],
    }


@campaign_app.command("show")
@user_errors
def campaign_show(campaign_id: str, json_out: bool = typer.Option(False, "--json")):
    """Status, counts and the compliance summary of one campaign."""
    info = _summary(context(), campaign_id)
    if json_out:
        out.print_json(json.dumps(info))
        return
    out.print(f"[bold]{info['name']}[/bold] ({info['id']}), brand {info['brand']}: {info['status']}")
    out.print(f"text model {info['text_model']['ref']} ({info['text_model']['hash']}), "
              f"image model {info['image_model']['ref']} ({info['image_model']['hash']})")
    out.print("jobs: " + ", ".join(f"{n} {s}" for s, n in info["jobs"].items()))
    out.print(f"creatives: {info['total']} (" + ", ".join(f"{n} {s}" for s, n in info["creatives"].items()) + ")")
    comp = info["compliance"]
    out.print(f"compliance: {comp['pass']} pass, {comp['fail']} fail, {comp['fixed']} needed a fix (regenerated or shortened)")
    for j in info["failed_jobs"]:
        out.print(f"[red]failed[/red] {j['id']}: {j['error']}")


@campaign_app.command("report")
@user_errors
def campaign_report(campaign_id: str, out_file: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write.")):
    """Write a self-contained HTML contact sheet: an audience x placement grid per product."""
    from adgen.report import render_report

    ctx = context()
    _summary(ctx, campaign_id)
    html = render_report(ctx, campaign_id)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(html)
    out.print(str(out_file))


@campaign_app.command("export")
@user_errors
def campaign_export(campaign_id: str, out_dir: Path = typer.Option(..., "--out", help="New folder for the bundle."),
                    status: str = typer.Option("approved", "--status", help="approved (default), pending, rejected or any."),
                    top: int | None = typer.Option(None, "--top", min=1, help="Only the K best-scored creatives of each cell.")):
    """Export creatives.json, creatives.csv, the images and a folder per ad platform with the file its
    bulk tool imports; approved creatives only by default (any other status makes a PREVIEW)."""
    from adgen.export import export_campaign

    ctx = context()
    entries = export_campaign(ctx, campaign_id, out_dir, status=status, top=top)
    folders = sorted(p.name for p in out_dir.iterdir() if p.is_dir() and p.name != "images")
    out.print(f"{len(entries)} creatives -> {out_dir} (platform folders: {', '.join(folders) or 'none'})")
    if ctx.settings.c2pa_cert is None:
        console.print("note: C2PA manifests signed with the local test certificate: for testing only, trusted by no one")


def _reviewer(reviewer: str | None) -> str:
    return reviewer or os.environ.get("ADGEN_REVIEWER") or getpass.getuser()


@review_app.command("approve")
@user_errors
def review_approve(campaign_id: str, all_: bool = typer.Option(False, "--all", help="Every pending creative."),
                   creative: list[str] = typer.Option(None, "--creative", help="A creative id; repeat for more."),
                   reviewer: str = typer.Option(None, help="Who decides (default: ADGEN_REVIEWER or the login name).")):
    """Approve creatives; only creatives that pass their checks can be approved."""
    from adgen.review import ReviewError, approve

    if all_ == bool(creative):
        raise ReviewError("give --all or one or more --creative ids")
    n = approve(context(), campaign_id, None if all_ else creative, _reviewer(reviewer))
    out.print(f"approved {n}")


@review_app.command("reject")
@user_errors
def review_reject(campaign_id: str, reason: str = typer.Option(..., help="Why; kept with the decision."),
                  all_: bool = typer.Option(False, "--all"), creative: list[str] = typer.Option(None, "--creative"),
                  reviewer: str = typer.Option(None)):
    """Reject creatives with a reason."""
    from adgen.review import ReviewError, reject

    if all_ == bool(creative):
        raise ReviewError("give --all or one or more --creative ids")
    n = reject(context(), campaign_id, None if all_ else creative, _reviewer(reviewer), reason)
    out.print(f"rejected {n}")


@review_app.command("edit")
@user_errors
def review_edit(creative_id: str, field: str = typer.Option(..., help="Field name, e.g. headline."),
                text: str = typer.Option(..., help="The new text."),
                index: int = typer.Option(0, help="Which text of the field (a new index appends)."),
                reviewer: str = typer.Option(None)):
    """Edit one text of a creative; it is re-rendered, re-checked and needs approval again."""
    from adgen.review import edit

    result = edit(context(), creative_id, field, index, text, _reviewer(reviewer))
    out.print("passes checks" if result["ok"] else "fails checks: " + "; ".join(result["issues"]))


@creative_app.command("show")
@user_errors
def creative_show(creative_id: str):
    """A creative's copy, checks and full lineage as JSON."""
    from adgen import records

    ctx = context()
    with ctx.db() as s:
        c = s.get(records.Creative, creative_id)
        if c is None:
            raise LookupError(f"no creative {creative_id!r}")
        # On S3 the URL is presigned (an hour), so it opens in a browser without credentials.
        url = ctx.storage.url(c.image_key) if c.image_key else None
        out.print_json(json.dumps({"id": c.id, "status": c.status, "copy": c.copy, "image_key": c.image_key,
                                   "image_url": url, "compliance": c.compliance, "scores": c.scores,
                                   "lineage": c.lineage}))


@campaign_app.command("rank")
@user_errors
def campaign_rank(campaign_id: str, top: int | None = typer.Option(None, "--top", min=1, help="Only the K best of each cell.")):
    """Creatives best first within each product x audience x placement cell, with their scores."""
    from sqlalchemy import select

    from adgen import records
    from adgen.score import best_per_cell, summary

    ctx = context()
    _summary(ctx, campaign_id)
    with ctx.db() as s:
        rows = s.scalars(select(records.Creative).where(records.Creative.campaign_id == campaign_id)
                         .order_by(records.Creative.id)).all()
    for c in best_per_cell(rows, top):
        out.print(f"{c.id}  {c.status:<8} {c.audience} / {c.placement}: {summary(c.scores)}", highlight=False,
                  soft_wrap=True)


@creative_app.command("rerender")
@user_errors
def creative_rerender(creative_id: str, out_file: Path = typer.Option(..., "--out")):
    """Regenerate a creative from its lineage alone and write the PNG; says whether the bytes match."""
    from adgen.pipeline import rerender

    quiet_model_loading()
    data, same = rerender(context(), creative_id)
    out_file.write_bytes(data)
    out.print(f"{out_file}: {'identical to' if same else 'differs from'} the stored creative")
    if not same:
        sys.exit(1)


# Campaign control and distributed generation (workers/). Without ADGEN_BROKER_URL these work on the
# records alone and re-run failed jobs in this process; Celery is imported only when a broker is set.

@campaign_app.command("status")
@user_errors
def campaign_status(campaign_id: str, json_out: bool = typer.Option(False, "--json")):
    """Progress of a campaign from the records: jobs by status, and why failed jobs failed."""
    info = _summary(context(), campaign_id)
    if json_out:
        out.print_json(json.dumps({k: info[k] for k in ("id", "status", "jobs", "total", "failed_jobs")}))
        return
    done = sum(info["jobs"].get(s, 0) for s in ("done", "failed", "cancelled"))
    out.print(f"{info['name']} ({info['id']}): {info['status']}, {done} of {sum(info['jobs'].values())} jobs finished")
    out.print("jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(info["jobs"].items())) + f"; creatives: {info['total']}")
    for j in info["failed_jobs"]:
        out.print(f"[red]failed[/red] {j['id']}: {j['error']}", highlight=False, soft_wrap=True)


@campaign_app.command("cancel")
@user_errors
def campaign_cancel(campaign_id: str):
    """Cancel the jobs not yet started; jobs already running finish and keep their creatives."""
    from adgen.jobs import cancel_campaign, job_counts

    ctx = context()
    _summary(ctx, campaign_id)
    n = cancel_campaign(campaign_id, ctx)
    out.print(f"cancelled {n} job(s); {job_counts(campaign_id, ctx).get('running', 0)} running will finish")


@campaign_app.command("retry-failed")
@user_errors
def campaign_retry_failed(campaign_id: str):
    """Run the failed jobs again (done and cancelled jobs are left alone): on the workers when a
    broker is set (follow with `campaign status`), else here with a progress bar."""
    from adgen.jobs import dispatch, reset_failed

    ctx = context()
    _summary(ctx, campaign_id)
    ids = reset_failed(campaign_id, ctx)
    if not ids:
        out.print("no failed jobs")
        return
    if dispatch(campaign_id, ctx, ids):
        out.print(f"sent {len(ids)} failed job(s) to the workers")
        return
    quiet_model_loading()
    with progress() as bar:
        counts = _run_here(campaign_id, ctx, bar, "retrying failed jobs", len(ids), only=ids)
    _print_counts(counts)


db_app = typer.Typer(help="The records database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade():
    """Migrate the records database (ADGEN_DATABASE_URL, or SQLite under ADGEN_HOME) to this adgen's schema."""
    from adgen.records import upgrade
    from adgen.settings import get_settings

    settings = get_settings()
    if settings.database.startswith("sqlite:///"):
        settings.home.mkdir(parents=True, exist_ok=True)
    before, after = upgrade(settings.database)
    out.print(f"records at schema {after}" + ("" if before == after else f" (was {before or 'empty'})"))


from workers.cli import worker, workers_app  # noqa: E402  (typer and rich only; Celery loads inside)

app.command("worker")(worker)
app.add_typer(workers_app, name="workers")


# The web app's commands (accounts and the server) live with the web app.
from ui.cli import register as _register_web_app  # noqa: E402

_register_web_app(app)


# Brand adapters: training and the registry live in finetune/ and are registered here.
from cli.finetune import adapters_app, finetune_app  # noqa: E402

app.add_typer(finetune_app, name="finetune")
app.add_typer(adapters_app, name="adapters")


# The brand kit, changed only here and in the web app's editor.
from cli.brand import brand_app  # noqa: E402

app.add_typer(brand_app, name="brand")


# Results from the ad platforms and what they say won.
from cli.results import campaign_insights, results_app  # noqa: E402

app.add_typer(results_app, name="results")
campaign_app.command("insights")(campaign_insights)
