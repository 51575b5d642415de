"""Where the web app sends a campaign to be made: `start_campaign`, and `look_after`, which the page's
poll calls so that a job lost with its worker or runner never leaves the page waiting forever.

With ADGEN_BROKER_URL set, `adgen.jobs.dispatch` sends the jobs to the Celery workers. Otherwise a
runner process (`adgen campaign resume ID`) makes every pending job. Whether a runner is at work on a
campaign is the campaign's runner lease in the records, not anything this process remembers, so any
number of server processes agree on it. Either way no model is ever loaded in the web server, and
the UI follows progress in the records.
"""

import os
import subprocess
import sys
import threading
import time

from adgen.context import Context
from adgen.jobs import dispatch, job_counts, runner_of
from adgen.recovery import RECONCILE_EVERY, reconcile, recover

_looked: dict[str, float] = {}  # when each campaign was last looked after here: a throttle, nothing more


def _runner_env(ctx: Context) -> dict[str, str]:
    """The web server's own settings, passed on explicitly so the runner sees the same records."""
    env = {**os.environ, "ADGEN_HOME": str(ctx.settings.home), "ADGEN_MODELS": str(ctx.settings.models_dir)}
    for name in ("database_url", "storage_url", "s3_endpoint_url", "device"):
        if getattr(ctx.settings, name):
            env[f"ADGEN_{name.upper()}"] = getattr(ctx.settings, name)
    return env


def _run(ctx: Context, campaign_id: str) -> None:
    log_dir = ctx.settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"campaign-{campaign_id}.log").open("ab") as log:
        subprocess.run([sys.executable, "-m", "adgen", "campaign", "resume", campaign_id],
                       stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=_runner_env(ctx), check=False)


def start_campaign(campaign_id: str, ctx: Context, job_ids: list[str] | None = None) -> None:
    """Make the campaign's pending jobs (on the workers: `job_ids`, default every pending one) in
    the background and return at once; the UI polls the records. Without a broker, a runner that
    holds the campaign makes jobs added while it runs, so none is started beside it (and one started
    in a race with another finds the campaign held and exits)."""
    if dispatch(campaign_id, ctx, job_ids):
        return
    if runner_of(campaign_id, ctx) is None:
        threading.Thread(target=_run, args=(ctx, campaign_id), name=f"runner-{campaign_id}", daemon=True).start()


def look_after(campaign_id: str, ctx: Context) -> None:
    """Called by the page's poll of an unfinished campaign, at most every RECONCILE_EVERY seconds per
    campaign here: with a broker, send again the jobs lost with a worker or the broker's data;
    without one, give up on runs past the job time limit and start a runner when pending jobs
    have none."""
    now = time.monotonic()
    if now - _looked.get(campaign_id, 0.0) < RECONCILE_EVERY:
        return
    _looked[campaign_id] = now
    if ctx.settings.broker_url:
        reconcile(campaign_id, ctx)
        return
    recover(campaign_id, ctx)
    if job_counts(campaign_id, ctx).get("pending"):
        start_campaign(campaign_id, ctx)
