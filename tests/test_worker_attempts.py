"""One run per job on real workers (a real Redis, two real `adgen worker` processes, one of them
running the beat schedule): a job delivered again while it runs, or after it was approved, is
skipped; a job that kills its worker child every time fails after three deaths with the reason
instead of being delivered forever; the reconciler on the beat schedule fails a job lost too often,
and `campaign resume` with a broker sends the rest to the workers."""

import json
import os
import signal
import sys
import time
from datetime import timedelta

import pytest
import yaml

from adgen import records
from adgen.jobs import create_campaign, send
from adgen.recovery import RECONCILE_EVERY, reconcile_all
from adgen.review import approve
from adgen.spec import parse_spec
from tests.conftest import EXAMPLE, REPO, adgen
from tests.test_workers import (
    _catch_running,
    _jobs,
    _redis_server,
    _start_pool,
    _stop_pool,
    _use,
    _wait_settled,
)

DYING = [sys.executable, str(REPO / "tests" / "dying_worker.py"), "worker"]


def _spec(tmp_path, name: str, placements: list[str], doomed: bool = False, variants: int = 1, audiences: int = 1):
    data = yaml.safe_load(EXAMPLE.read_text())
    data.update(campaign=name, placements=placements, variants=variants, audiences=data["audiences"][:audiences])
    product = {**data["products"][0], "images": []}
    data["products"] = [{**product, "name": "Doomed Brew"} if doomed else product]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def pool(tmp_path_factory, default_models):
    folder = tmp_path_factory.mktemp("attempts")
    _, redis_proc, broker = _redis_server(folder)
    env = {"ADGEN_HOME": str(folder / "home"), "ADGEN_BROKER_URL": broker, "PYTHONPATH": str(REPO)}
    for key in ("ADGEN_DATABASE_URL", "ADGEN_STORAGE_URL", "ADGEN_S3_ENDPOINT_URL", "ADGEN_DEVICE"):
        os.environ.pop(key, None)
    pool = _start_pool(env, folder, commands=[DYING + ["--beat"], DYING])
    yield pool
    _stop_pool(pool)
    redis_proc.terminate()
    redis_proc.wait(timeout=20)


def _log_count(pool, text: str) -> int:
    return sum(pool.log(i).count(text) for i in range(len(pool.procs)))


def _wait_log(pool, text: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _log_count(pool, text) < count:
        assert time.monotonic() < deadline, f"{text!r} not logged {count} times in {timeout} s"
        time.sleep(0.05)


def test_a_job_delivered_again_while_it_runs_or_after_review_is_skipped(pool, tmp_path, monkeypatch):
    ctx = _use(pool, monkeypatch)
    campaign_id = adgen("campaign", "run", str(_spec(tmp_path, "again", ["meta_feed"])), "--detach").stdout.strip()
    job = _catch_running(ctx, campaign_id, pool.children())
    assert job is not None, "the job finished before it was seen running"
    child = int(job.claimed_by.rsplit("/", 1)[1])
    os.kill(child, signal.SIGSTOP)
    try:
        skipped = _log_count(pool, "'running'")
        send([job.id], ctx)  # delivered again while it runs: the other worker takes the message
        _wait_log(pool, "'running'", skipped + 1)
        (now,) = _jobs(ctx, campaign_id)
        assert (now.status, now.claimed_by, now.attempts) == ("running", job.claimed_by, 1)
    finally:
        os.kill(child, signal.SIGCONT)
    assert _wait_settled(ctx, campaign_id, timeout=60) == {"done": 1}

    first = f"{job.id}-0"
    approve(ctx, campaign_id, [first], "alice")
    with ctx.db() as s:
        approved = s.get(records.Creative, first)
    image = ctx.storage.get(approved.image_key)
    skipped = _log_count(pool, "'done'")
    send([job.id], ctx)  # and once more after the review
    _wait_log(pool, "'done'", skipped + 1)
    with ctx.db() as s:
        after = s.get(records.Creative, first)
        assert (after.status, after.version, after.copy) == ("approved", approved.version, approved.copy)
        assert s.get(records.Job, job.id).attempts == 1
    assert ctx.storage.get(after.image_key) == image


def test_the_beat_schedule_runs_the_reconciler_and_resume_sends_to_the_workers(pool, tmp_path, monkeypatch):
    from workers.app import RECONCILE_TASK, app
    from workers.cli import worker_argv

    assert app.conf.beat_schedule["reconcile"]["task"] == RECONCILE_TASK == "adgen.reconcile"
    assert app.conf.beat_schedule["reconcile"]["schedule"] == RECONCILE_EVERY == 30
    assert RECONCILE_TASK in app.tasks
    monkeypatch.setenv("ADGEN_WORKER_STATE", str(tmp_path))
    assert "--beat" in worker_argv(1, ["text"], "INFO", "w", beat=True)
    assert "beat: Starting" in pool.log(0)  # `adgen worker --beat` runs it

    ctx = _use(pool, monkeypatch)
    spec = parse_spec(yaml.safe_load(_spec(tmp_path, "lost", ["google_rsa"]).read_text()), base_dir=REPO)
    campaign_id = create_campaign(spec, ctx)
    (lost,) = (j.id for j in _jobs(ctx, campaign_id))
    long_ago = records._now() - timedelta(hours=1)
    with ctx.db.begin() as s:  # as a machine that died with its job leaves it, after two earlier deaths
        job = s.get(records.Job, lost)
        job.status, job.started_at, job.attempts, job.lost = "running", long_ago, 3, 2
    assert reconcile_all(ctx) == {}  # nothing to send again: the lost job had its three runs
    (job,) = _jobs(ctx, campaign_id)
    assert (job.status, job.error) == ("failed", "worker died 3 times: no result 120 s after it started")

    resumed = adgen("campaign", "resume", campaign_id)  # the failed job again, on the workers
    assert "jobs: 1 done" in resumed.stderr
    children = {str(pid) for pid in pool.children()}
    assert all(j.status == "done" and j.claimed_by.rsplit("/", 1)[1] in children for j in _jobs(ctx, campaign_id))


def test_a_job_that_kills_its_worker_fails_after_three_deaths(pool, tmp_path, monkeypatch):
    ctx = _use(pool, monkeypatch)
    campaign_id = adgen("campaign", "run", str(_spec(tmp_path, "doomed", ["google_rsa"], doomed=True)), "--detach").stdout.strip()
    assert _wait_settled(ctx, campaign_id, timeout=120) == {"failed": 1}
    (doomed,) = _jobs(ctx, campaign_id)
    assert (doomed.lost, doomed.attempts) == (3, 3)
    assert doomed.error == "worker died 3 times: signal 9 (SIGKILL)"
    status = json.loads(adgen("campaign", "status", campaign_id, "--json").stdout)
    assert status["status"] == "failed" and status["failed_jobs"] == [{"id": doomed.id, "error": doomed.error}]
    assert all(proc.poll() is None for proc in pool.procs)  # the workers themselves live on
