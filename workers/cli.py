"""Commands for distributed generation: `adgen worker`, `adgen workers status`, and the follower
that `adgen campaign run` uses when a broker is configured.

Celery is imported inside the commands, so the rest of the command line starts fast.
"""

import os
import tempfile
import time
from collections.abc import Callable

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()
workers_app = typer.Typer(help="See the Celery workers that run campaign jobs.", no_args_is_help=True)

FINISHED = ("done", "failed", "cancelled")


def _broker_or_exit():
    from adgen.settings import get_settings

    settings = get_settings()
    if not settings.broker_url:
        console.print("[red]error:[/red] ADGEN_BROKER_URL is not set; e.g. export ADGEN_BROKER_URL=redis://127.0.0.1:6379/0")
        raise typer.Exit(2)
    return settings


def worker(queues: str = typer.Option("text,image", help="Comma-separated queues to take jobs from: text, image."),
           device: str = typer.Option(None, help="torch device of this worker, e.g. cuda:0 (default: ADGEN_DEVICE, else cuda when present)."),
           concurrency: int = typer.Option(1, min=1, help="Child processes; one per GPU (on a CPU: processes x threads <= cores)."),
           threads: int = typer.Option(1, min=1, help="torch threads per child process."),
           name: str = typer.Option(None, help="Worker name (default: adgen-<device>-<pid>@<host>)."),
           loglevel: str = typer.Option("INFO", help="Celery log level."),
           beat: bool = typer.Option(False, "--beat", help="Also run the beat schedule: the reconciler every 30 s over "
                                     "every unfinished campaign. Give it to exactly one worker of a deployment.")):
    """Run a worker: takes campaign jobs from the broker, loads models lazily in its child processes
    and keeps them resident. Run one per GPU, on as many machines as needed."""
    _broker_or_exit()
    from workers.app import QUEUES

    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    bad = [q for q in wanted if q not in QUEUES]
    if bad or not wanted:
        console.print(f"[red]error:[/red] --queues: {', '.join(bad) or 'empty'} is not a queue; use {', '.join(QUEUES)}")
        raise typer.Exit(2)
    # Children read these after the fork; the parent never touches torch or a model.
    if device:
        os.environ["ADGEN_DEVICE"] = device
    os.environ["ADGEN_TORCH_THREADS"] = str(threads)
    if not os.environ.get("ADGEN_WORKER_STATE"):
        os.environ["ADGEN_WORKER_STATE"] = tempfile.mkdtemp(prefix="adgen-worker-")
    from workers.app import app

    label = (device or os.environ.get("ADGEN_DEVICE") or "auto").replace(":", "")
    if beat and "text" not in wanted:
        console.print("[red]error:[/red] --beat: the reconciler's passes go to the text queue; add text to --queues")
        raise typer.Exit(2)
    app.worker_main(worker_argv(concurrency, wanted, loglevel, name or f"adgen-{label}-{os.getpid()}@%h", beat))


def worker_argv(concurrency: int, queues: list[str], loglevel: str, name: str, beat: bool) -> list[str]:
    """The Celery worker's command line; with `beat`, the beat schedule runs inside this worker."""
    argv = ["worker", "--pool=prefork", f"--concurrency={concurrency}", f"--queues={','.join(queues)}",
            f"--loglevel={loglevel}", f"--hostname={name}", "--without-gossip", "--without-mingle"]
    if beat:
        argv += ["--beat", f"--schedule={os.environ['ADGEN_WORKER_STATE']}/beat-schedule"]
    return argv


@workers_app.command("status")
def workers_status(timeout: float = typer.Option(2.0, help="Seconds to wait for the workers' answers."),
                   json_out: bool = typer.Option(False, "--json")):
    """Which workers answer, their queues and processes, the jobs they run and the models loaded."""
    import json

    _broker_or_exit()
    from workers.app import app

    inspect = app.control.inspect(timeout=timeout)
    queues, active, stats = inspect.active_queues() or {}, inspect.active() or {}, inspect.stats() or {}
    models = inspect._request("adgen_models") or {}
    workers = {
        name: {
            "queues": sorted(q["name"] for q in queues.get(name, [])),
            "processes": stats.get(name, {}).get("pool", {}).get("max-concurrency"),
            "active_jobs": [t["args"][0] if t.get("args") else t["id"] for t in active.get(name, [])],
            "children": models.get(name, []),
        }
        for name in sorted(set(queues) | set(stats))
    }
    if json_out:
        out.print_json(json.dumps(workers))
        return
    if not workers:
        out.print("no workers answered")
        raise typer.Exit(1)
    for name, w in workers.items():
        out.print(f"[bold]{name}[/bold]: queues {', '.join(w['queues'])}; {w['processes']} process(es); "
                  f"running {', '.join(w['active_jobs']) or 'nothing'}", highlight=False)
        for child in w["children"]:
            held = ", ".join(f"{m['kind']} {m['path']} on {m['device']}"
                             + (f" (adapters {', '.join(m['adapters'])})" if m.get("adapters") else "")
                             for m in child["models"]) or "no model yet"
            out.print(f"  child {child['pid']}: {held}", highlight=False)


@workers_app.command("reconcile")
def workers_reconcile(campaign_id: str):
    """Send again a campaign's jobs lost with a dead worker or a broker that lost its data (what
    `campaign run` does every 30 s while it follows; use this for detached campaigns, e.g. from cron)."""
    _broker_or_exit()
    from adgen.context import Context
    from adgen.jobs import settle
    from adgen.recovery import reconcile
    from adgen.settings import get_settings

    ctx = Context(get_settings())
    with ctx.db() as s:
        from adgen import records

        if s.get(records.Campaign, campaign_id) is None:
            console.print(f"[red]error:[/red] no campaign {campaign_id!r}; see 'adgen campaign list'")
            raise typer.Exit(2)
    again = reconcile(campaign_id, ctx)
    settle(campaign_id, ctx)
    out.print(f"sent again {len(again)} job(s)" + (f": {', '.join(again)}" if again else ""), highlight=False)


def follow(campaign_id: str, ctx, on_progress: Callable[[dict[str, int]], None], poll: float = 0.5) -> dict[str, int]:
    """Wait until no job of the campaign is pending or running, reading progress from the records;
    every RECONCILE_EVERY seconds send again the jobs lost with a dead worker. Returns job counts."""
    from adgen.jobs import job_counts, settle
    from adgen.recovery import RECONCILE_EVERY, reconcile

    last_reconcile = time.monotonic()
    while True:
        counts = job_counts(campaign_id, ctx)
        on_progress(counts)
        if not counts.get("pending") and not counts.get("running"):
            return settle(campaign_id, ctx)
        if time.monotonic() - last_reconcile > RECONCILE_EVERY:
            lost = reconcile(campaign_id, ctx)
            if lost:
                console.print(f"sent again {len(lost)} job(s) lost with their worker: {', '.join(lost)}")
            last_reconcile = time.monotonic()
        time.sleep(poll)


def follow_on_workers(campaign_id: str, ctx, bar, total: int) -> dict[str, int]:
    """Follow a campaign sent to the workers (`adgen.jobs.dispatch`) with the progress bar."""
    task = bar.add_task("campaign on the workers", total=total)

    def on_progress(counts):
        finished = sum(counts.get(s, 0) for s in FINISHED)
        detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        bar.update(task, completed=finished, description=f"campaign on the workers ({detail})")

    try:
        return follow(campaign_id, ctx, on_progress)
    except KeyboardInterrupt:
        console.print(f"detached; the workers go on. Follow with: adgen campaign status {campaign_id}")
        raise typer.Exit(130) from None
