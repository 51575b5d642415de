"""The feedback loop: what reviewers decided becomes the next round of training data.

Approved creatives of a brand (their copy as it stands, reviewer edits included) become copy rows
in the documented JSONL format, prompted as the generator prompted them; rejected creatives are
written too, marked `"status": "rejected"` with the reviewer's reason, as negatives for a later
preference-tuning step (the LoRA trainer skips them).
"""

import json
from pathlib import Path

from sqlalchemy import select

from adgen import records
from adgen.adapters import brand_slug, names_brand
from adgen.context import Context, campaign_spec
from adgen.platforms import placement
from finetune.data import DataError


def the_brand(s, brand: str) -> records.Brand:
    """The one brand record a registry slug names: the brand whose slug it is, else the only brand
    whose slug starts with it. Two candidates are refused, so 'northwind' never takes the reviews
    of another advertiser's 'Northwind Tea' along with Northwind Coffee's."""
    matches = [b for b in s.scalars(select(records.Brand).order_by(records.Brand.name)) if names_brand(brand, b.name)]
    exact = [b for b in matches if brand_slug(b.name) == brand]
    candidates = exact or matches
    if not candidates:
        raise DataError(f"--brand {brand!r}: no brand of that name; see 'adgen campaign list'")
    if len(candidates) > 1:
        slugs = ", ".join(repr(brand_slug(b.name)) for b in candidates)
        raise DataError(f"--brand {brand!r} names {len(candidates)} brands ({', '.join(b.name for b in candidates)}); "
                        f"use the full slug of one: {slugs}")
    return candidates[0]


def review_rows(ctx: Context, brand: str, campaign_ids: list[str] | None = None) -> list[dict]:
    """Approved and rejected creatives of the brand's campaigns (or of the named ones) as JSONL rows."""
    rows = []
    with ctx.db() as s:
        owner = the_brand(s, brand)
        if campaign_ids:
            campaigns = []
            for cid in campaign_ids:
                campaign = s.get(records.Campaign, cid)
                if campaign is None:
                    raise DataError(f"--campaign: no campaign {cid!r}; see 'adgen campaign list'")
                if campaign.brand_id != owner.id:
                    raise DataError(f"--campaign: {cid} belongs to brand {campaign.brand.name!r}, not {brand!r}")
                campaigns.append(campaign)
        else:
            campaigns = list(s.scalars(select(records.Campaign).where(records.Campaign.brand_id == owner.id)
                                       .order_by(records.Campaign.created_at)))
        for campaign in campaigns:
            spec = campaign_spec(campaign)
            products = {p.name: p for p in spec.products}
            audiences = {a.name: a for a in spec.audiences}
            query = (select(records.Creative).where(records.Creative.campaign_id == campaign.id,
                                                    records.Creative.status.in_(("approved", "rejected")))
                     .order_by(records.Creative.id))
            for creative in s.scalars(query):
                reviews = s.scalars(select(records.Review).where(records.Review.creative_id == creative.id)
                                    .order_by(records.Review.id)).all()
                written = {n for n, f in placement(creative.placement).fields.items() if f.written}
                copy = {n: texts for n, texts in creative.copy.items() if n in written and texts}
                if not copy:
                    continue
                row = {
                    "product": products[creative.product].model_dump(mode="json", exclude_none=True),
                    "audience": audiences[creative.audience].model_dump(mode="json", exclude_none=True),
                    "placement": creative.placement, "copy": copy,
                    "brand": spec.brand.model_dump(mode="json", include={"name", "voice", "banned_terms"}),
                    "status": creative.status, "campaign": campaign.id, "creative": creative.id,
                    "edited": any(r.action == "edit" for r in reviews),
                }
                if creative.status == "rejected":
                    row["reason"] = next((r.reason for r in reversed(reviews) if r.action == "reject"), None)
                rows.append(row)
    if not any(r["status"] == "approved" for r in rows):
        where = f"campaigns {', '.join(campaign_ids)}" if campaign_ids else f"any campaign of brand {brand!r}"
        raise DataError(f"--from-reviews: no approved creatives in {where}; approve some with 'adgen review approve'")
    return rows


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
