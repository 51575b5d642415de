"""Runs lost with their worker, and the reconciler that finds them.

A job is `running` while one run holds it; only two parties may take it back. The worker whose child
died in the middle of it (out of memory, a segfault, a kill) says so at once (`lose`, called by
workers/app.py), and the reconciler gives up on a run that is still `running` past the job time limit
(the worker's machine is gone). Either way the lost run is counted on the job: it goes back to
pending to run again, or, after MAX_LOST lost runs, it fails with the reason ("worker died 3 times:
signal 9 (SIGKILL)"), so a job that kills its worker every time ends instead of being delivered
forever.

`reconcile` also sends again a job that waited pending for LOST_AFTER seconds while the queues were
empty (a broker that lost its data). It runs wherever campaigns run: `adgen campaign run` while it
follows, the web app's poll, the Celery beat schedule of `adgen worker --beat` (every
RECONCILE_EVERY seconds, over every unfinished campaign), and `adgen workers reconcile`.
"""

from datetime import timedelta

from sqlalchemy import select, update

from adgen import records
from adgen.context import Context
from adgen.jobs import QUEUES, broker, send, settle

MAX_LOST = 3  # runs of a job lost with their worker before it is failed
LOST_AFTER = 120  # seconds a pending job may sit unclaimed with empty queues before it is sent again
RECONCILE_EVERY = 30  # seconds between reconciler passes


def lose(job_id: str, ctx: Context, cause: str, claimed_by: str | None = None,
         started_at=None) -> str | None:
    """Count a run of a job lost with its worker (`cause`, e.g. "signal 9 (SIGKILL)"): back to
    pending, or failed after MAX_LOST. Only a job still running, by `claimed_by` and since
    `started_at` when given, changes, so a late report never touches a later run. Returns the job's
    new status, or None when nothing changed."""
    with ctx.db.begin() as s:
        job = s.get(records.Job, job_id)
        if job is None or job.status != "running" or (claimed_by and job.claimed_by != claimed_by) \
                or (started_at and job.started_at != started_at):
            return None
        lost, now = job.lost + 1, records._now()
        if lost >= MAX_LOST:
            values = dict(status="failed", error=f"worker died {lost} times: {cause}", finished_at=now)
        else:
            values = dict(status="pending", error=f"worker died ({cause}); runs lost: {lost} of at most {MAX_LOST}",
                          queued_at=now)
        moved = s.execute(update(records.Job).where(
            records.Job.id == job_id, records.Job.status == "running", records.Job.attempts == job.attempts)
            .values(lost=lost, **values)).rowcount
    if not moved:
        return None
    settle(job.campaign_id, ctx)
    return values["status"]


def recover(campaign_id: str, ctx: Context) -> list[str]:
    """Give up on the campaign's runs still `running` past the job time limit (no live worker or
    runner would have let them): each is a lost run (`lose`). Returns the jobs put back to pending."""
    limit = ctx.settings.job_time_limit
    dead = records._now() - timedelta(seconds=limit + 60)
    with ctx.db() as s:
        stuck = s.execute(select(records.Job.id, records.Job.started_at).where(
            records.Job.campaign_id == campaign_id, records.Job.status == "running",
            records.Job.started_at < dead).order_by(records.Job.position)).all()
    return [job_id for job_id, started in stuck
            if lose(job_id, ctx, f"no result {limit} s after it started", started_at=started) == "pending"]


def queued_messages(ctx: Context) -> int:
    """Messages waiting in the adgen queues of the broker."""
    with broker(ctx).connection_for_read() as conn:
        channel = conn.default_channel
        return sum(channel.queue_declare(q, durable=True, auto_delete=False).message_count for q in QUEUES)


def reconcile(campaign_id: str, ctx: Context) -> list[str]:
    """Send again the campaign's jobs lost with a dead worker (`recover`) or with the broker's data;
    returns their ids. Sending a job twice is harmless: only a pending job is claimed."""
    now = records._now()
    with ctx.db() as s:
        waiting = list(s.scalars(select(records.Job.id).where(
            records.Job.campaign_id == campaign_id, records.Job.status == "pending",
            records.Job.queued_at < now - timedelta(seconds=LOST_AFTER)).order_by(records.Job.position)))
    if waiting and queued_messages(ctx):
        waiting = []
    again = waiting + recover(campaign_id, ctx)
    send(again, ctx)
    return again


def reconcile_all(ctx: Context) -> dict[str, list[str]]:
    """One reconciler pass over every campaign with a job pending or running, settling each; returns
    the jobs sent again by campaign (the beat schedule's task)."""
    with ctx.db() as s:
        campaigns = list(s.scalars(select(records.Job.campaign_id).distinct().where(
            records.Job.status.in_(("pending", "running")))))
    sent = {}
    for campaign_id in campaigns:
        if again := reconcile(campaign_id, ctx):
            sent[campaign_id] = again
        settle(campaign_id, ctx)
    return sent
