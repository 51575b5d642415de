"""The approval gate: approve, reject and edit creatives, each decision recorded with its reviewer.

A creative can be approved only while its copy passes its placement's checks, so nothing that
breaks a platform rule reaches an export. An edit re-renders the creative from its stored
background and re-checks it; the review row keeps the copy before and after. A swap does the same
with one of the candidate copies best-of-N did not choose (its job's `alternatives`).
"""

import io

from PIL import Image
from sqlalchemy import select

from adgen import records
from adgen.compliance import check_copy, invisible_chars
from adgen.context import Context, campaign_logo, campaign_spec
from adgen.lineage import Lineage
from adgen.pipeline import store_layouts
from adgen.platforms import placement
from adgen.product_shot import shot_of


class ReviewError(ValueError):
    """A review action that cannot be done; the message names the creative."""


def _creatives(s, campaign_id: str, creative_ids: list[str] | None) -> list[records.Creative]:
    if s.get(records.Campaign, campaign_id) is None:
        raise ReviewError(f"no campaign {campaign_id!r}")
    rows = s.scalars(select(records.Creative).where(records.Creative.campaign_id == campaign_id).order_by(records.Creative.id)).all()
    if creative_ids is None:
        return list(rows)
    by_id = {r.id: r for r in rows}
    missing = [c for c in creative_ids if c not in by_id]
    if missing:
        raise ReviewError(f"creative {missing[0]!r} is not in campaign {campaign_id}")
    return [by_id[c] for c in creative_ids]


def approve(ctx: Context, campaign_id: str, creative_ids: list[str] | None, reviewer: str) -> int:
    """Approve the named creatives (None: every pending one). All or nothing: if any fails its
    checks, nothing is approved and the error names it."""
    with ctx.db.begin() as s:
        rows = _creatives(s, campaign_id, creative_ids)
        if creative_ids is None:
            rows = [r for r in rows if r.status == "pending"]
        for row in rows:
            if not row.compliance["ok"]:
                raise ReviewError(f"creative {row.id} fails its checks ({row.compliance['issues'][0]}); edit or reject it")
        for row in rows:
            row.status = "approved"
            s.add(records.Review(creative_id=row.id, action="approve", reviewer=reviewer))
        return len(rows)


def reject(ctx: Context, campaign_id: str, creative_ids: list[str] | None, reviewer: str, reason: str) -> int:
    if not reason.strip():
        raise ReviewError("a rejection needs a reason")
    with ctx.db.begin() as s:
        rows = _creatives(s, campaign_id, creative_ids)
        if creative_ids is None:
            rows = [r for r in rows if r.status == "pending"]
        for row in rows:
            row.status = "rejected"
            s.add(records.Review(creative_id=row.id, action="reject", reviewer=reviewer, reason=reason))
        return len(rows)


def _check_edit(text: str, field) -> None:
    """An edit is what a reviewer typed: refused with invisible characters (which would hide a banned
    word), and capped at twice the field's limit, so a pasted essay never ties up a render."""
    if hidden := invisible_chars(text):
        raise ReviewError(f"{field.name}: the text holds an invisible or control character ({hidden[0]}); retype it")
    cap = 2 * (field.max or 500)
    if len(text) > cap:
        raise ReviewError(f"{field.name}: {len(text)} characters; an edit may have at most {cap} "
                          f"(twice the field's limit of {field.max or 500})")


def edit(ctx: Context, creative_id: str, field: str, index: int, text: str, reviewer: str) -> dict:
    """Replace one text of a creative, re-render it and re-check it; returns the new compliance.
    The creative goes back to pending: an edit needs a fresh approval."""
    with ctx.db.begin() as s:
        row = s.get(records.Creative, creative_id)
        if row is None:
            raise ReviewError(f"no creative {creative_id!r}")
        place = placement(row.placement)
        if field not in place.fields:
            raise ReviewError(f"{field!r} is not a field of {row.placement}; fields: {', '.join(place.fields)}")
        texts = {k: list(v) for k, v in row.copy.items()}
        values = texts.setdefault(field, [])
        if not 0 <= index <= len(values):
            raise ReviewError(f"{field} has {len(values)} texts; index must be 0..{len(values)}")
        _check_edit(text, place.fields[field])
        before = {k: list(v) for k, v in row.copy.items()}
        if index == len(values):
            values.append(text.strip())
        else:
            values[index] = text.strip()
        compliance = _rerender(ctx, s, row, texts)
        s.add(records.Review(creative_id=row.id, action="edit", reviewer=reviewer, before=before, after=texts))
        return compliance


def alternatives(ctx: Context, creative_id: str) -> list[dict]:
    """The candidate copies best-of-N did not choose for this creative's job ({"copy", "scores",
    "fixes"} each); index i is what `swap` takes."""
    with ctx.db() as s:
        row = s.get(records.Creative, creative_id)
        if row is None:
            raise ReviewError(f"no creative {creative_id!r}")
        return list(s.get(records.Job, row.job_id).alternatives or [])


def swap(ctx: Context, creative_id: str, alternative: int, reviewer: str) -> dict:
    """Put the job's unchosen candidate number `alternative` in place of the creative's copy: the
    creative is re-rendered, re-checked and back to pending (it needs a new approval), takes the
    candidate's scores, and its old copy with its scores becomes that alternative, so nothing is
    lost and a second swap undoes the first. Returns the new compliance."""
    with ctx.db.begin() as s:
        row = s.get(records.Creative, creative_id)
        if row is None:
            raise ReviewError(f"no creative {creative_id!r}")
        job = s.get(records.Job, row.job_id)
        pool = [dict(a) for a in job.alternatives or []]
        if not 0 <= alternative < len(pool):
            raise ReviewError(f"creative {creative_id} has {len(pool)} alternatives; alternative must be 0..{len(pool) - 1}"
                              if pool else f"creative {creative_id} has no alternatives (its campaign wrote one candidate)")
        chosen, before = pool[alternative], {k: list(v) for k, v in row.copy.items()}
        pool[alternative] = {"copy": before, "scores": row.scores, "fixes": []}
        compliance = _rerender(ctx, s, row, {k: list(v) for k, v in chosen["copy"].items()})
        row.scores, job.alternatives = chosen["scores"], pool
        s.add(records.Review(creative_id=row.id, action="swap", reviewer=reviewer, before=before, after=row.copy))
        return compliance


def _rerender(ctx: Context, s, row: records.Creative, texts: dict[str, list[str]]) -> dict:
    """Give a creative new copy: re-check it, lay its image out again from the stored background
    (and product photo), and set it back to pending; returns the new compliance."""
    place = placement(row.placement)
    campaign = s.get(records.Campaign, row.campaign_id)
    spec = campaign_spec(campaign)
    language = spec.language_of(row.audience)
    compliance = check_copy(texts, place, spec.brand.banned_terms, spec.brand.name, language=language,
                            keep=(row.product,))
    if row.background_key:
        background = Image.open(io.BytesIO(ctx.storage.get(row.background_key)))
        _, logo = campaign_logo(campaign, ctx)
        product = shot_of(Lineage.of(row.lineage), ctx)
        row.other_sizes = store_layouts(ctx, row.image_key, texts, place, spec, background, logo, product=product,
                                        language=language)
    row.copy, row.compliance, row.status = texts, compliance, "pending"
    return compliance
