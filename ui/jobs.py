"""Where the web app sends a campaign to be made: one function, `start_campaign`.

With ADGEN_BROKER_URL set, `adgen.jobs.dispatch` sends the campaign's pending jobs to the Celery
workers. Otherwise a runner process (`adgen campaign resume ID`) makes every unfinished job. Either way no model is ever loaded
in the web server, and the UI follows progress in the records.
"""

import os
import subprocess
import sys
import threading

from sqlalchemy import func, select

from adgen import records
from adgen.context import Context
from adgen.jobs import dispatch

# One runner per campaign at a time: jobs added while it runs (a regenerated creative) are made
# by another pass of the same loop instead of a second process racing it for the same jobs.
_active: set[str] = set()
_lock = threading.Lock()


def _pending(ctx: Context, campaign_id: str) -> int:
    with ctx.db() as s:
        query = select(func.count()).where(records.Job.campaign_id == campaign_id, records.Job.status == "pending")
        return s.scalar(query)


def _runner_env(ctx: Context) -> dict[str, str]:
    """The web server's own settings, passed on explicitly so the runner sees the same records."""
    env = {**os.environ, "ADGEN_HOME": str(ctx.settings.home), "ADGEN_MODELS": str(ctx.settings.models_dir)}
    for name in ("database_url", "storage_url", "s3_endpoint_url", "device"):
        if getattr(ctx.settings, name):
            env[f"ADGEN_{name.upper()}"] = getattr(ctx.settings, name)
    return env


def _run_until_done(ctx: Context, campaign_id: str) -> None:
    log_dir = ctx.settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    left = None
    while True:
        # Checked under the lock, so a job recorded just before start_campaign is never left behind;
        # a pass that made nothing (a runner that cannot start) ends the loop instead of spinning.
        with _lock:
            before, left = left, _pending(ctx, campaign_id)
            if not left or left == before:
                _active.discard(campaign_id)
                return
        with (log_dir / f"campaign-{campaign_id}.log").open("ab") as log:
            subprocess.run([sys.executable, "-m", "adgen", "campaign", "resume", campaign_id],
                           stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=_runner_env(ctx), check=False)


def start_campaign(campaign_id: str, ctx: Context) -> None:
    """Make the campaign's pending jobs in the background and return at once; the UI polls the
    records. Calling it again while a runner works on the campaign only makes it take another pass."""
    if dispatch(campaign_id, ctx):  # a job sent twice is harmless: the claim lets one run do the work
        return
    with _lock:
        if campaign_id in _active:
            return
        _active.add(campaign_id)
    threading.Thread(target=_run_until_done, args=(ctx, campaign_id), name=f"runner-{campaign_id}", daemon=True).start()
