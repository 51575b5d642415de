"""How one job's creatives are made: copy -> images -> layout -> checks -> creative rows.

`make_creatives` runs the models for a job (the text model writes every field of every variant, best
of the spec's `candidates` as the judge scores it, adgen.score; the image model makes one background
per variant in one batched call) and returns the rest of the job as a function: lay out each creative
(`layout`), store it, check its copy and record it with its scores and lineage, keep the candidates
not chosen on the job, and mark the job done in the same transaction. A run that no longer holds
its job (the reconciler gave it to another run) stores nothing, and no run ever overwrites a creative
a reviewer has touched (approved, rejected, edited, swapped). `adgen.jobs` calls it for
every job, in process or on a worker; `rerender` and review edits (`adgen.review`) lay out through
the same `layout`, so a creative made again from its lineage is the same bytes.
"""

import io
from collections.abc import Callable

from PIL import Image
from sqlalchemy import select

from adgen import __version__, records
from adgen.compliance import check_copy
from adgen.context import Context, campaign_logo, campaign_product_photo, campaign_spec
from adgen.languages import LanguageError, cta_label
from adgen.layout import plan_layout
from adgen.lineage import Generation, Lineage, ModelUsed, Prompts, Scores
from adgen.platforms import Placement, placement, registry
from adgen.product_box import product_visible
from adgen.product_shot import Shot, make_scenes, shot_of
from adgen.prompts import NEGATIVE_IMAGE_PROMPT, copy_messages, image_prompt
from adgen.render import encode_png, render_creative
from adgen.resident import image_model_for, inpaint_model_for, text_model_for
from adgen.scene import fit_prompt, paste_product
from adgen.spec import CampaignSpec

# Model code (torch, transformers, diffusers) is imported inside the functions that run models, so
# the review, report and export commands start in a fraction of a second.


def image_seeds(job: records.Job) -> list[int]:
    return [(job.seed + v) % 2**31 for v in range(job.variants)]


def _render_args(texts: dict[str, list[str]], placement_: Placement, spec: CampaignSpec, logo: bytes | None,
                 size: tuple[int, int] | None, language: str) -> dict:
    image = placement_.image
    width, height = size or (image.width, image.height)
    return dict(
        width=width, height=height, headline=placement_.first_text("headline", texts),
        cta=drawn_cta(placement_.first_text("cta", texts), language), colors=spec.brand.colors,
        logo=Image.open(io.BytesIO(logo)) if logo else None, brand_name=spec.brand.name,
        safe_top=image.safe_top, safe_bottom=image.safe_bottom, language=language, brand_fonts=spec.brand.faces(),
    )


def layout(texts: dict[str, list[str]], placement_: Placement, spec: CampaignSpec, background: Image.Image,
           logo: bytes | None, size: tuple[int, int] | None = None, product: Shot | None = None, *,
           language: str = "en") -> bytes:
    """The finished creative for one placement as PNG bytes: layout by the renderer, never by the model.
    `size` is one of the placement's other sizes (its `also` list); default the primary size.
    `product` (a product photo's cut-out and lineage) is pasted back pixel-exact at its box.
    `language` is the audience's: the button shows the call to action in it (the copy keeps the
    platform's English value, which is what exports send)."""
    args = _render_args(texts, placement_, spec, logo, size, language)
    if product is None:
        return encode_png(render_creative(background, **args))
    background, box = product.for_layout(plan_layout(**args), placement_.image, background)
    creative, _ = paste_product(render_creative(background, **args), product.cutout, box)
    return encode_png(creative)


def store_layouts(ctx: Context, image_key: str, texts: dict[str, list[str]], placement_: Placement, spec: CampaignSpec,
                  background: Image.Image, logo: bytes | None, product: Shot | None = None,
                  language: str = "en") -> dict[str, str] | None:
    """Lay out the creative at every size of its placement from the one background and store each:
    the primary at `image_key`, each other size beside it. Returns the other sizes' keys by "WxH"
    (a creative's `other_sizes`), None when the placement has no other size. The keys depend only
    on `image_key`, so a job run twice, or an edit, overwrites rather than adds."""
    # A product photo's other sizes have their scenes painted for their own layouts; a job paints them
    # with its models (`paint_sizes`), so the storing thread, which runs beside the next job's models,
    # only lays out.
    others = placement_.sizes[1:]
    ctx.storage.put(image_key, layout(texts, placement_, spec, background, logo, product=product, language=language), "image/png")
    keys = {}
    for width, height in others:
        keys[f"{width}x{height}"] = key = f"{image_key.removesuffix('.png')}-{width}x{height}.png"
        ctx.storage.put(key, layout(texts, placement_, spec, background, logo, (width, height), product,
                                      language=language), "image/png")
    return keys or None


def paint_sizes(shot: Shot, texts: dict[str, list[str]], placement_: Placement, spec: CampaignSpec,
                logo: bytes | None, language: str) -> None:
    """Paint the scene of each of the placement's other sizes around the product (kept in the shot),
    with the models of the job that made it."""
    for size in placement_.sizes[1:]:
        shot.for_layout(plan_layout(**_render_args(texts, placement_, spec, logo, size, language)), placement_.image,
                        None)


def drawn_cta(cta: str, language: str) -> str:
    """The call to action as the button shows it: the platform's label in the audience's language;
    a label without a translation (written text, not a platform value) is drawn as written."""
    try:
        return cta_label(cta, language) if cta else cta
    except LanguageError:
        return cta


def make_creatives(job_id: str, ctx: Context) -> Callable[[], None]:
    """Run the models for one job; returns the rest of the job (layout, storage, checks, records) as
    a function, so a runner can do it while the models work on the next job."""
    from adgen.best_of import aim, write_best
    from adgen.image import image_settings
    from adgen.score import load_judge
    from adgen.text import MAX_ROUNDS, TEMPERATURE, TOP_P

    with ctx.db() as s:
        job = s.get(records.Job, job_id)
        attempt = job.attempts  # read just after this run claimed the job: its own attempt
        campaign = s.get(records.Campaign, job.campaign_id)
        spec = campaign_spec(campaign)
        logo_key, logo = campaign_logo(campaign, ctx)
        text_ref, image_ref = campaign.text_model, campaign.image_model
        photo = campaign_product_photo(campaign, job.product, ctx)
    product = next(p for p in spec.products if p.name == job.product)
    audience = next(a for a in spec.audiences if a.name == job.audience)
    # Copy written through edits starts as English drafts; the creative is still set and checked in
    # the audience's language, so a draft shows as failing checks until a reviewer replaces it.
    drafting = audience.model_copy(update={"language": "en"}) if spec.copy_by == "edits" else audience
    placement_ = placement(job.placement)

    # The offline default barely reads a persona it was not trained on, so it is prompted with the
    # corpus angle nearest to the audience; scores always measure against the audience as written.
    judge = load_judge(spec.models.judge)
    writes_for = drafting
    if text_ref["ref"] == "default":
        writes_for = drafting.model_copy(update={"persona": aim(judge.embed, spec.audiences)[audience.name]})
    text_prompts = {
        name: copy_messages(spec.brand, product, writes_for, placement_, f)
        for name, f in placement_.fields.items() if f.written
    }
    copies, scores, alternatives = write_best(
        text_model_for(text_ref, ctx), judge, brand=spec.brand, product=product, audience=audience,
        audiences=spec.audiences, placement=placement_, variants=job.variants, candidates=spec.candidates,
        seed=job.seed, writes_for=writes_for,
    )
    backgrounds: list[Image.Image | None] = [None] * job.variants
    prompt = image_prompt(spec.brand, product, audience) if placement_.image else None
    bucket = None
    seeds = used_seeds = image_seeds(job)
    shots: list[Shot | None] = [None] * job.variants
    settings = negative = None
    # The prompt is kept within the text encoder's limit (CLIP: 77 tokens) and recorded as the model
    # sees it, so the lineage never claims words the model did not read.
    if placement_.image and photo:
        # The scene is painted around the product, placed where this variant's layout leaves room.
        inpaint_ref = photo[1]
        inpaint_pipe = inpaint_model_for(inpaint_ref, ctx).pipe
        prompt = fit_prompt(inpaint_pipe, prompt)
        settings = image_settings(type(inpaint_pipe).__name__, inpaint_ref["ref"], field="models.inpaint")
        negative = NEGATIVE_IMAGE_PROMPT if settings.negative else None
        layouts = [plan_layout(**_render_args(c.texts, placement_, spec, logo, None, audience.language)) for c in copies]
        backgrounds, shots = make_scenes(photo, layouts, placement_.image, ctx, prompt=prompt, negative=negative,
                                         seeds=seeds, steps=settings.steps, guidance=settings.guidance)
        for copy, shot in zip(copies, shots, strict=True):
            paint_sizes(shot, copy.texts, placement_, spec, logo, audience.language)
    elif placement_.image:
        image_model = image_model_for(image_ref, ctx)
        prompt = fit_prompt(image_model.pipe, prompt)
        settings = image_settings(image_model.family, image_ref["ref"], **spec.image_settings.model_dump())
        negative = NEGATIVE_IMAGE_PROMPT if settings.negative else None
        bucket = image_model.bucket(placement_.image.width, placement_.image.height)
        generated = image_model.generate(prompt, negative=negative, seeds=seeds, size=bucket,
                                         steps=settings.steps, guidance=settings.guidance)
        backgrounds, used_seeds = generated.images, generated.seeds

    lineages = [Lineage(
        campaign=job.campaign_id, job=job.id, variant=v, product=product.name, audience=audience.name,
        placement=placement_.name, registry_version=registry().version, seed=job.seed, image_seed=used_seeds[v],
        image_batch_seeds=seeds,
        prompt=Prompts(text=text_prompts, image=prompt, negative=negative),
        text_model=ModelUsed(**text_ref), image_model=ModelUsed(**image_ref) if placement_.image else None,
        text_adapter=text_ref.get("adapter"), image_adapter=image_ref.get("adapter") if placement_.image else None,
        generation=Generation(temperature=TEMPERATURE, top_p=TOP_P, max_rounds=MAX_ROUNDS,
                              image_steps=settings.steps if settings else 0, guidance=settings.guidance if settings else 0.0,
                              image_family=settings.family if settings else None,
                              bucket=shots[v].lineage.canvas if shots[v] else bucket,
                              candidates=spec.candidates, judge=judge.name),
        logo_key=logo_key, fixes=copy.fixes, adgen_version=__version__, replaces=job.replaces,
        scores=Scores(**scores[v]),
        product_photo=shots[v].lineage if shots[v] else None,
    ) for v, copy in enumerate(copies)]

    def untouchable(s) -> set[int] | None:
        """None when this run no longer holds the job; else the variants a reviewer has touched."""
        held = s.get(records.Job, job_id, populate_existing=True)
        if held.status != "running" or held.attempts != attempt:
            return None
        made = {c.id: c for c in s.scalars(select(records.Creative).where(records.Creative.job_id == job_id))}
        reviewed = set(s.scalars(select(records.Review.creative_id).where(records.Review.creative_id.in_(made))))
        return {c.variant for c in made.values() if c.status != "pending" or c.id in reviewed}

    def store() -> None:
        """Lay out, store, check and record every creative of the job, then mark it done."""
        with ctx.db() as s:
            keep = untouchable(s)
        if keep is None:
            return
        rows = []
        for v, (copy, background) in enumerate(zip(copies, backgrounds, strict=True)):
            if v in keep:
                continue
            base = f"campaigns/{job.campaign_id}/{job.id}/{v}"
            image_key = background_key = other_sizes = None
            if background is not None:
                background_key, image_key = f"{base}-background.png", f"{base}.png"
                buf = io.BytesIO()
                background.save(buf, format="PNG")
                ctx.storage.put(background_key, buf.getvalue(), "image/png")
                other_sizes = store_layouts(ctx, image_key, copy.texts, placement_, spec, background, logo,
                                            product=shots[v], language=audience.language)
            compliance = check_copy(copy.texts, placement_, spec.brand.banned_terms, spec.brand.name,
                                    language=audience.language, keep=(product.name,))
            if shots[v] is not None:
                check_product(compliance, shots[v], plan_layout(**_render_args(copy.texts, placement_, spec, logo, None,
                                                                                   audience.language)),
                              placement_)
            rows.append(records.Creative(
                id=f"{job.id}-{v}", campaign_id=job.campaign_id, job_id=job.id, variant=v, product=product.name,
                audience=audience.name, placement=placement_.name, status="pending", copy=copy.texts,
                compliance=compliance, scores=scores[v], lineage=lineages[v].record(), image_key=image_key,
                background_key=background_key, other_sizes=other_sizes,
                width=placement_.image.width if placement_.image else None,
                height=placement_.image.height if placement_.image else None,
            ))
        # The job's creatives and its "done" commit together: a crash before this line leaves the job
        # to run again, never half recorded; merge() makes a second run overwrite, not duplicate.
        with ctx.db.begin() as s:
            keep = untouchable(s)
            if keep is None:
                return
            for row in rows:
                if row.variant not in keep:
                    s.merge(row)
            done = s.get(records.Job, job_id)
            done.status, done.finished_at, done.alternatives = "done", records._now(), alternatives

    return store


def rerender(ctx: Context, creative_id: str) -> tuple[bytes, bool]:
    """Make a creative again from its lineage alone (model, adapter, prompt and negative prompt,
    seeds, bucket, steps, guidance, copy, logo) and say whether the bytes equal the stored ones, at
    the primary size and every stored other size."""
    with ctx.db() as s:
        row = s.get(records.Creative, creative_id)
        if row is None:
            raise LookupError(f"no creative {creative_id!r}")
        spec = campaign_spec(s.get(records.Campaign, row.campaign_id))
    if not row.image_key:
        raise LookupError(f"creative {creative_id} is text only ({row.placement}); nothing to render")
    lineage = Lineage.of(row.lineage)
    gen = lineage.generation
    shot = shot_of(lineage, ctx)
    if shot is not None:
        background = shot.scene()
    else:
        background = image_model_for(lineage.image_model.model_dump(), ctx).generate(
            lineage.prompt.image, negative=lineage.prompt.negative, seeds=lineage.image_batch_seeds, size=gen.bucket,
            steps=gen.image_steps, guidance=gen.guidance,
        ).images[lineage.variant]
    logo = ctx.storage.get(lineage.logo_key) if lineage.logo_key else None
    place, language = placement(row.placement), spec.language_of(row.audience)
    data = layout(row.copy, place, spec, background, logo, product=shot, language=language)
    same = data == ctx.storage.get(row.image_key)
    for size, key in (row.other_sizes or {}).items():
        width, height = map(int, size.split("x"))
        same = same and layout(row.copy, place, spec, background, logo, (width, height), product=shot,
                               language=language) == ctx.storage.get(key)
    return data, same


def check_product(compliance: dict, shot: Shot, layout_, placement_: Placement) -> None:
    """Add to a creative's checks whatever keeps its product from being seen (adgen.product_box)."""
    problems = product_visible(shot.placed, layout_, safe_top=placement_.image.safe_top,
                               safe_bottom=placement_.image.safe_bottom)
    if problems:
        compliance["issues"] += [f"product: {p}" for p in problems]
        compliance["ok"] = False
