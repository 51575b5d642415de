"""Distributed generation through a real Redis broker and real `adgen worker` processes (never
Celery's eager mode): the same creatives as the in-process runner, a worker child killed mid-job,
cancel and retry-failed, and, on the production backends (PostgreSQL, an S3 server), Redis
restarted and S3 unreachable in the middle of a campaign.

Two worker processes of one child each, one torch thread per child: this machine has 2 cores."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from adgen import records
from adgen.runner import Context, create_campaign, job_counts, run_campaign
from adgen.settings import Settings
from adgen.spec import parse_spec
from tests.conftest import EXAMPLE, MODELS, REPO, adgen
from tests.test_backends import S3_ENV

BROKER = "redis://127.0.0.1:6379/15"  # this suite's own Redis database
WORKER_ENV = {"ADGEN_JOB_TIME_LIMIT": "120", "ADGEN_MODELS": str(MODELS), "HF_HUB_OFFLINE": "1"}


def _spec(tmp_path: Path, name: str, placements: list[str], variants: int = 1, audiences: int = 1, **extra) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data.update(campaign=name, placements=placements, variants=variants, audiences=data["audiences"][:audiences], **extra)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class Pool:
    """Worker processes started for a module, and the settings they share with the tests."""

    env: dict[str, str]
    procs: list[subprocess.Popen]
    logs: list[Path]

    def log(self, i: int) -> str:
        return self.logs[i].read_text()

    def children(self) -> set[int]:
        found = set()
        for proc in self.procs:
            out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
            found |= {int(pid) for pid in out.split()}
        return found


def _start_pool(env: dict[str, str], folder: Path, n: int = 2) -> Pool:
    env = {k: v for k, v in {**os.environ, **WORKER_ENV, **env}.items()}
    procs, logs = [], []
    for i in range(n):
        log = folder / f"worker-{i}.log"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "adgen", "worker", "--name", f"test-{i}-{uuid.uuid4().hex[:6]}@%h"],
            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO,
        ))
        logs.append(log)
    pool = Pool(env, procs, logs)
    deadline = time.monotonic() + 60
    while not all(" ready." in pool.log(i) for i in range(n)):
        for i, proc in enumerate(procs):
            if proc.poll() is not None:
                raise AssertionError(f"worker {i} exited:\n{pool.log(i)}")
        assert time.monotonic() < deadline, "workers not ready in 60 s"
        time.sleep(0.2)
    return pool


def _stop_pool(pool: Pool) -> None:
    for proc in pool.procs:
        proc.send_signal(signal.SIGTERM)
    for proc in pool.procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _use(pool: Pool, monkeypatch) -> Context:
    for key in ("ADGEN_HOME", "ADGEN_BROKER_URL", "ADGEN_DATABASE_URL", "ADGEN_STORAGE_URL", "ADGEN_S3_ENDPOINT_URL",
                "ADGEN_JOB_TIME_LIMIT", *S3_ENV):
        if key in pool.env:
            monkeypatch.setenv(key, pool.env[key])
    return Context(Settings())


def _wait_settled(ctx: Context, campaign_id: str, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = job_counts(campaign_id, ctx)
        if not counts.get("pending") and not counts.get("running"):
            return counts
        assert time.monotonic() < deadline, f"campaign not finished in {timeout} s: {counts}"
        time.sleep(0.1)


def _creatives(ctx: Context, campaign_id: str) -> list[records.Creative]:
    from sqlalchemy import select

    with ctx.db() as s:
        return s.scalars(select(records.Creative).where(records.Creative.campaign_id == campaign_id)).all()


def _jobs(ctx: Context, campaign_id: str) -> list[records.Job]:
    with ctx.db() as s:
        return s.get(records.Campaign, campaign_id).jobs


def _assert_exactly_once(ctx: Context, campaign_id: str, stored_keys: set[str]) -> None:
    """One creative row per job x variant and one object per key they name, nothing more."""
    jobs = {j.id: j for j in _jobs(ctx, campaign_id)}
    rows = _creatives(ctx, campaign_id)
    wanted = {(j.id, v) for j in jobs.values() if j.status == "done" for v in range(j.variants)}
    assert sorted((r.job_id, r.variant) for r in rows) == sorted(wanted)
    named = {k for r in rows for k in (r.image_key, r.background_key) if k}
    assert stored_keys == named
    for key in named:
        assert ctx.storage.get(key).startswith(b"\x89PNG")


def _local_keys(ctx: Context, campaign_id: str) -> set[str]:
    root = Path(ctx.settings.storage)
    return {str(p.relative_to(root)) for p in (root / "campaigns" / campaign_id).rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def pool(tmp_path_factory, default_models):
    import redis

    try:
        redis.Redis.from_url(BROKER, socket_connect_timeout=3).flushdb()
    except redis.ConnectionError as e:
        pytest.fail(f"Redis at 127.0.0.1:6379 is needed (.ci/run starts it): {e}")
    folder = tmp_path_factory.mktemp("workers")
    env = {"ADGEN_HOME": str(folder / "home"), "ADGEN_BROKER_URL": BROKER}
    for key in ("ADGEN_DATABASE_URL", "ADGEN_STORAGE_URL", "ADGEN_S3_ENDPOINT_URL", "ADGEN_DEVICE"):
        os.environ.pop(key, None)
    pool = _start_pool(env, folder)
    yield pool
    _stop_pool(pool)


def test_two_workers_make_the_same_creatives_as_the_in_process_runner(pool, tmp_path, monkeypatch):
    spec = _spec(tmp_path, "same", ["google_rsa", "meta_feed", "x_promoted"], variants=2)
    local_home = str(tmp_path / "in-process")
    here = json.loads(adgen("campaign", "run", str(spec), "--json", env={"ADGEN_HOME": local_home}).stdout)
    ctx = _use(pool, monkeypatch)
    there = json.loads(adgen("campaign", "run", str(spec), "--json").stdout)
    assert here["jobs"] == there["jobs"] == {"done": 3}

    def bundle(campaign_id, folder, env):
        adgen("campaign", "export", campaign_id, "--out", str(folder), "--status", "any", env=env)
        entries = json.loads((folder / "creatives.json").read_text())
        return {(e["audience"], e["placement"], e["id"].rsplit("-", 1)[1]):
                (e["copy"], (folder / e["image"]).read_bytes() if e["image"] else None) for e in entries}

    mine = bundle(here["campaign_id"], tmp_path / "a", {"ADGEN_HOME": local_home})
    theirs = bundle(there["campaign_id"], tmp_path / "b", {})
    assert len(mine) == 6 and mine.keys() == theirs.keys()
    for key in mine:
        assert mine[key][0] == theirs[key][0], key  # the same copy
        assert mine[key][1] == theirs[key][1], key  # byte-identical finished images
    assert all("succeeded" in pool.log(i) for i in range(2)), "both workers should have run jobs"
    assert adgen("campaign", "status", there["campaign_id"]).stdout.split(": ")[1].startswith("done")
    _assert_exactly_once(ctx, there["campaign_id"], _local_keys(ctx, there["campaign_id"]))

    status = json.loads(adgen("workers", "status", "--json").stdout)
    ours = {name: w for name, w in status.items() if name.startswith("test-")}
    assert len(ours) == 2
    for w in ours.values():
        assert w["queues"] == ["image", "text"] and w["processes"] == 1
        kinds = {m["kind"] for child in w["children"] for m in child["models"]}
        assert "text" in kinds, w


def test_a_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(pool, tmp_path, monkeypatch):
    ctx = _use(pool, monkeypatch)
    spec = _spec(tmp_path, "kill", ["meta_feed", "x_promoted", "linkedin_single_image", "meta_story"], variants=2)
    campaign_id = adgen("campaign", "run", str(spec), "--detach").stdout.strip()
    children = pool.children()
    victim = None
    deadline = time.monotonic() + 30
    while victim is None:
        for job in _jobs(ctx, campaign_id):
            if job.status == "running" and job.claimed_by and int(job.claimed_by.rsplit("/", 1)[1]) in children:
                victim = job
                break
        assert time.monotonic() < deadline, "no job started"
        time.sleep(0.02)
    os.kill(int(victim.claimed_by.rsplit("/", 1)[1]), signal.SIGKILL)
    killed_at = time.monotonic()

    assert _wait_settled(ctx, campaign_id, timeout=90) == {"done": 4}
    assert time.monotonic() - killed_at < 90
    again = next(j for j in _jobs(ctx, campaign_id) if j.id == victim.id)
    assert again.attempts >= 2  # it was interrupted and run again, by the replacement child or the other worker
    _assert_exactly_once(ctx, campaign_id, _local_keys(ctx, campaign_id))
    assert len(_creatives(ctx, campaign_id)) == 8


def test_retry_failed_reruns_only_failed_jobs_and_cancel_stops_new_ones(pool, tmp_path, monkeypatch, default_models):
    ctx = _use(pool, monkeypatch)
    # A real failure: the image model folder is gone when the jobs run (here, in-process).
    image_model = tmp_path / "image-model"
    shutil.copytree(default_models["image"], image_model)
    spec = parse_spec({**yaml.safe_load(_spec(tmp_path, "retry", ["google_rsa", "meta_feed", "x_promoted"]).read_text()),
                       "models": {"text": "default", "image": str(image_model)}}, base_dir=REPO)
    campaign_id = create_campaign(spec, ctx)
    shutil.rmtree(image_model)
    assert run_campaign(campaign_id, ctx) == {"done": 1, "failed": 2}
    shown = adgen("campaign", "status", campaign_id).stdout
    assert "failed" in shown and str(image_model) in shown

    shutil.copytree(default_models["image"], image_model)
    assert "sent 2 failed job(s)" in adgen("campaign", "retry-failed", campaign_id).stdout
    assert _wait_settled(ctx, campaign_id, timeout=60) == {"done": 3}
    attempts = {j.placement: j.attempts for j in _jobs(ctx, campaign_id)}
    assert attempts == {"google_rsa": 1, "meta_feed": 2, "x_promoted": 2}
    _assert_exactly_once(ctx, campaign_id, _local_keys(ctx, campaign_id))
    assert "done" in adgen("campaign", "status", campaign_id).stdout.splitlines()[0]

    # Cancel while the workers are frozen, so no job can start before it: then every job is skipped.
    spec = _spec(tmp_path, "cancel", ["google_rsa", "meta_feed"])
    frozen = [p.pid for p in pool.procs] + sorted(pool.children())
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        campaign_id = adgen("campaign", "run", str(spec), "--detach").stdout.strip()
        assert "cancelled 2 job(s)" in adgen("campaign", "cancel", campaign_id).stdout
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while sum(log.count("'cancelled'") for log in map(pool.log, range(2))) < 2:  # both messages consumed
        assert time.monotonic() < deadline, "cancelled jobs still queued"
        time.sleep(0.1)
    assert job_counts(campaign_id, ctx) == {"cancelled": 2}
    assert _creatives(ctx, campaign_id) == [] and _local_keys(ctx, campaign_id) == set()
    assert "no failed jobs" in adgen("campaign", "retry-failed", campaign_id).stdout
    assert json.loads(adgen("campaign", "status", campaign_id, "--json").stdout)["status"] == "cancelled"


def test_worker_refuses_an_unknown_queue(tmp_path):
    result = adgen("worker", "--queues", "text,video", check=False, env={"ADGEN_BROKER_URL": BROKER})
    assert result.returncode == 2 and "--queues: video" in result.stderr
    result = adgen("campaign", "run", str(EXAMPLE), "--detach", check=False)
    assert result.returncode == 2 and "--detach" in result.stderr and "ADGEN_BROKER_URL" in result.stderr
