"""The approval gate: approve, reject and edit creatives, each decision recorded with its reviewer.

A creative can be approved only while its copy passes its placement's checks, so nothing that
breaks a platform rule reaches an export. An edit re-renders the creative from its stored
background and re-checks it; the review row keeps the copy before and after. A swap does the same
with one of the candidate copies best-of-N did not choose (its job's `alternatives`).

Every action checks what it acts on. A creative's `version` rises with each change, and an update
made from an older version fails, so of an edit and an approval racing on one creative exactly one
wins and the other is told the creative changed since it was opened; a caller that showed the
creative to a person passes the version it showed (`seen`), and an action on a newer one is refused.
"""

import io
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from adgen import records
from adgen.compliance import check_copy, invisible_chars
from adgen.context import Context, campaign_logo, campaign_spec
from adgen.lineage import Lineage
from adgen.pipeline import store_layouts
from adgen.platforms import placement
from adgen.product_shot import shot_of


class ReviewError(ValueError):
    """A review action that cannot be done; the message names the creative."""


def changed(creative: str) -> str:
    return f"creative {creative} changed since you opened it (another review, or its job, came first); reload it and try again"


@contextmanager
def one_winner(creative: str) -> Iterator[None]:
    """Turn a lost race on a creative's version into the reviewer's message."""
    try:
        yield
    except StaleDataError:
        raise ReviewError(changed(creative)) from None


def check_seen(row: records.Creative, seen: int | None) -> None:
    """Refuse to act on a creative that changed since the caller showed it (version `seen`)."""
    if seen is not None and row.version != seen:
        raise ReviewError(changed(row.id))


def hold(s, row: records.Creative) -> None:
    """Raise the creative's version now, in this transaction: whoever changes it meanwhile waits for
    this transaction and then finds a newer version (used before the slow part of an edit, so a
    racing approval can never approve copy whose image is being replaced)."""
    row.updated_at = records._now()
    s.flush()


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


def approve(ctx: Context, campaign_id: str, creative_ids: list[str] | None, reviewer: str,
            seen: dict[str, int] | None = None) -> int:
    """Approve the named creatives (None: every pending one); returns how many were pending and are
    now approved (approving an approved one changes nothing). All or nothing: if any was rejected
    (regenerated), changed since the version in `seen`, or fails its checks, nothing is approved and
    the error names it."""
    with one_winner(creative_ids[0] if creative_ids and len(creative_ids) == 1 else "of these"), ctx.db.begin() as s:
        rows = _creatives(s, campaign_id, creative_ids)
        if creative_ids is None:
            rows = [r for r in rows if r.status == "pending"]
        for row in rows:
            check_seen(row, (seen or {}).get(row.id))
            if row.status == "rejected":
                raise ReviewError(f"creative {row.id} is rejected, no longer pending; only a pending creative can be approved")
            if not row.compliance["ok"]:
                raise ReviewError(f"creative {row.id} fails its checks ({row.compliance['issues'][0]}); edit or reject it")
        rows = [r for r in rows if r.status == "pending"]
        for row in rows:
            row.status = "approved"
            s.add(records.Review(creative_id=row.id, action="approve", reviewer=reviewer))
        return len(rows)


def reject(ctx: Context, campaign_id: str, creative_ids: list[str] | None, reviewer: str, reason: str,
           seen: dict[str, int] | None = None) -> int:
    """Reject the named creatives (None: every pending one) with a reason; refused for one that
    changed since the version in `seen`."""
    if not reason.strip():
        raise ReviewError("a rejection needs a reason")
    with one_winner(creative_ids[0] if creative_ids and len(creative_ids) == 1 else "of these"), ctx.db.begin() as s:
        rows = _creatives(s, campaign_id, creative_ids)
        if creative_ids is None:
            rows = [r for r in rows if r.status == "pending"]
        for row in rows:
            check_seen(row, (seen or {}).get(row.id))
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


def edit(ctx: Context, creative_id: str, field: str, index: int, text: str, reviewer: str,
         seen: int | None = None) -> dict:
    """Replace one text of a creative, re-render it and re-check it; returns the new compliance.
    The creative goes back to pending: an edit needs a fresh approval. Refused when the creative
    changed since version `seen`, or when another change wins the race."""
    with one_winner(creative_id), ctx.db.begin() as s:
        row = s.get(records.Creative, creative_id)
        if row is None:
            raise ReviewError(f"no creative {creative_id!r}")
        check_seen(row, seen)
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
        hold(s, row)
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


def swap(ctx: Context, creative_id: str, alternative: int, reviewer: str, seen: int | None = None) -> dict:
    """Put the job's unchosen candidate number `alternative` in place of the creative's copy: the
    creative is re-rendered, re-checked and back to pending (it needs a new approval), takes the
    candidate's scores, and its old copy with its scores becomes that alternative, so nothing is
    lost and a second swap undoes the first. Returns the new compliance."""
    with one_winner(creative_id), ctx.db.begin() as s:
        row = s.get(records.Creative, creative_id)
        if row is None:
            raise ReviewError(f"no creative {creative_id!r}")
        check_seen(row, seen)
        job = s.get(records.Job, row.job_id)
        pool = [dict(a) for a in job.alternatives or []]
        if not 0 <= alternative < len(pool):
            raise ReviewError(f"creative {creative_id} has {len(pool)} alternatives; alternative must be 0..{len(pool) - 1}"
                              if pool else f"creative {creative_id} has no alternatives (its campaign wrote one candidate)")
        chosen, before = pool[alternative], {k: list(v) for k, v in row.copy.items()}
        hold(s, row)
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
