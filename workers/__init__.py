"""Distributed generation: campaign jobs on a fleet of Celery workers (one process per GPU).

`workers.app` holds the Celery app, the `run_job` task and the reconciler; `workers.cli` the
`adgen worker` and `adgen workers status` commands and the follower that shows a campaign's progress
from the records. The core library never imports this package: `adgen.jobs.dispatch` sends job ids
by task name (`adgen.jobs.TASK`), importing Celery only when a broker is set.
"""
