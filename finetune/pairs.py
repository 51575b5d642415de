"""Preference pairs for a brand's text adapter: a chosen and a rejected text of the same field, for
the same product, audience and placement, so the only difference between them is the copy.

From results: within a cell, every creative whose CTR a two-proportion z-test finds significantly
higher than another's (adgen.insights) gives its text over the other's. From reviews: an approved
creative's text over a rejected one's in the same cell, and a reviewer's edit over the text it
replaced. Each pair is one JSONL row that names where it came from.
"""

import itertools
import json
from pathlib import Path

from sqlalchemy import select

from adgen import records
from adgen.adapters import names_brand
from adgen.context import Context, campaign_spec
from adgen.insights import ALPHA, cells, two_proportion_p
from adgen.platforms import placement
from finetune.data import DataError


def _written(placement_name: str) -> set[str]:
    return {n for n, f in placement(placement_name).fields.items() if f.written}


def _context(campaign: records.Campaign) -> tuple[dict, dict, dict]:
    """The brand, products and audiences of a campaign, as the prompt needs them."""
    spec = campaign_spec(campaign)
    return (spec.brand.model_dump(mode="json", include={"name", "voice", "banned_terms"}),
            {p.name: p.model_dump(mode="json", exclude_none=True) for p in spec.products},
            {a.name: a.model_dump(mode="json", exclude_none=True) for a in spec.audiences})


def _pairs(better: dict, worse: dict, cell: tuple, context: tuple, source: str, ids: tuple) -> list[dict]:
    """One pair per written field whose first text differs between the better and the worse copy."""
    brand, products, audiences = context
    product, audience, placement_name = cell
    out = []
    for field in sorted(_written(placement_name)):
        chosen, rejected = (better.get(field) or [""])[0].strip(), (worse.get(field) or [""])[0].strip()
        if chosen and rejected and chosen != rejected:
            out.append({"brand": brand, "product": products[product], "audience": audiences[audience],
                        "placement": placement_name, "field": field, "chosen": chosen, "rejected": rejected,
                        "source": source, "chosen_creative": ids[0], "rejected_creative": ids[1]})
    return out


def _campaigns(s, brand: str, ids: list[str], flag: str) -> list[records.Campaign]:
    out = []
    for cid in ids:
        campaign = s.get(records.Campaign, cid)
        if campaign is None:
            raise DataError(f"{flag}: no campaign {cid!r}; see 'adgen campaign list'")
        if not names_brand(brand, campaign.brand.name):
            raise DataError(f"{flag}: {cid} belongs to brand {campaign.brand.name!r}, not {brand!r}")
        out.append(campaign)
    return out


def result_pairs(ctx: Context, brand: str, campaign_ids: list[str]) -> list[dict]:
    """Pairs from imported results: significantly better CTR over worse, within each cell."""
    pairs = []
    with ctx.db() as s:
        campaigns = _campaigns(s, brand, campaign_ids, "--from-results")
    for campaign in campaigns:
        context = _context(campaign)
        found = cells(ctx, campaign.id)
        if not found:
            raise DataError(f"--from-results: campaign {campaign.id} has no imported results; see 'adgen results import'")
        for cell in found:
            for a, b in itertools.combinations(cell.creatives, 2):  # best CTR first, so a is the better
                if a.ctr > b.ctr and two_proportion_p(a.clicks, a.impressions, b.clicks, b.impressions) < ALPHA:
                    pairs += _pairs(a.copy, b.copy, (cell.product, cell.audience, cell.placement), context,
                                    f"results:{campaign.id}", (a.id, b.id))
    return pairs


def review_pairs(ctx: Context, brand: str) -> list[dict]:
    """Pairs from reviews of the brand's campaigns: approved over rejected, an edit over what it replaced."""
    pairs = []
    with ctx.db() as s:
        campaigns = [c for c in s.scalars(select(records.Campaign).order_by(records.Campaign.created_at))
                     if names_brand(brand, c.brand.name)]
        for campaign in campaigns:
            context = _context(campaign)
            creatives = s.scalars(select(records.Creative).where(records.Creative.campaign_id == campaign.id)
                                  .order_by(records.Creative.id)).all()
            by_cell: dict[tuple, list] = {}
            for c in creatives:
                by_cell.setdefault((c.product, c.audience, c.placement), []).append(c)
            for cell, members in by_cell.items():
                for good in (c for c in members if c.status == "approved"):
                    for bad in (c for c in members if c.status == "rejected"):
                        pairs += _pairs(good.copy, bad.copy, cell, context, f"reviews:{campaign.id}", (good.id, bad.id))
            edits = s.scalars(select(records.Review).join(records.Creative)
                              .where(records.Creative.campaign_id == campaign.id, records.Review.action == "edit")
                              .order_by(records.Review.id)).all()
            for review in edits:
                c = s.get(records.Creative, review.creative_id)
                pairs += _pairs(review.after, review.before, (c.product, c.audience, c.placement), context,
                                f"edits:{campaign.id}", (c.id, c.id))
    return pairs


def write_pairs(pairs: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
