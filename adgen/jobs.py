"""Campaign and job state, from a spec to settled jobs: record a campaign and its jobs, claim, fail,
release, cancel, reset and regenerate them, settle the campaign's status, and `dispatch`, the one
place that decides whether jobs run in this process or on the Celery workers.

`create_campaign` validates everything that can fail before it writes anything; it records a new
brand with the spec's kit but never changes an existing brand's kit (the brand-kit editor and
`adgen brand set` do), and keeps a snapshot of the kit it used on the campaign. `run_job` is the
unit of work: it takes a job id, claims it (only a pending job: one run per job), makes its
creatives (`adgen.pipeline`) and is safe to deliver again (a job running, done or failed is left
alone; creative rows and storage keys are deterministic, and a creative a reviewer touched is never
overwritten). The in-process `run_campaign` loops over jobs under the campaign's runner lease, held
in the records, so at most one runner works on a campaign; the workers call the same `run_job`. Jobs
reach the workers as bare ids in messages named `TASK`; Celery is imported only when a broker is set.
"""

import hashlib
import io
import os
import socket
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from PIL import Image
from sqlalchemy import func, or_, select, update

from adgen import records
from adgen.context import Context
from adgen.cutout import Cutout, cut_out_file
from adgen.languages import LanguageError, check_text_model
from adgen.pipeline import make_creatives
from adgen.platforms import placement
from adgen.render import encode_png
from adgen.review import check_seen, hold, one_winner
from adgen.spec import CampaignSpec, SpecError, image_size_problem
from adgen.storage import StorageError

MAX_LOGO_BYTES = 5 * 1024 * 1024
LOGO_FORMATS = ("PNG", "JPEG", "WEBP")
TASK = "adgen.run_job"  # the Celery task the workers register (workers/app.py)
QUEUES = ("text", "image")  # text-only placements (search ads) need no image model


def job_seed(seed: int, product: str, audience: str, placement_name: str) -> int:
    """A seed per cell that does not depend on the order of products, audiences or placements."""
    digest = hashlib.sha256(f"{seed}:{product}:{audience}:{placement_name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31  # fits a signed 32-bit column on every database


def logo_problem(data: bytes) -> str | None:
    """Why these bytes cannot be a brand logo, or None when they can: the one logo check, used by
    campaign specs and the web app's brand kit alike (each names its own field in front)."""
    if len(data) > MAX_LOGO_BYTES:
        return f"the file is {len(data) / 1024**2:.1f} MB; the limit is {MAX_LOGO_BYTES // 1024**2} MB"
    if problem := image_size_problem(data):
        return problem
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            fmt = im.format
    except Exception:
        return "the file is not an image; use PNG, JPEG or WebP"
    return None if fmt in LOGO_FORMATS else f"{fmt} is not supported; use PNG, JPEG or WebP"


def _read_logo(spec: CampaignSpec) -> bytes | None:
    if spec.brand.logo is None:
        return None
    data = spec.brand.logo.read_bytes()
    if problem := logo_problem(data):
        raise SpecError(f"brand.logo: {spec.brand.logo}: {problem}")
    return data


def product_photos(spec: CampaignSpec) -> dict[str, Cutout]:
    """Each product's first image cut out, by product name; raises ProductImageError (a SpecError
    naming the product and file) for an image that cannot be used."""
    return {p.name: cut_out_file(p.images[0], product=p.name) for p in spec.products if p.images}


def store_cutout(cut: Cutout, ctx: Context) -> dict:
    """Store a product's cut-out (RGBA PNG) under its content hash; returns what the campaign records
    of it: the storage key beside the cut-out's own lineage (photo and mask hashes, mask source)."""
    data = encode_png(cut.image)
    key = f"products/cutouts/{hashlib.sha256(data).hexdigest()[:16]}.png"
    ctx.storage.put(key, data, "image/png")
    return {"cutout_key": key, **cut.lineage()}


def _check_running(brand_name: str, ctx: Context) -> None:
    """A brand's unfinished campaigns against `max_running_campaigns`, before anything is stored."""
    limit = ctx.settings.max_running_campaigns
    with ctx.db() as s:
        running = s.scalar(select(func.count()).select_from(records.Campaign).join(records.Brand)
                           .where(records.Brand.name == brand_name, records.Campaign.status.in_(("pending", "running"))))
    if running >= limit:
        raise SpecError(f"brand.name: {brand_name!r} is at its limit of {limit} unfinished campaigns "
                        f"(ADGEN_MAX_RUNNING_CAMPAIGNS); wait for one to finish or cancel one")


def create_campaign(spec: CampaignSpec, ctx: Context, progress=None) -> str:
    """Record a campaign and its jobs; returns the campaign id. Validates models, the logo and the
    product photos (cut out here) first, so bad input writes nothing."""

    from adgen.image import check_family
    from adgen.models import resolve_model
    from adgen.score import check_judge

    check_judge(spec.models.judge, ctx.settings)
    for i, audience in enumerate(spec.audiences if spec.copy_by == "model" else ()):  # before anything is stored
        try:
            check_text_model(spec.models.text, audience.language, f"audiences[{i}].language")
        except LanguageError as e:
            raise SpecError(str(e)) from None
    text_ref = vars(resolve_model(spec.models.text, "text", ctx.settings, progress=progress))
    image_ref = vars(resolve_model(spec.models.image, "image", ctx.settings, progress=progress))
    check_family(image_ref["path"], image_ref["ref"])
    for kind, model in (("text", text_ref), ("image", image_ref)):
        if getattr(spec.adapters, kind):
            model["adapter"] = resolve_adapter(getattr(spec.adapters, kind), kind, model, ctx, spec.brand.name)
    logo = _read_logo(spec)
    photos = product_photos(spec)
    inpaint_ref = vars(resolve_model(spec.models.inpaint, "inpaint", ctx.settings, progress=progress)) if photos else None
    if inpaint_ref:
        check_family(inpaint_ref["path"], inpaint_ref["ref"], "models.inpaint")
    _check_running(spec.brand.name, ctx)  # after the checks of the input, so bad input leaves no database

    logo_key = None
    if logo is not None:
        logo_key = f"brands/logos/{hashlib.sha256(logo).hexdigest()[:16]}.png"
        ctx.storage.put(logo_key, logo, "image/png")
    stored_photos = {name: store_cutout(cut, ctx) for name, cut in photos.items()}
    with ctx.db.begin() as s:
        brand = s.scalar(select(records.Brand).where(records.Brand.name == spec.brand.name))
        if brand is None:  # a new brand starts with the spec's kit; an existing kit is never changed here
            brand = records.Brand(name=spec.brand.name, voice=spec.brand.voice, banned_terms=spec.brand.banned_terms,
                                  colors=spec.brand.colors, logo_key=logo_key)
            s.add(brand)
            s.flush()
        kit = {"voice": brand.voice, "banned_terms": list(brand.banned_terms), "colors": list(brand.colors),
               "logo_key": brand.logo_key}
        campaign = records.Campaign(
            name=spec.campaign, brand_id=brand.id, spec={**spec.model_dump(mode="json"), "logo_key": logo_key, "brand_kit": kit,
                  **({"product_photos": stored_photos, "inpaint_model": inpaint_ref} if photos else {})},
            text_model=text_ref, image_model=image_ref,
        )
        s.add(campaign)
        s.flush()
        cells = [(p, a, pl) for p in spec.products for a in spec.audiences for pl in spec.placements]
        for i, (product, audience, placement_name) in enumerate(cells):
            s.add(records.Job(
                id=f"{campaign.id}-{i:03d}", campaign_id=campaign.id, position=i, product=product.name,
                audience=audience.name, placement=placement_name, variants=spec.variants,
                seed=job_seed(spec.seed, product.name, audience.name, placement_name),
            ))
        return campaign.id


def resolve_adapter(ref: str, kind: str, model: dict, ctx: Context, brand_name: str) -> dict:
    """A spec's adapter ref -> the lineage of the exact version it names, after checking that the
    version exists, belongs to the campaign's brand and was trained on the campaign's base model.

    The brand check is what keeps one advertiser's adapters out of another's campaigns (the web app
    lets an advertiser name any ref): the ref's brand must name this brand and no other brand."""
    from adgen import adapters

    try:
        owner = adapters.parse_ref(ref, kind).brand
        if not adapters.names_brand(owner, brand_name):
            raise SpecError(f"adapters.{kind}: {ref} is an adapter of brand {owner!r}, not of {brand_name!r}; "
                            f"use one registered for {adapters.brand_slug(brand_name)!r}")
        version = adapters.resolve(ctx.storage, ref, kind)
        adapters.check_base(version, model, f"adapters.{kind}")
        with ctx.db() as s:
            others = [b for b in s.scalars(select(records.Brand.name)) if b != brand_name and adapters.names_brand(owner, b)]
        if others:
            raise SpecError(f"adapters.{kind}: {owner!r} names brands {brand_name!r} and {others[0]!r}; register the "
                            f"adapter under the full slug {adapters.brand_slug(brand_name)!r}")
    except adapters.AdapterError as e:
        raise SpecError(str(e) if str(e).startswith("adapters.") else f"adapters.{kind}: {e}") from None
    return version.lineage()


# ----- one job -----

def me() -> str:
    """This process, as jobs and campaigns record who runs them: host/pid."""
    return f"{socket.gethostname()}/{os.getpid()}"


def claim(job_id: str, ctx: Context) -> int:
    """Compare-and-set pending -> running; returns the attempt this run is (1, 2, ...), or 0 when the
    job is not pending: running elsewhere, done, failed, cancelled or missing. A running job is never
    taken over here: it goes back to pending only when its worker saw its child die or the reconciler
    gave up on it after the job time limit (adgen.recovery), so one job never runs twice at once."""
    with ctx.db.begin() as s:
        result = s.execute(
            update(records.Job).where(records.Job.id == job_id, records.Job.status == "pending")
            .values(status="running", attempts=records.Job.attempts + 1, started_at=records._now(), error=None,
                    claimed_by=me())
        )
        return s.scalar(select(records.Job.attempts).where(records.Job.id == job_id)) if result.rowcount == 1 else 0


def fail(job_id: str, ctx: Context, error: Exception | str) -> None:
    """Mark a running job failed with its reason. Only a job still running changes, so a late failure
    of a duplicate run never overwrites a job that is done or was cancelled."""
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    with ctx.db.begin() as s:
        s.execute(
            update(records.Job).where(records.Job.id == job_id, records.Job.status == "running")
            .values(status="failed", error=reason, finished_at=records._now())
        )


def release(job_id: str, ctx: Context, error: Exception) -> None:
    """Put a running job back to pending (to be tried again), keeping the reason it stopped."""
    with ctx.db.begin() as s:
        s.execute(
            update(records.Job).where(records.Job.id == job_id, records.Job.status == "running")
            .values(status="pending", error=f"will retry after {type(error).__name__}: {error}",
                    queued_at=records._now())
        )


def is_transient(error: Exception) -> bool:
    """Errors worth another try: an unreachable storage or database, a dropped connection. A missing
    file or model folder is not one of them."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    return isinstance(error, StorageError | ConnectionError | TimeoutError | OperationalError | InterfaceError)


def run_job(job_id: str, ctx: Context, retry: bool = False) -> str:
    """Generate, render, check and record every creative of one job, then settle its campaign.
    Returns the job's status afterwards. Safe to deliver again: a job that is not pending (running
    elsewhere, done, failed, cancelled) is left alone. With `retry`, a transient error (storage,
    database, network) puts the job back to pending for the caller to try again; any other error, or
    any error without `retry`, fails it."""
    if claim(job_id, ctx):
        try:
            make_creatives(job_id, ctx)()
        except Exception as e:
            if retry and is_transient(e):
                release(job_id, ctx, e)
            else:
                fail(job_id, ctx, e)
                settle_job(job_id, ctx)
            raise
    with ctx.db() as s:
        job = s.get(records.Job, job_id)
        if job is None:
            raise LookupError(f"no job {job_id!r}")
        status = job.status
    settle_job(job_id, ctx)
    return status


# ----- a campaign's jobs -----

class RunnerBusy(RuntimeError):
    """Another runner holds the campaign; it makes the campaign's pending jobs, new ones included."""


def runner_lease(ctx: Context) -> timedelta:
    """How long a runner holds a campaign without a sign of life (it renews the lease at every job)."""
    return timedelta(seconds=ctx.settings.job_time_limit + 60)


def take_runner(campaign_id: str, ctx: Context, runner: str) -> bool:
    """Compare-and-set the campaign's runner lease to `runner` (taken when free, run out, or already
    its own, which renews it); False when another runner holds it."""
    now = records._now()
    with ctx.db.begin() as s:
        return s.execute(
            update(records.Campaign).where(records.Campaign.id == campaign_id, or_(
                records.Campaign.runner_until.is_(None), records.Campaign.runner_until < now,
                records.Campaign.runner == runner))
            .values(runner=runner, runner_until=now + runner_lease(ctx))
        ).rowcount == 1


def drop_runner(campaign_id: str, ctx: Context, runner: str) -> None:
    with ctx.db.begin() as s:
        s.execute(update(records.Campaign).where(records.Campaign.id == campaign_id, records.Campaign.runner == runner)
                  .values(runner=None, runner_until=None))


def runner_of(campaign_id: str, ctx: Context) -> str | None:
    """The runner holding the campaign now (host/pid), or None."""
    with ctx.db() as s:
        campaign = s.get(records.Campaign, campaign_id)
        return campaign.runner if campaign.runner_until and campaign.runner_until >= records._now() else None


def _pending(campaign_id: str, ctx: Context) -> list[str]:
    with ctx.db() as s:
        return list(s.scalars(select(records.Job.id).where(records.Job.campaign_id == campaign_id,
                                                           records.Job.status == "pending").order_by(records.Job.position)))


def run_campaign(campaign_id: str, ctx: Context, on_job: Callable[[records.Job, str], None] | None = None) -> dict:
    """Run a campaign's pending jobs in this process, one after another, holding its runner lease;
    jobs added meanwhile (a regenerated creative) are made before the lease is let go, so whoever adds
    a job while a runner holds the campaign needs nothing more. A failing job is recorded with its
    reason and the others still run. Returns counts by job status; raises RunnerBusy when another
    runner holds the campaign."""
    runner = me()
    if not take_runner(campaign_id, ctx, runner):
        raise RunnerBusy(f"campaign {campaign_id}: a runner is active ({runner_of(campaign_id, ctx)}); "
                         "it makes the pending jobs, new ones included")
    try:
        with ctx.db.begin() as s:
            s.get(records.Campaign, campaign_id).status = "running"
        done_before: list[str] = []
        while True:
            jobs = _pending(campaign_id, ctx)
            if not jobs or jobs == done_before:
                # Let go, then look once more: a job added before the lease went is seen here; one
                # added after finds the campaign free and starts a runner of its own.
                drop_runner(campaign_id, ctx, runner)
                if not (jobs := _pending(campaign_id, ctx)) or jobs == done_before or not take_runner(campaign_id, ctx, runner):
                    break
            _run_jobs(campaign_id, jobs, ctx, on_job, runner)
            done_before = jobs
    finally:
        drop_runner(campaign_id, ctx, runner)
    return settle(campaign_id, ctx)


def _run_jobs(campaign_id: str, jobs: list[str], ctx: Context, on_job, runner: str) -> None:

    def report(job_id: str, status: str) -> None:
        if on_job:
            with ctx.db() as s:
                on_job(s.get(records.Job, job_id), status)

    def finish(job_id: str, storing: Future) -> None:
        try:
            storing.result()
            report(job_id, "done")
        except Exception as e:
            fail(job_id, ctx, e)
            report(job_id, "failed")

    # Pipelined: while one thread lays out and stores job N, the models run job N+1.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="adgen-store") as storer:
        in_flight: tuple[str, Future] | None = None
        for job_id in jobs:
            store = None
            take_runner(campaign_id, ctx, runner)  # renewed at every job: a sign of life
            if claim(job_id, ctx):
                try:
                    store = make_creatives(job_id, ctx)
                except Exception as e:
                    fail(job_id, ctx, e)
                    report(job_id, "failed")
            else:
                with ctx.db() as s:
                    report(job_id, s.get(records.Job, job_id).status)
            if in_flight:
                finish(*in_flight)
            in_flight = (job_id, storer.submit(store)) if store else None
        if in_flight:
            finish(*in_flight)


def job_counts(campaign_id: str, ctx: Context) -> dict[str, int]:
    """How many of a campaign's jobs are pending, running, done, failed or cancelled."""
    with ctx.db() as s:
        rows = s.execute(
            select(records.Job.status, func.count()).where(records.Job.campaign_id == campaign_id)
            .group_by(records.Job.status)
        )
        return dict(rows.all())


def settle(campaign_id: str, ctx: Context) -> dict[str, int]:
    """Set the campaign's status from its jobs' once none is pending or running (done, or failed or
    cancelled when any job was); returns the job counts. Whoever sees a job finish calls this."""
    counts = job_counts(campaign_id, ctx)
    with ctx.db.begin() as s:
        campaign = s.get(records.Campaign, campaign_id)
        if not counts.get("pending") and not counts.get("running"):
            campaign.status = next((st for st in ("failed", "cancelled") if counts.get(st)), "done")
    return counts


def settle_job(job_id: str, ctx: Context) -> None:
    """Settle the campaign of a job (the last job of a campaign to finish sets its status)."""
    with ctx.db() as s:
        campaign_id = s.scalar(select(records.Job.campaign_id).where(records.Job.id == job_id))
    if campaign_id:
        settle(campaign_id, ctx)


def cancel_campaign(campaign_id: str, ctx: Context) -> int:
    """Cancel every job not yet started; jobs already running finish. Returns how many were cancelled."""
    with ctx.db.begin() as s:
        result = s.execute(
            update(records.Job).where(records.Job.campaign_id == campaign_id, records.Job.status == "pending")
            .values(status="cancelled", finished_at=records._now())
        )
        s.get(records.Campaign, campaign_id).status = "cancelled"
        return result.rowcount


def reset_failed(campaign_id: str, ctx: Context) -> list[str]:
    """Put a campaign's failed jobs back to pending (done and cancelled ones stay), their lost runs
    forgotten (asked for again by a person); returns their ids."""
    with ctx.db.begin() as s:
        ids = list(s.scalars(select(records.Job.id).where(
            records.Job.campaign_id == campaign_id, records.Job.status == "failed").order_by(records.Job.position)))
        s.execute(
            update(records.Job).where(records.Job.id.in_(ids), records.Job.status == "failed")
            .values(status="pending", error=None, finished_at=None, queued_at=records._now(), lost=0)
        )
        if ids:
            s.get(records.Campaign, campaign_id).status = "running"
        return ids


def regenerate(ctx: Context, creative_id: str, seed: int, reviewer: str, seen: int | None = None) -> str:
    """Ask for one creative again with a new seed: records a one-variant job for the same product,
    audience and placement, and rejects the old creative with a reason that names its replacement
    (the new creative's lineage names the old one). Returns the job id; a runner makes it. Refused
    when the creative changed since version `seen`."""
    if not 0 <= seed < 2**31:
        raise SpecError(f"seed: {seed} is out of range; use 0 to {2**31 - 1}")
    with one_winner(creative_id), ctx.db.begin() as s:
        campaign_id = s.scalar(select(records.Creative.campaign_id).where(records.Creative.id == creative_id))
        if campaign_id is None:
            raise LookupError(f"no creative {creative_id!r}")
        # The campaign row is written first, so regenerates in one campaign take their positions one
        # after another (a row lock on PostgreSQL, the write lock on SQLite) instead of the same one.
        s.execute(update(records.Campaign).where(records.Campaign.id == campaign_id).values(status="pending"))
        old = s.get(records.Creative, creative_id)
        check_seen(old, seen)
        hold(s, old)
        campaign = s.get(records.Campaign, campaign_id)
        position = s.scalar(select(func.max(records.Job.position)).where(records.Job.campaign_id == campaign_id)) + 1
        job = records.Job(
            id=f"{campaign.id}-{position:03d}", campaign_id=campaign.id, position=position, product=old.product,
            audience=old.audience, placement=old.placement, variants=1, seed=seed, replaces=old.id,
        )
        s.add(job)
        if old.status != "rejected":
            old.status = "rejected"
            s.add(records.Review(creative_id=old.id, action="reject", reviewer=reviewer,
                                 reason=f"regenerated with seed {seed} as {job.id}-0"))
        return job.id


# ----- where jobs run -----

def queue_for(placement_name: str) -> str:
    return "image" if placement(placement_name).image else "text"


def dispatch(campaign_id: str, ctx: Context, job_ids: list[str] | None = None) -> bool:
    """Where a campaign's jobs run, decided here and nowhere else. With ADGEN_BROKER_URL set, the
    campaign is marked running and its jobs (`job_ids`, default every pending one) are sent
    to the workers: returns True, and the caller follows progress in the records. Without a broker,
    sends nothing and returns False: the caller runs them in this process (`run_campaign`)."""
    if not ctx.settings.broker_url:
        return False
    with ctx.db.begin() as s:
        campaign = s.get(records.Campaign, campaign_id)
        campaign.status = "running"
        if job_ids is None:
            job_ids = [j.id for j in campaign.jobs if j.status == "pending"]
    send(job_ids, ctx)
    return True


def send(job_ids: list[str], ctx: Context) -> None:
    """Send jobs to the workers, one message per job id (completion is read from the records). Jobs
    go out in campaign order, so one campaign's jobs, which share its adapters, arrive together and a
    worker keeps the same adapter active across them."""
    if not job_ids:
        return
    with ctx.db.begin() as s:
        s.execute(update(records.Job).where(records.Job.id.in_(job_ids)).values(queued_at=records._now()))
        jobs = s.execute(select(records.Job.id, records.Job.placement)
                         .where(records.Job.id.in_(job_ids)).order_by(records.Job.position)).all()
    app = broker(ctx)
    with app.producer_or_acquire() as producer:
        for job_id, name in jobs:
            app.send_task(TASK, args=[job_id], queue=queue_for(name), producer=producer)


def broker(ctx: Context):
    """A Celery client of the configured broker that knows the adgen queues (sending only)."""
    from celery import Celery
    from kombu import Exchange, Queue

    app = Celery("adgen", broker=ctx.settings.broker_url, set_as_current=False)
    app.conf.task_queues = [Queue(q, Exchange(q), routing_key=q) for q in QUEUES]
    return app
