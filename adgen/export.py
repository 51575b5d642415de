"""Export a campaign's creatives as a bundle: creatives.json, creatives.csv and the images.

Only approved creatives export unless asked otherwise (`status="any"` makes a preview bundle).
Every entry is flagged `ai_generated: true` and carries its provenance. The bundle is written to a
temporary folder beside the target and renamed into place, so a failed export leaves nothing.
"""

import csv
import json
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select

from adgen import records
from adgen.compliance import check_copy
from adgen.context import Context, campaign_spec
from adgen.platforms import placement

STATUSES = ("approved", "pending", "rejected", "any")


class ExportError(ValueError):
    pass


def export_campaign(ctx: Context, campaign_id: str, out: Path, status: str = "approved") -> list[dict]:
    """Write the bundle to `out` (which must not exist or be empty); returns its entries."""
    if status not in STATUSES:
        raise ExportError(f"--status must be one of {', '.join(STATUSES)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty folder; choose a new one")
    with ctx.db() as s:
        campaign = s.get(records.Campaign, campaign_id)
        if campaign is None:
            raise ExportError(f"no campaign {campaign_id!r}")
        spec = campaign_spec(campaign)
        query = select(records.Creative).where(records.Creative.campaign_id == campaign_id).order_by(records.Creative.id)
        rows = [r for r in s.scalars(query) if status == "any" or r.status == status]
        reviews = {}
        for review in s.scalars(select(records.Review).where(records.Review.creative_id.in_([r.id for r in rows])).order_by(records.Review.id)):
            reviews.setdefault(review.creative_id, []).append(review)
    if not rows:
        raise ExportError(f"campaign {campaign_id} has no {status} creatives" + ("; approve some first" if status == "approved" else ""))
    if status == "approved":
        for row in rows:  # the gate, checked again: rules or the brand's banned terms may have changed
            result = check_copy(row.copy, placement(row.placement), spec.brand.banned_terms, spec.brand.name)
            if not result["ok"]:
                raise ExportError(f"creative {row.id} no longer passes its checks ({result['issues'][0]})")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (tmp / "images").mkdir()
        entries = []
        for row in rows:
            image = None
            if row.image_key:
                image = f"images/{row.id}.png"
                (tmp / image).write_bytes(ctx.storage.get(row.image_key))
            lineage = row.lineage
            decisions = reviews.get(row.id, [])
            approver = next((r.reviewer for r in reversed(decisions) if r.action == "approve"), None)
            entries.append({
                "id": row.id, "campaign": campaign.name, "campaign_id": campaign_id, "product": row.product,
                "audience": row.audience, "placement": row.placement, "status": row.status, "copy": row.copy,
                "image": image, "width": row.width, "height": row.height, "ai_generated": True,
                "compliance": {"ok": row.compliance["ok"], "issues": row.compliance["issues"]},
                "lineage": {
                    "seed": lineage["seed"], "image_seed": lineage["image_seed"], "prompt": lineage["prompt"],
                    "text_model": lineage["text_model"], "image_model": lineage["image_model"],
                    "text_adapter": lineage["text_adapter"], "image_adapter": lineage["image_adapter"],
                    "generation": lineage["generation"], "fixes": lineage["fixes"],
                    "reviewer": approver,
                    "edits": [{"reviewer": r.reviewer, "before": r.before, "after": r.after} for r in decisions if r.action == "edit"],
                    "adgen_version": lineage["adgen_version"],
                },
            })
        (tmp / "creatives.json").write_text(json.dumps(entries, indent=2, ensure_ascii=False))
        fields = sorted({name for e in entries for name in e["copy"]})
        with (tmp / "creatives.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "campaign", "product", "audience", "placement", "status", "image", "width",
                             "height", "ai_generated", "seed", "text_model", "image_model", "reviewer"]
                            + [f"copy.{n}" for n in fields])
            for e in entries:
                lin = e["lineage"]
                writer.writerow(
                    [e["id"], e["campaign"], e["product"], e["audience"], e["placement"], e["status"], e["image"] or "",
                     e["width"] or "", e["height"] or "", "true", lin["seed"], lin["text_model"]["ref"],
                     (lin["image_model"] or {}).get("ref", ""), lin["reviewer"] or ""]
                    + [" | ".join(e["copy"].get(n, [])) for n in fields]
                )
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return entries
