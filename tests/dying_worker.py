"""`adgen worker`, except that its children die (SIGKILL) in every job of a product whose name starts
with "Doomed": a job that kills its worker each time it runs, as one that runs out of memory or hits
a segfault does. The children are forked from this process, so they run the patched job code.

Run as: python tests/dying_worker.py worker [options of adgen worker] (PYTHONPATH at the repo root)."""

import os
import signal

from adgen import jobs, records

_make_creatives = jobs.make_creatives


def _dying(job_id, ctx):
    with ctx.db() as s:
        if s.get(records.Job, job_id).product.startswith("Doomed"):
            os.kill(os.getpid(), signal.SIGKILL)
    return _make_creatives(job_id, ctx)


jobs.make_creatives = _dying

if __name__ == "__main__":
    from cli.main import app

    app(prog_name="adgen")
