"""Benchmark: the same campaign in-process, on one worker process and on two, through a real Redis
broker and real `adgen worker` processes, on the offline default models.

Prints, from one run on this machine, side by side:
- Celery overhead per job: wall time of the campaign on one worker (first job sent to last job
  recorded) minus the time its child spent inside jobs, divided by the number of jobs;
- efficiency through the workers: time inside model calls / wall time, with one worker process;
- throughput with two worker processes against one (each child one torch thread).

    ADGEN_BROKER_URL=redis://127.0.0.1:6379/14 python bench/on_workers.py    # db 14 unless set; flushed first
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ADGEN_BROKER_URL", "redis://127.0.0.1:6379/14")
HOME = tempfile.mkdtemp(prefix="adgen-bench-workers-")
os.environ["ADGEN_HOME"] = HOME
os.environ.setdefault("ADGEN_MODELS", str(Path("~/.adgen/models").expanduser()))

from campaign import SPEC  # noqa: E402  (bench/campaign.py, beside this file)
from sqlalchemy import func, select  # noqa: E402

from adgen import records  # noqa: E402
from adgen.context import Context  # noqa: E402
from adgen.jobs import create_campaign, dispatch, run_campaign  # noqa: E402
from adgen.resident import image_model_for, text_model_for  # noqa: E402
from adgen.settings import Settings  # noqa: E402
from adgen.spec import parse_spec  # noqa: E402

VARIANTS = 2  # 4 audiences x 3 placements x 2 variants: 12 jobs, 24 creatives


def start_worker(state: Path) -> subprocess.Popen:
    state.mkdir(parents=True)
    log = (state.parent / f"{state.name}.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "adgen", "worker", "--concurrency", "1", "--threads", "1"],
                            env={**os.environ, "ADGEN_WORKER_STATE": str(state)}, stdout=log, stderr=subprocess.STDOUT)
    while " ready." not in Path(log.name).read_text():
        if proc.poll() is not None:
            raise SystemExit(Path(log.name).read_text())
        time.sleep(0.1)
    return proc


def child_totals(states: list[Path]) -> dict[str, float]:
    totals = {"jobs": 0, "job_seconds": 0.0, "model_seconds": 0.0}
    for state in states:
        for path in state.glob("*.json"):
            info = json.loads(path.read_text())
            for key in totals:
                totals[key] += info[key]
    return totals


def on_workers(ctx: Context, name: str, states: list[Path], variants: int = VARIANTS) -> dict[str, float]:
    """Run a campaign on the workers; wall time from the first job sent to the last one recorded."""
    campaign_id = create_campaign(parse_spec({**SPEC, "campaign": name, "variants": variants}), ctx)
    before = child_totals(states)
    dispatch(campaign_id, ctx)
    while True:
        with ctx.db() as s:
            left = s.scalar(select(func.count()).where(records.Job.campaign_id == campaign_id,
                                                        records.Job.status.in_(("pending", "running"))))
        if not left:
            break
        time.sleep(0.05)
    with ctx.db() as s:
        sent, last = s.execute(select(func.min(records.Job.queued_at), func.max(records.Job.finished_at))
                               .where(records.Job.campaign_id == campaign_id)).one()
        failed = s.scalar(select(func.count()).where(records.Job.campaign_id == campaign_id, records.Job.status != "done"))
    assert not failed, f"{failed} jobs not done"
    time.sleep(0.3)  # the children write their totals right after each job
    after = child_totals(states)
    return {"wall": (last - sent).total_seconds(), **{k: after[k] - before[k] for k in before}}


def main() -> None:
    import redis

    redis.Redis.from_url(os.environ["ADGEN_BROKER_URL"]).flushdb()
    load_before = os.getloadavg()[0]
    ctx = Context(Settings())
    folder = Path(HOME)
    workers = [start_worker(folder / "worker-0")]
    try:
        on_workers(ctx, "warmup-0", [folder / "worker-0"], variants=1)  # load the models in the child
        one = on_workers(ctx, "one-worker", [folder / "worker-0"])
        workers.append(start_worker(folder / "worker-1"))
        states = [folder / "worker-0", folder / "worker-1"]
        on_workers(ctx, "warmup-1", states, variants=1)
        two = on_workers(ctx, "two-workers", states)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=30)

    # The same campaign in this process, for reference (models loaded and warmed first).
    torch_threads = os.environ.get("BENCH_INPROCESS_THREADS", "1")
    import torch

    torch.set_num_threads(int(torch_threads))
    warm = create_campaign(parse_spec({**SPEC, "campaign": "warmup-here", "variants": 1}), ctx)
    run_campaign(warm, ctx)
    with ctx.db() as s:
        c = s.get(records.Campaign, warm)
        models = [text_model_for(c.text_model, ctx), image_model_for(c.image_model, ctx)]
    here_id = create_campaign(parse_spec({**SPEC, "campaign": "in-process", "variants": VARIANTS}), ctx)
    model_before = sum(m.model_seconds for m in models)
    start = time.perf_counter()
    run_campaign(here_id, ctx)
    here = {"wall": time.perf_counter() - start, "model_seconds": sum(m.model_seconds for m in models) - model_before}

    load_after = os.getloadavg()[0]
    busy = max(load_before, load_after) > (os.cpu_count() or 1) - 0.5
    print(f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} on {os.cpu_count()} cores"
          + (" (other processes competed for the cores: the figures are low)" if busy else " (the machine was otherwise idle)"))
    jobs = one["jobs"]
    n = jobs * VARIANTS
    print(f"campaign: {len(SPEC['audiences'])} audiences x {len(SPEC['placements'])} placements x {VARIANTS} variants "
          f"= {jobs:.0f} jobs, {n:.0f} creatives; broker {os.environ['ADGEN_BROKER_URL']}; torch threads 1 per process")
    print(f"{'':34}{'in-process':>12}{'1 worker':>12}{'2 workers':>12}")
    print(f"{'wall seconds':34}{here['wall']:12.2f}{one['wall']:12.2f}{two['wall']:12.2f}")
    print(f"{'creatives per second':34}{n / here['wall']:12.2f}{n / one['wall']:12.2f}{n / two['wall']:12.2f}")
    print(f"{'seconds in model calls':34}{here['model_seconds']:12.2f}{one['model_seconds']:12.2f}{two['model_seconds']:12.2f}")
    print(f"{'efficiency (model / wall)':34}{here['model_seconds'] / here['wall']:12.2f}{one['model_seconds'] / one['wall']:12.2f}"
          f"{two['model_seconds'] / (2 * two['wall']):12.2f}   (2 workers: per process)")
    overhead = (one["wall"] - one["job_seconds"]) / jobs
    print(f"Celery overhead per job, 1 worker: {overhead * 1000:.1f} ms   goal < 5 ms "
          f"(wall {one['wall']:.2f} s - {one['job_seconds']:.2f} s inside jobs, over {jobs:.0f} jobs)")
    print(f"efficiency through the workers, 1 worker process: {one['model_seconds'] / one['wall']:.2f}   goal >= 0.8")
    print(f"throughput, 2 worker processes vs 1: {one['wall'] / two['wall']:.2f}x   goal >= 1.6x")


if __name__ == "__main__":
    main()
