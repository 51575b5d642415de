"""From a campaign spec to creatives: the campaign expands into jobs (product x audience x
placement), and each job writes copy, makes images, lays out and checks its creatives.

`create_campaign` validates everything that can fail before it writes anything. `run_job` is the
unit of work: it takes a job id, loads what it needs from the records, and is safe to run again (a
job already done is left alone; creative rows and storage keys are deterministic). The in-process
`run_campaign` loops over jobs; the Celery workers call the same `run_job`.
"""

import hashlib
import io
import os
import socket
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from adgen import __version__, records
from adgen.compliance import check_copy
from adgen.platforms import Placement, placement, registry
from adgen.prompts import NEGATIVE_IMAGE_PROMPT, copy_messages, image_prompt
from adgen.render import encode_png, render_creative
from adgen.settings import Settings
from adgen.spec import CampaignSpec, SpecError
from adgen.storage import Storage, StorageError, open_storage

if TYPE_CHECKING:
    from adgen.image import ImageModel
    from adgen.text import TextModel

# Model code (torch, transformers, diffusers) is imported inside the functions that run models, so
# the review, report and export commands start in a fraction of a second.

IMAGE_STEPS, GUIDANCE = 20, 6.0
MAX_LOGO_BYTES = 5 * 1024 * 1024


@dataclass
class Context:
    """What running a job needs besides the job id: settings, the records and the storage. Both are
    opened on first use, so validating input touches neither."""

    settings: Settings

    @cached_property
    def db(self) -> sessionmaker[Session]:
        return records.open_db(self.settings)

    @cached_property
    def storage(self) -> Storage:
        return open_storage(self.settings)


def job_seed(seed: int, product: str, audience: str, placement_name: str) -> int:
    """A seed per cell that does not depend on the order of products, audiences or placements."""
    digest = hashlib.sha256(f"{seed}:{product}:{audience}:{placement_name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31  # fits a signed 32-bit column on every database


def _read_logo(spec: CampaignSpec) -> bytes | None:
    if spec.brand.logo is None:
        return None
    data = spec.brand.logo.read_bytes()
    if len(data) > MAX_LOGO_BYTES:
        raise SpecError(f"brand.logo: {spec.brand.logo} is over {MAX_LOGO_BYTES // 1024 // 1024} MB")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            if im.format not in ("PNG", "JPEG", "WEBP"):
                raise SpecError(f"brand.logo: {spec.brand.logo} is {im.format}; use PNG, JPEG or WebP")
    except SpecError:
        raise
    except Exception:
        raise SpecError(f"brand.logo: {spec.brand.logo} is not an image; use PNG, JPEG or WebP") from None
    return data


def create_campaign(spec: CampaignSpec, ctx: Context, progress=None) -> str:
    """Record a campaign and its jobs; returns the campaign id. Validates models and the logo first,
    so bad input writes nothing."""

    from adgen.models import resolve_model

    text_ref = vars(resolve_model(spec.models.text, "text", ctx.settings, progress=progress))
    image_ref = vars(resolve_model(spec.models.image, "image", ctx.settings, progress=progress))
    for kind, model in (("text", text_ref), ("image", image_ref)):
        if getattr(spec.adapters, kind):
            model["adapter"] = resolve_adapter(getattr(spec.adapters, kind), kind, model, ctx, spec.brand.name)
    logo = _read_logo(spec)

    logo_key = None
    if logo is not None:
        logo_key = f"brands/logos/{hashlib.sha256(logo).hexdigest()[:16]}.png"
        ctx.storage.put(logo_key, logo, "image/png")
    with ctx.db.begin() as s:
        brand = s.scalar(select(records.Brand).where(records.Brand.name == spec.brand.name))
        if brand is None:
            brand = records.Brand(name=spec.brand.name)
            s.add(brand)
        brand.voice, brand.banned_terms, brand.colors = spec.brand.voice, spec.brand.banned_terms, spec.brand.colors
        brand.logo_key = logo_key or brand.logo_key
        s.flush()
        campaign = records.Campaign(
            name=spec.campaign, brand_id=brand.id, spec={**spec.model_dump(mode="json"), "logo_key": logo_key},
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


def _activate(model, ref: dict, ctx: Context):
    """Switch the resident model to the campaign's adapter (or none). An adapter already loaded is
    switched to by name; a new one is fetched from storage into the local cache first."""
    from adgen.adapters import AdapterError, fetch

    adapter = ref.get("adapter")
    if adapter is None:
        model.use_adapter(None)
        return model
    if adapter["base"]["hash"] != ref["hash"]:
        raise AdapterError(f"{adapter['ref']} was trained on base hash {adapter['base']['hash']}, not {ref['hash']}")
    name = f"adapter_{adapter['hash']}"
    path = None if name in model.adapters else fetch(ctx.storage, adapter, ctx.settings.home / "cache" / "adapters")
    model.use_adapter(name, path, ref=adapter["ref"])
    return model


def text_model_for(ref: dict, ctx: Context) -> "TextModel":
    """The resident text model for a campaign's model ref, with its adapter (if any) active. The
    runner and the workers both go through here."""
    from adgen.models import cached, pick_device, pick_dtype
    from adgen.text import TextModel

    device = pick_device(ctx.settings)
    model = cached(("text", ref["path"], str(device)), lambda: TextModel(ref["path"], device, pick_dtype(device)))
    return _activate(model, ref, ctx)


def image_model_for(ref: dict, ctx: Context) -> "ImageModel":
    """The resident image pipeline for a campaign's model ref, with its adapter (if any) active."""
    from adgen.image import ImageModel
    from adgen.models import cached, pick_device, pick_dtype

    device = pick_device(ctx.settings)
    model = cached(("image", ref["path"], str(device)), lambda: ImageModel(ref["path"], device, pick_dtype(device)))
    return _activate(model, ref, ctx)


def _claim(job_id: str, ctx: Context) -> bool:
    """Compare-and-set pending/failed/running -> running; False when the job is done, cancelled or
    missing. A running job is taken over: it is seen again only when its worker died (the broker
    redelivers it) or the reconciler gave up on it, and its effects are idempotent either way."""
    with ctx.db.begin() as s:
        result = s.execute(
            update(records.Job)
            .where(records.Job.id == job_id, records.Job.status.in_(("pending", "failed", "running")))
            .values(status="running", attempts=records.Job.attempts + 1, started_at=records._now(), error=None,
                    claimed_by=f"{socket.gethostname()}/{os.getpid()}")
        )
        return result.rowcount == 1


def _headline(placement_: Placement, texts: dict[str, list[str]]) -> str:
    for name in ("headline", "card_title", "long_headline"):
        if texts.get(name):
            return texts[name][0]
    return ""


def _cta(placement_: Placement, texts: dict[str, list[str]]) -> str:
    cta = placement_.cta_field
    return texts[cta.name][0] if cta and texts.get(cta.name) else ""


def render(creative_copy: dict, placement_: Placement, spec: CampaignSpec, background: Image.Image, logo: bytes | None) -> bytes:
    """The finished creative for one placement: layout by the renderer, never by the model."""
    image = placement_.image
    logo_image = Image.open(io.BytesIO(logo)) if logo else None
    canvas = render_creative(
        background, width=image.width, height=image.height, headline=_headline(placement_, creative_copy),
        cta=_cta(placement_, creative_copy), colors=spec.brand.colors, logo=logo_image, brand_name=spec.brand.name,
        safe_top=image.safe_top, safe_bottom=image.safe_bottom,
    )
    return encode_png(canvas)


def image_seeds(job: records.Job) -> list[int]:
    return [(job.seed + v) % 2**31 for v in range(job.variants)]


def run_job(job_id: str, ctx: Context, retry: bool = False) -> str:
    """Generate, render, check and record every creative of one job. Returns the job's final status.
    Safe to call again for the same job: a finished job is skipped, and rows and keys are overwritten,
    never duplicated. With `retry`, a transient error (storage, database, network) puts the job back
    to pending for the caller to try again; any other error, or any error without `retry`, fails it."""
    if not _claim(job_id, ctx):
        with ctx.db() as s:
            job = s.get(records.Job, job_id)
            if job is None:
                raise LookupError(f"no job {job_id!r}")
            return job.status
    try:
        _generate(job_id, ctx)()
    except Exception as e:
        if retry and is_transient(e):
            _release(job_id, ctx, e)
        else:
            _fail(job_id, ctx, e)
        raise
    return "done"


def is_transient(error: Exception) -> bool:
    """Errors worth another try: an unreachable storage or database, a dropped connection. A missing
    file or model folder is not one of them."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    return isinstance(error, StorageError | ConnectionError | TimeoutError | OperationalError | InterfaceError)


def _fail(job_id: str, ctx: Context, error: Exception | str) -> None:
    """Mark a running job failed with its reason. Only a job still running changes, so a late failure
    of a duplicate run never overwrites a job that is done or was cancelled."""
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    with ctx.db.begin() as s:
        s.execute(
            update(records.Job).where(records.Job.id == job_id, records.Job.status == "running")
            .values(status="failed", error=reason, finished_at=records._now())
        )


def _release(job_id: str, ctx: Context, error: Exception) -> None:
    """Put a running job back to pending (to be tried again), keeping the reason it stopped."""
    with ctx.db.begin() as s:
        s.execute(
            update(records.Job).where(records.Job.id == job_id, records.Job.status == "running")
            .values(status="pending", error=f"will retry after {type(error).__name__}: {error}",
                    queued_at=records._now())
        )


def _generate(job_id: str, ctx: Context) -> Callable[[], None]:
    """Run the models for one job; returns the rest of the job (layout, storage, records) as a
    function, so a runner can do it while the models work on the next job."""
    from adgen.prompts import aim
    from adgen.score import load_judge, write_best
    from adgen.text import MAX_ROUNDS, TEMPERATURE, TOP_P

    with ctx.db() as s:
        job = s.get(records.Job, job_id)
        campaign = s.get(records.Campaign, job.campaign_id)
        spec = CampaignSpec.model_validate({k: v for k, v in campaign.spec.items() if k != "logo_key"})
        logo_key = campaign.spec.get("logo_key")
        text_ref, image_ref = campaign.text_model, campaign.image_model
    product = next(p for p in spec.products if p.name == job.product)
    audience = next(a for a in spec.audiences if a.name == job.audience)
    placement_ = placement(job.placement)

    text_model = text_model_for(text_ref, ctx)
    # Scoring hook (adgen.score): aim the offline default at an angle, write best-of-N, score the copy.
    judge = load_judge(spec.models.judge)
    writes_for = audience
    if text_ref["ref"] == "default":
        writes_for = audience.model_copy(update={"persona": aim(judge.embed, spec.audiences)[audience.name]})
    copies, scores, alternatives = write_best(
        text_model, judge, brand=spec.brand, product=product, audience=audience, audiences=spec.audiences,
        placement=placement_, variants=job.variants, candidates=spec.candidates, seed=job.seed, writes_for=writes_for,
    )
    backgrounds: list[Image.Image | None] = [None] * job.variants
    prompt = image_prompt(spec.brand, product, audience)
    bucket = None
    if placement_.image:
        image_model = image_model_for(image_ref, ctx)
        bucket = image_model.bucket(placement_.image.width, placement_.image.height)
        backgrounds = image_model.generate(
            prompt, seeds=image_seeds(job), width=placement_.image.width, height=placement_.image.height,
            steps=IMAGE_STEPS, guidance=GUIDANCE,
        )
    logo = ctx.storage.get(logo_key) if logo_key else None

    text_prompts = {
        name: copy_messages(spec.brand, product, writes_for, placement_, f)
        for name, f in placement_.fields.items() if f.written
    }
    return lambda: _finish(ctx, job_id, job, spec, product, audience, placement_, copies, backgrounds, logo, {
        "text_prompts": text_prompts, "image_prompt": prompt, "bucket": bucket, "text_ref": text_ref,
        "image_ref": image_ref, "logo_key": logo_key,
        "text_settings": {"temperature": TEMPERATURE, "top_p": TOP_P, "max_rounds": MAX_ROUNDS,
                          "candidates": spec.candidates, "judge": judge.name},
        "scores": scores, "alternatives": alternatives,
    })


def _finish(ctx, job_id, job, spec, product, audience, placement_, copies, backgrounds, logo, made) -> None:
    """Lay out, store, check and record every creative of a generated job, then mark it done."""
    text_prompts, prompt, bucket = made["text_prompts"], made["image_prompt"], made["bucket"]
    text_ref, image_ref, logo_key = made["text_ref"], made["image_ref"], made["logo_key"]
    rows = []
    for v, (copy, background) in enumerate(zip(copies, backgrounds, strict=True)):
        base = f"campaigns/{job.campaign_id}/{job.id}/{v}"
        image_key = background_key = None
        if background is not None:
            background_key, image_key = f"{base}-background.png", f"{base}.png"
            buf = io.BytesIO()
            background.save(buf, format="PNG")
            ctx.storage.put(background_key, buf.getvalue(), "image/png")
            ctx.storage.put(image_key, render(copy.texts, placement_, spec, background, logo), "image/png")
        lineage = {
            "campaign": job.campaign_id, "job": job.id, "variant": v, "product": product.name,
            "audience": audience.name, "placement": placement_.name, "registry_version": registry().version,
            "seed": job.seed, "image_seed": image_seeds(job)[v], "image_batch_seeds": image_seeds(job),
            "prompt": {"text": text_prompts, "image": prompt if placement_.image else None,
                       "negative": NEGATIVE_IMAGE_PROMPT if placement_.image else None},
            "text_model": text_ref, "image_model": image_ref if placement_.image else None,
            "text_adapter": text_ref.get("adapter"),
            "image_adapter": image_ref.get("adapter") if placement_.image else None,
            "generation": {**made["text_settings"], "image_steps": IMAGE_STEPS, "guidance": GUIDANCE, "bucket": bucket},
            "logo_key": logo_key, "fixes": copy.fixes, "scores": made["scores"][v], "adgen_version": __version__,
        }
        if job.replaces:
            lineage["replaces"] = job.replaces
        rows.append(records.Creative(
            id=f"{job.id}-{v}", campaign_id=job.campaign_id, job_id=job.id, variant=v, product=product.name,
            audience=audience.name, placement=placement_.name, status="pending", copy=copy.texts,
            compliance=check_copy(copy.texts, placement_, spec.brand.banned_terms, spec.brand.name), lineage=lineage,
            scores=made["scores"][v],
            image_key=image_key, background_key=background_key,
            width=placement_.image.width if placement_.image else None,
            height=placement_.image.height if placement_.image else None,
        ))
    # The job's creatives and its "done" commit together: a crash before this line leaves the job
    # to run again, never half recorded; merge() makes a second run overwrite, not duplicate.
    with ctx.db.begin() as s:
        for row in rows:
            s.merge(row)
        job = s.get(records.Job, job_id)
        job.status, job.finished_at, job.alternatives = "done", records._now(), made["alternatives"]


def run_campaign(campaign_id: str, ctx: Context, on_job: Callable[[records.Job, str], None] | None = None) -> dict:
    """Run every unfinished job of a campaign in this process, one after another. A failing job is
    recorded with its reason and the others still run. Returns counts by job status."""
    with ctx.db.begin() as s:
        campaign = s.get(records.Campaign, campaign_id)
        campaign.status = "running"
        jobs = [j.id for j in campaign.jobs if j.status != "done"]

    def report(job_id: str, status: str) -> None:
        if on_job:
            with ctx.db() as s:
                on_job(s.get(records.Job, job_id), status)

    def settle(job_id: str, finishing: Future) -> None:
        try:
            finishing.result()
            report(job_id, "done")
        except Exception as e:
            _fail(job_id, ctx, e)
            report(job_id, "failed")

    # Pipelined: while one thread lays out and stores job N, the models run job N+1.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="adgen-finish") as finisher:
        in_flight: tuple[str, Future] | None = None
        for job_id in jobs:
            finish = None
            if _claim(job_id, ctx):
                try:
                    finish = _generate(job_id, ctx)
                except Exception as e:
                    _fail(job_id, ctx, e)
                    report(job_id, "failed")
            else:
                with ctx.db() as s:
                    report(job_id, s.get(records.Job, job_id).status)
            if in_flight:
                settle(*in_flight)
            in_flight = (job_id, finisher.submit(finish)) if finish else None
        if in_flight:
            settle(*in_flight)
    return finish_campaign(campaign_id, ctx)


def job_counts(campaign_id: str, ctx: Context) -> dict[str, int]:
    """How many of a campaign's jobs are pending, running, done, failed or cancelled."""
    from sqlalchemy import func

    with ctx.db() as s:
        rows = s.execute(
            select(records.Job.status, func.count()).where(records.Job.campaign_id == campaign_id)
            .group_by(records.Job.status)
        )
        return dict(rows.all())


def finish_campaign(campaign_id: str, ctx: Context) -> dict:
    """Settle the campaign's status from its jobs' (done, failed, cancelled or still going)."""
    counts = job_counts(campaign_id, ctx)
    with ctx.db.begin() as s:
        campaign = s.get(records.Campaign, campaign_id)
        if not counts.get("pending") and not counts.get("running"):
            campaign.status = next((st for st in ("failed", "cancelled") if counts.get(st)), "done")
    return counts


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
    """Put a campaign's failed jobs back to pending (done and cancelled ones stay); returns their ids."""
    with ctx.db.begin() as s:
        ids = list(s.scalars(select(records.Job.id).where(
            records.Job.campaign_id == campaign_id, records.Job.status == "failed").order_by(records.Job.position)))
        s.execute(
            update(records.Job).where(records.Job.id.in_(ids), records.Job.status == "failed")
            .values(status="pending", error=None, finished_at=None, queued_at=records._now())
        )
        if ids:
            s.get(records.Campaign, campaign_id).status = "running"
        return ids


def regenerate(ctx: Context, creative_id: str, seed: int, reviewer: str) -> str:
    """Ask for one creative again with a new seed: records a one-variant job for the same product,
    audience and placement, and rejects the old creative with a reason that names its replacement
    (the new creative's lineage names the old one). Returns the job id; a runner makes it."""
    if not 0 <= seed < 2**31:
        raise SpecError(f"seed: {seed} is out of range; use 0 to {2**31 - 1}")
    with ctx.db.begin() as s:
        old = s.get(records.Creative, creative_id)
        if old is None:
            raise LookupError(f"no creative {creative_id!r}")
        campaign = s.get(records.Campaign, old.campaign_id)
        position = max(j.position for j in campaign.jobs) + 1
        job = records.Job(
            id=f"{campaign.id}-{position:03d}", campaign_id=campaign.id, position=position, product=old.product,
            audience=old.audience, placement=old.placement, variants=1, seed=seed, replaces=old.id,
        )
        s.add(job)
        if old.status != "rejected":
            old.status = "rejected"
            s.add(records.Review(creative_id=old.id, action="reject", reviewer=reviewer,
                                 reason=f"regenerated with seed {seed} as {job.id}-0"))
        campaign.status = "pending"
        return job.id


def rerender(ctx: Context, creative_id: str) -> tuple[bytes, bool]:
    """Make a creative again from its lineage alone (model, prompt, seeds, steps, copy, logo) and
    say whether the bytes equal the stored ones."""
    with ctx.db() as s:
        row = s.get(records.Creative, creative_id)
        if row is None:
            raise LookupError(f"no creative {creative_id!r}")
        campaign = s.get(records.Campaign, row.campaign_id)
        spec = CampaignSpec.model_validate({k: v for k, v in campaign.spec.items() if k != "logo_key"})
    lineage, placement_ = row.lineage, placement(row.placement)
    if not row.image_key:
        raise LookupError(f"creative {creative_id} is text only ({row.placement}); nothing to render")
    gen = lineage["generation"]
    backgrounds = image_model_for(lineage["image_model"], ctx).generate(
        lineage["prompt"]["image"], seeds=lineage["image_batch_seeds"], width=placement_.image.width,
        height=placement_.image.height, steps=gen["image_steps"], guidance=gen["guidance"],
    )
    logo = ctx.storage.get(lineage["logo_key"]) if lineage["logo_key"] else None
    data = render(row.copy, placement_, spec, backgrounds[lineage["variant"]], logo)
    return data, data == ctx.storage.get(row.image_key)
