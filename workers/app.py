"""The Celery app and its one task: `run_job` on a fleet of worker processes.

The task is thin: it takes a job id and calls `adgen.jobs.run_job`, which loads the job from the
records, runs the models (loaded lazily in this child process, once, and kept resident), stores
the creatives under deterministic keys, marks the job done in the same transaction as its rows and
settles the campaign. Jobs are sent by `adgen.jobs.dispatch` as bare ids in messages named
`adgen.jobs.TASK`; nothing else goes through the broker, and no task waits on another.

Delivery is at least once (late acks, redelivery when a worker dies); effects are exactly once
because only a pending job is claimed, by compare-and-set, and every row and object has a
deterministic id. When a child dies in the middle of a job, its worker (the parent process, which
sees the death) counts the lost run in the records before the message goes back to the queue
(`JobRequest`): the job runs again, or fails after three lost runs with the reason.
Progress and completion are read from the records, never from task results or chords.

The reconciler (`adgen.recovery`) is the task `RECONCILE_TASK`, on the beat schedule that
`adgen worker --beat` runs (one such worker per deployment), every RECONCILE_EVERY seconds.
"""

import json
import os
import re
import socket
import time
from pathlib import Path

from billiard.exceptions import WorkerLostError
from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init
from celery.utils.log import get_logger
from celery.worker.control import inspect_command
from celery.worker.request import Request
from kombu import Exchange, Queue
from sqlalchemy.exc import SQLAlchemyError

from adgen import jobs, records
from adgen.context import Context
from adgen.jobs import QUEUES, TASK
from adgen.recovery import RECONCILE_EVERY, lose, reconcile_all
from adgen.settings import Settings, get_settings

MAX_RETRIES = 5  # transient errors (storage, database) per job, with exponential backoff
RECONCILE_TASK = "adgen.reconcile"
logger = get_logger(__name__)


def make_app(settings: Settings) -> Celery:
    """Celery configured for long GPU jobs: one job per child at a time, acknowledged only when
    done, redelivered when the child dies, killed when it runs past the job time limit."""
    limit = settings.job_time_limit
    app = Celery("adgen", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_queues=[Queue(q, Exchange(q), routing_key=q) for q in QUEUES],
        task_default_queue="text",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # progress lives in the records
        # The hard limit kills the child (prefork honours it); the soft one lets the job record why.
        task_time_limit=limit,
        task_soft_time_limit=max(limit - 30, limit * 9 // 10),
        # A message comes back only after this; it must outlast the longest job plus a retry's wait,
        # or a job still running is delivered a second time.
        broker_transport_options={"visibility_timeout": limit + 600},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # A replacement child imports torch and may load a model before it reports in.
        worker_proc_alive_timeout=120,
        worker_max_tasks_per_child=1000,
        worker_max_memory_per_child=16 * 1024 * 1024,  # KiB: a child over 16 GiB is replaced after its job
        worker_send_task_events=False,
        # `adgen worker --beat`: one reconciler pass at a time; a pass not started in time is dropped.
        beat_schedule={"reconcile": {"task": RECONCILE_TASK, "schedule": float(RECONCILE_EVERY),
                                     "options": {"queue": "text", "expires": float(RECONCILE_EVERY)}}},
    )
    return app


app = make_app(get_settings())
_contexts: dict[int, Context] = {}


def context() -> Context:
    """This process's own settings, database engine and storage client: a child's is made after the
    fork, apart from the worker's (the parent's, which records the runs its children lose)."""
    pid = os.getpid()
    if pid not in _contexts:
        _contexts[pid] = Context(get_settings())
    return _contexts[pid]


@worker_process_init.connect
def _child_started(**_):
    """In each child, after the fork: database connections of its own (the parent's, inherited when
    it recorded a lost run, stay the parent's), torch threads per process (processes x threads <=
    cores), and no loading bars in the worker's log."""
    for engine in records._engines.values():
        engine.dispose(close=False)
    import torch
    from diffusers.utils import logging as diffusers_logging

    torch.set_num_threads(int(os.environ.get("ADGEN_TORCH_THREADS", "1")))
    diffusers_logging.disable_progress_bar()


class JobRequest(Request):
    """A job message as the worker (the parent process) sees it. When the child running it dies, the
    worker counts the lost run in the records before the message is redelivered, so the next
    delivery finds the job pending (or failed, after three deaths) rather than running forever."""

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = getattr(exc_info.exception, "exc", exc_info.exception)
        if isinstance(exc, WorkerLostError | SystemExit | KeyboardInterrupt) and self.args and self.worker_pid:
            found = re.search(r"signal \d+ \(\w+\)|exitcode -?\d+", str(exc))
            try:
                lose(self.args[0], context(), found.group(0) if found else type(exc).__name__,
                     claimed_by=f"{socket.gethostname()}/{self.worker_pid}")
            except (SQLAlchemyError, OSError):
                # The records are unreachable: the message still goes back to the queue below, and the
                # reconciler gives up on the run after the job time limit.
                logger.exception("could not record the lost run of job %s", self.args[0])
        return super().on_failure(exc_info, send_failed_event, return_ok)


@app.task(name=TASK, bind=True, max_retries=MAX_RETRIES, Request=JobRequest)
def run_job(self, job_id: str) -> str:
    """Run one job; a transient error puts it back to pending and retries later with backoff."""
    retries_left = self.request.retries < MAX_RETRIES
    try:
        return jobs.run_job(job_id, context(), retry=retries_left)
    except Exception as e:
        if retries_left and jobs.is_transient(e):
            raise self.retry(exc=e, countdown=min(2**self.request.retries, 30)) from e
        raise


@app.task(name=RECONCILE_TASK)
def reconcile_task() -> dict[str, list[str]]:
    """One reconciler pass over every unfinished campaign (the beat schedule sends it)."""
    return reconcile_all(context())


# `adgen workers status` asks each worker which models its children hold. Each child writes what it
# loaded, with its job count and seconds inside jobs and model calls (bench/workers.py reads them),
# to a folder of its worker (set by `adgen worker`), and the worker answers from it.

_jobs_run = {"jobs": 0, "job_seconds": 0.0, "started": 0.0}


def _state_dir() -> Path | None:
    folder = os.environ.get("ADGEN_WORKER_STATE")
    return Path(folder) if folder else None


@task_prerun.connect
def _job_started(**_):
    _jobs_run["started"] = time.perf_counter()


@task_postrun.connect
def _record_state(**_):
    _jobs_run["jobs"] += 1
    _jobs_run["job_seconds"] += time.perf_counter() - _jobs_run["started"]
    folder = _state_dir()
    if folder is None:
        return
    from adgen.resident import loaded

    held = loaded()
    state = {
        "pid": os.getpid(), "jobs": _jobs_run["jobs"], "job_seconds": round(_jobs_run["job_seconds"], 4),
        "model_seconds": round(sum(m.model_seconds for m in held.values()), 4),
        "models": [{"kind": k[0], "path": k[1], "device": k[2], "adapters": list(m.adapters.values())} for k, m in held.items()],
    }
    tmp = folder / f".{os.getpid()}.json"
    tmp.write_text(json.dumps(state))
    tmp.replace(folder / f"{os.getpid()}.json")


@inspect_command()
def adgen_models(state) -> list[dict]:
    """The models loaded in each live child of this worker."""
    folder = _state_dir()
    if folder is None:
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        info = json.loads(path.read_text())
        try:
            os.kill(info["pid"], 0)  # a child replaced after a crash or max_tasks_per_child is gone
        except ProcessLookupError:
            path.unlink(missing_ok=True)
            continue
        found.append(info)
    return found
