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
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from adgen import records
from adgen.context import Context
from adgen.jobs import create_campaign, job_counts, run_campaign
from adgen.provenance import without_manifest
from adgen.settings import Settings
from adgen.spec import parse_spec
from tests.conftest import EXAMPLE, MODELS, REPO, adgen
from tests.test_backends import PG_ADMIN, S3_ENV, _free_port

WORKER_ENV = {"ADGEN_JOB_TIME_LIMIT": "120", "ADGEN_MODELS": str(MODELS), "HF_HUB_OFFLINE": "1"}


NO_PHOTO = [{k: v for k, v in p.items() if k != "images"} for p in yaml.safe_load(EXAMPLE.read_text())["products"]]


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


def _start_pool(env: dict[str, str], folder: Path, n: int = 2, commands: list[list[str]] | None = None) -> Pool:
    """`n` workers; `commands[i]`, when given, is worker i's command line up to its --name."""
    env = {k: v for k, v in {**os.environ, **WORKER_ENV, **env}.items()}
    procs, logs = [], []
    for i in range(n):
        log = folder / f"worker-{i}.log"
        command = commands[i] if commands else [sys.executable, "-m", "adgen", "worker"]
        procs.append(subprocess.Popen(
            [*command, "--name", f"test-{i}-{uuid.uuid4().hex[:6]}@%h"],
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
    named = {k for r in rows for k in (r.image_key, r.background_key, *(r.other_sizes or {}).values()) if k}
    assert stored_keys == named
    for key in named:
        assert ctx.storage.get(key).startswith(b"\x89PNG")


def _local_keys(ctx: Context, campaign_id: str) -> set[str]:
    root = Path(ctx.settings.storage)
    return {str(p.relative_to(root)) for p in (root / "campaigns" / campaign_id).rglob("*") if p.is_file()}


def _wait_port(port: int, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


def _redis_server(folder: Path) -> tuple[list[str], subprocess.Popen, str]:
    """A Redis server of the module's own, so that runs of this suite side by side never share
    queues; with an append-only file, as a broker should run, so a restart keeps its messages."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.fail("redis-server is needed (.ci/run installs it)")
    port = _free_port()
    cmd = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
           "--appendonly", "yes", "--appendfsync", "always"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _wait_port(port)
    return cmd, proc, f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="module")
def pool(tmp_path_factory, default_models):
    folder = tmp_path_factory.mktemp("workers")
    _, redis_proc, broker = _redis_server(folder)
    env = {"ADGEN_HOME": str(folder / "home"), "ADGEN_BROKER_URL": broker}
    for key in ("ADGEN_DATABASE_URL", "ADGEN_STORAGE_URL", "ADGEN_S3_ENDPOINT_URL", "ADGEN_DEVICE"):
        os.environ.pop(key, None)
    pool = _start_pool(env, folder)
    yield pool
    _stop_pool(pool)
    redis_proc.terminate()
    redis_proc.wait(timeout=20)


def test_two_workers_make_the_same_creatives_as_the_in_process_runner(pool, tmp_path, monkeypatch):
    spec = _spec(tmp_path, "same", ["google_rsa", "meta_feed", "x_promoted"], variants=2)
    local_home = str(tmp_path / "in-process")
    # The same thread count as a worker child: CPU results are bit-identical only at equal thread counts.
    here = json.loads(adgen("campaign", "run", str(spec), "--json", env={"ADGEN_HOME": local_home, "ADGEN_TORCH_THREADS": "1"}).stdout)
    ctx = _use(pool, monkeypatch)
    there = json.loads(adgen("campaign", "run", str(spec), "--json").stdout)
    assert here["jobs"] == there["jobs"] == {"done": 3}

    def bundle(campaign_id, folder, env):
        adgen("campaign", "export", campaign_id, "--out", str(folder), "--status", "any", env=env)
        entries = json.loads((folder / "creatives.json").read_text())
        return {(e["audience"], e["placement"], e["id"].rsplit("-", 1)[1]):
                (e["copy"], without_manifest((folder / e["image"]).read_bytes()) if e["image"] else None) for e in entries}

    mine = bundle(here["campaign_id"], tmp_path / "a", {"ADGEN_HOME": local_home})
    theirs = bundle(there["campaign_id"], tmp_path / "b", {})
    assert len(mine) == 6 and mine.keys() == theirs.keys()
    for key in mine:
        assert mine[key][0] == theirs[key][0], key  # the same copy
        # byte-identical finished images (with their XMP); each export's C2PA signature is its own
        assert mine[key][1] == theirs[key][1], key
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
    # The example's product has a photo: its scenes were painted by the resident inpainting pipeline.
    assert any(m["kind"] == "inpaint" for w in ours.values() for child in w["children"] for m in child["models"])


def _catch_running(ctx: Context, campaign_id: str, children: set[int], timeout: float = 30) -> records.Job | None:
    """A job of the campaign running in one of the pool's children, or None when every job finished
    before one was seen running (the tiny models are fast on an idle machine)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = _jobs(ctx, campaign_id)
        for job in jobs:
            if job.status == "running" and job.claimed_by and int(job.claimed_by.rsplit("/", 1)[1]) in children:
                return job
        if all(j.status in ("done", "failed", "cancelled") for j in jobs):
            return None
        assert time.monotonic() < deadline, f"no job started in {timeout} s"
        time.sleep(0.01)


def test_a_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(pool, tmp_path, monkeypatch):
    ctx = _use(pool, monkeypatch)
    victim = None
    for attempt in range(3):
        # Long enough (8 jobs of 4 creatives) that jobs are still running when `--detach` has returned.
        # The product has no photo here: what is tested is exactly-once, and a scene painted and
        # extended around a photo per creative would only make the campaign slower.
        spec = _spec(tmp_path, f"kill-{attempt}", ["meta_feed", "x_promoted", "linkedin_single_image", "meta_story"],
                     variants=4, audiences=2, products=NO_PHOTO)
        campaign_id = adgen("campaign", "run", str(spec), "--detach").stdout.strip()
        while victim is None and (seen := _catch_running(ctx, campaign_id, pool.children())):
            # Freeze the child, then make sure it is still inside that job: a fast job may have
            # finished between the look and the kill, and then no job would be interrupted.
            pid = int(seen.claimed_by.rsplit("/", 1)[1])
            os.kill(pid, signal.SIGSTOP)
            now = next(j for j in _jobs(ctx, campaign_id) if j.id == seen.id)
            if (now.status, now.claimed_by, now.attempts) == ("running", seen.claimed_by, seen.attempts):
                victim = seen
            else:
                os.kill(pid, signal.SIGCONT)
        if victim:
            break
    assert victim, "three campaigns finished before any of their jobs was caught running"
    os.kill(int(victim.claimed_by.rsplit("/", 1)[1]), signal.SIGKILL)
    killed_at = time.monotonic()

    assert _wait_settled(ctx, campaign_id, timeout=90) == {"done": 8}
    assert time.monotonic() - killed_at < 90
    again = next(j for j in _jobs(ctx, campaign_id) if j.id == victim.id)
    assert again.attempts >= 2  # it was interrupted and run again, by the replacement child or the other worker
    _assert_exactly_once(ctx, campaign_id, _local_keys(ctx, campaign_id))
    assert len(_creatives(ctx, campaign_id)) == 32


def test_retry_failed_reruns_only_failed_jobs_and_cancel_stops_new_ones(pool, tmp_path, monkeypatch, default_models):
    ctx = _use(pool, monkeypatch)
    # A real failure: the image model folder is gone when the jobs run (here, in-process). The product
    # has no photo here, so the image placements paint with the image model rather than the inpainting one.
    image_model = tmp_path / "image-model"
    shutil.copytree(default_models["image"], image_model)
    data = yaml.safe_load(_spec(tmp_path, "retry", ["google_rsa", "meta_feed", "x_promoted"]).read_text())
    for product in data["products"]:
        product["images"] = []
    spec = parse_spec({**data, "models": {"text": "default", "image": str(image_model)}}, base_dir=REPO)
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
    result = adgen("worker", "--queues", "text,video", check=False, env={"ADGEN_BROKER_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 2 and "--queues: video" in result.stderr
    result = adgen("campaign", "run", str(EXAMPLE), "--detach", check=False)
    assert result.returncode == 2 and "--detach" in result.stderr and "ADGEN_BROKER_URL" in result.stderr


# The production backends: records on PostgreSQL, assets on an S3 server behind a TCP forwarder
# (so the server can be made unreachable without losing its objects), and a Redis server that the
# restart test stops and starts again.

@dataclass
class Services:
    redis_cmd: list[str]
    redis: subprocess.Popen
    proxy_cmd: list[str]
    proxy: subprocess.Popen
    s3_url: str  # moto itself, for the test's own look at the bucket
    bucket: str

    def restart_redis(self, down: float) -> None:
        self.redis.terminate()  # a clean shutdown, as a restart by the service manager does
        self.redis.wait(timeout=20)
        time.sleep(down)
        self.redis = subprocess.Popen(self.redis_cmd, stdout=subprocess.DEVNULL)

    def s3_keys(self, prefix: str) -> set[str]:
        import boto3

        client = boto3.client("s3", endpoint_url=self.s3_url)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"prod/{prefix}")
        return {o["Key"].removeprefix("prod/") for page in pages for o in page.get("Contents", [])}


@pytest.fixture(scope="module")
def production(tmp_path_factory, default_models):
    psycopg = pytest.importorskip("psycopg")
    import boto3

    folder = tmp_path_factory.mktemp("production")
    moto_port, proxy_port = _free_port(), _free_port()
    redis_cmd, redis_proc, broker = _redis_server(folder)
    started = [redis_proc]
    started.append(subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(moto_port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    proxy_cmd = [sys.executable, str(REPO / "tests" / "tcp_proxy.py"), str(proxy_port), str(moto_port)]
    started.append(subprocess.Popen(proxy_cmd, stdout=subprocess.DEVNULL))
    for port in (moto_port, proxy_port):
        _wait_port(port)
    os.environ.update(S3_ENV)
    s3_url = f"http://127.0.0.1:{moto_port}"
    bucket = f"creatives-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_url).create_bucket(Bucket=bucket)
    name = f"adgen_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    admin.execute(f'CREATE DATABASE "{name}"')

    env = {"ADGEN_HOME": str(folder / "home"), "ADGEN_BROKER_URL": broker,
           "ADGEN_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
           "ADGEN_STORAGE_URL": f"s3://{bucket}/prod", "ADGEN_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy_port}", **S3_ENV}
    pool = _start_pool(env, folder)
    services = Services(redis_cmd, started[0], proxy_cmd, started[2], s3_url, bucket)
    yield pool, services
    _stop_pool(pool)
    for proc in (services.redis, started[1], services.proxy):
        proc.terminate()
        proc.wait(timeout=20)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _finish(follower: subprocess.Popen, pool: Pool, ctx: Context, campaign_id: str, timeout: float) -> dict:
    """Wait for the follower's JSON; on a timeout, say where each job stands and what the workers logged."""
    try:
        out, err = follower.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        follower.kill()
        jobs = [(j.id, j.status, j.attempts, j.claimed_by, j.error) for j in _jobs(ctx, campaign_id)]
        logs = "\n".join(pool.log(i)[-3000:] for i in range(len(pool.procs)))
        raise AssertionError(f"campaign not finished in {timeout} s: {jobs}\n{logs}") from None
    assert follower.returncode == 0, err
    return json.loads(out)


def _follow(pool: Pool, spec: Path) -> subprocess.Popen:
    """`adgen campaign run` with the broker: it sends the jobs and follows them to the end."""
    return subprocess.Popen([sys.executable, "-m", "adgen", "campaign", "run", str(spec), "--json"], cwd=REPO,
                            env={**pool.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _first_job(ctx: Context, status: str, since, timeout: float = 60) -> tuple[str, records.Job]:
    """The first job of a campaign started after `since` to reach `status`."""
    from sqlalchemy import select

    deadline = time.monotonic() + timeout
    while True:
        with ctx.db() as s:
            job = s.scalars(select(records.Job).where(records.Job.status == status, records.Job.started_at > since)).first()
        if job is not None:
            return job.campaign_id, job
        assert time.monotonic() < deadline, f"no job {status} in {timeout} s"
        time.sleep(0.02)


def test_redis_restarted_mid_campaign_workers_reconnect_and_it_completes(production, tmp_path, monkeypatch):
    pool, services = production
    ctx = _use(pool, monkeypatch)
    since = records._now()
    follower = _follow(pool, _spec(tmp_path, "redis-restart", ["google_rsa", "meta_feed", "x_promoted"], audiences=2))
    campaign_id, _ = _first_job(ctx, "done", since)
    services.restart_redis(down=2)
    restarted = records._now()
    assert _finish(follower, pool, ctx, campaign_id, 240) == {"campaign_id": campaign_id, "jobs": {"done": 6}}
    assert any(j.started_at > restarted for j in _jobs(ctx, campaign_id)), "no job ran after the restart"
    assert all(proc.poll() is None for proc in pool.procs)
    _assert_exactly_once(ctx, campaign_id, services.s3_keys(f"campaigns/{campaign_id}/"))


def test_s3_unreachable_mid_campaign_jobs_retry_and_nothing_is_lost(production, tmp_path, monkeypatch):
    pool, services = production
    ctx = _use(pool, monkeypatch)
    since = records._now()
    follower = _follow(pool, _spec(tmp_path, "s3-outage", ["meta_feed", "x_promoted", "linkedin_single_image", "meta_story"]))
    campaign_id, caught = _first_job(ctx, "running", since)
    services.proxy.kill()
    services.proxy.wait()
    with pytest.raises(OSError):
        urllib.request.urlopen(pool.env["ADGEN_S3_ENDPOINT_URL"], timeout=1)
    time.sleep(4)
    services.proxy = subprocess.Popen(services.proxy_cmd, stdout=subprocess.DEVNULL)
    _wait_port(int(pool.env["ADGEN_S3_ENDPOINT_URL"].rsplit(":", 1)[1]))
    back = records._now()
    assert _finish(follower, pool, ctx, campaign_id, 240) == {"campaign_id": campaign_id, "jobs": {"done": 4}}
    jobs = {j.id: j for j in _jobs(ctx, campaign_id)}
    assert jobs[caught.id].finished_at > back  # the job running at the outage waited it out and finished
    _assert_exactly_once(ctx, campaign_id, services.s3_keys(f"campaigns/{campaign_id}/"))
    assert len(_creatives(ctx, campaign_id)) == 4


def test_reconcile_sends_again_jobs_lost_with_a_dead_worker_or_broker(pool, tmp_path, monkeypatch):
    ctx = _use(pool, monkeypatch)
    from datetime import timedelta

    spec = parse_spec(yaml.safe_load(_spec(tmp_path, "lost", ["google_rsa", "meta_feed", "x_promoted"]).read_text()), base_dir=REPO)
    campaign_id = create_campaign(spec, ctx)
    stuck, lost, fresh = (j.id for j in _jobs(ctx, campaign_id))
    long_ago = records._now() - timedelta(hours=1)
    with ctx.db.begin() as s:  # as a dead worker and a broker that lost its queue leave them
        job = s.get(records.Job, stuck)
        job.status, job.started_at, job.attempts, job.queued_at = "running", long_ago, 1, long_ago
        s.get(records.Job, lost).queued_at = long_ago
        s.get(records.Job, fresh).queued_at = records._now()  # may still be on its way: left alone
    assert adgen("workers", "reconcile", campaign_id).stdout.strip() == f"sent again 2 job(s): {lost}, {stuck}"
    deadline = time.monotonic() + 60
    while job_counts(campaign_id, ctx).get("done", 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    jobs = {j.id: j for j in _jobs(ctx, campaign_id)}
    assert (jobs[stuck].status, jobs[stuck].attempts, jobs[lost].status, jobs[fresh].status) == ("done", 2, "done", "pending")
    assert adgen("workers", "reconcile", campaign_id).stdout.strip() == "sent again 0 job(s)"


def _stock_text_adapter(base: Path, folder: Path, seed: int) -> Path:
    """A LoRA made with stock peft code, nudged so that it changes the model's output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.05)
    model.save_pretrained(folder)
    return folder


def test_workers_use_brand_adapters_from_storage_and_switch_between_them(pool, tmp_path, monkeypatch, default_models):
    ctx = _use(pool, monkeypatch)
    for i in (1, 2):
        added = adgen("adapters", "add", str(_stock_text_adapter(default_models["text"], tmp_path / f"lora-{i}", i)),
                      "--brand", "northwind", "--kind", "text")
        assert added.stdout.strip() == f"northwind/text@v{i}"
    made = {}
    for i in (1, 2, 1):  # back to the first: a switch between adapters already loaded
        spec = _spec(tmp_path, f"adapter-{i}", ["google_rsa"], variants=2, adapters={"text": f"northwind/text@v{i}"})
        result = json.loads(adgen("campaign", "run", str(spec), "--json").stdout)
        assert result["jobs"] == {"done": 1}
        rows = _creatives(ctx, result["campaign_id"])
        assert {r.lineage["text_adapter"]["ref"] for r in rows} == {f"northwind/text@v{i}"}
        made.setdefault(i, []).append(sorted(str(r.copy) for r in rows))
    assert made[1][0] == made[1][1]  # the same adapter and seed give the same copy after a switch
    assert made[1][0] != made[2][0]  # and the two adapters write differently

    status = json.loads(adgen("workers", "status", "--json").stdout)
    held = [m for name, w in status.items() if name.startswith("test-") for child in w["children"]
            for m in child["models"] if m["kind"] == "text"]
    assert any(m["adapters"] for m in held), held
    assert {a for m in held for a in m["adapters"]} <= {"northwind/text@v1", "northwind/text@v2"}
