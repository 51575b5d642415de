"""Export a campaign's creatives as a bundle: creatives.json, creatives.csv and the images.

Only approved creatives export unless asked otherwise (`status="any"` makes a preview bundle).
Every entry is flagged `ai_generated: true`, carries its provenance and its final (UTM-tagged)
landing URL; every image carries XMP and a signed C2PA manifest (adgen/provenance.py). Beside the
generic bundle, each ad platform the campaign has placements on gets a folder with the file its bulk
tool imports and the images at every size (adgen/bulk.py). Everything that can fail (URLs, logo,
layout at every size, signing) is checked before anything is written; the bundle is then written to
a temporary folder beside the target and renamed into place, so a failed export leaves nothing.
"""

import io
import json
import shutil
import tempfile
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from adgen import bulk, records
from adgen.compliance import check_copy
from adgen.context import Context, campaign_spec
from adgen.csvfile import write_csv
from adgen.lineage import Lineage
from adgen.pipeline import layout
from adgen.platforms import placement
from adgen.product_shot import Shot, shot_of
from adgen.provenance import ProvenanceError, Signer, credentials
from adgen.score import WEIGHTS, best_per_cell
from adgen.spec import CampaignSpec

STATUSES = ("approved", "pending", "rejected", "any")


class ExportError(ValueError):
    pass


def export_campaign(ctx: Context, campaign_id: str, out: Path, status: str = "approved", top: int | None = None) -> list[dict]:
    """Write the bundle to `out` (which must not exist or be empty); returns its entries. With
    `top`, only the `top` best-scored creatives of each product x audience x placement cell."""
    if status not in STATUSES:
        raise ExportError(f"--status must be one of {', '.join(STATUSES)}")
    if top is not None and top < 1:
        raise ExportError(f"--top must be 1 or more, not {top}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty folder; choose a new one")
    with ctx.db() as s:
        campaign = s.get(records.Campaign, campaign_id)
        if campaign is None:
            raise ExportError(f"no campaign {campaign_id!r}")
        spec = campaign_spec(campaign)
        brand = campaign.brand
        query = select(records.Creative).where(records.Creative.campaign_id == campaign_id).order_by(records.Creative.id)
        rows = [r for r in s.scalars(query) if status == "any" or r.status == status]
        if top is not None:
            rows = best_per_cell(rows, top)
        reviews = {}
        for review in s.scalars(select(records.Review).where(records.Review.creative_id.in_([r.id for r in rows])).order_by(records.Review.id)):
            reviews.setdefault(review.creative_id, []).append(review)
    if not rows:
        raise ExportError(f"campaign {campaign_id} has no {status} creatives" + ("; approve some first" if status == "approved" else ""))
    if status == "approved":
        # The gate, checked again: rules may have changed, and so may the brand kit, whose banned terms
        # now count beside the ones the campaign was made with (its spec and kit snapshot).
        banned = [*spec.brand.banned_terms, *(t for t in brand.banned_terms if t not in spec.brand.banned_terms)]
        for row in rows:
            result = check_copy(row.copy, placement(row.placement), banned, spec.brand.name,
                                language=spec.language_of(row.audience), keep=(row.product,))
            if not result["ok"]:
                raise ExportError(f"creative {row.id} no longer passes its checks ({result['issues'][0]})")

    creatives = [bulk.Creative(r.id, r.product, r.audience, r.placement, r.copy) for r in rows]
    logo_key = campaign.spec.get("logo_key")
    try:
        urls = bulk.final_urls(spec, creatives)
        if bulk.needs_logo(creatives) and logo_key is None:
            raise bulk.BulkError("brand.logo: Performance Max asset groups need a logo; add one to the brand")
        signer = Signer(credentials(ctx.settings))
        logo = ctx.storage.get(logo_key) if logo_key else None
        images = _signed_images(ctx, spec, rows, logo, signer)
        square_logo = None
        if logo is not None and bulk.needs_logo(creatives):
            square_logo = signer.sign(bulk.square_logo(logo, spec.brand.colors), title="logo",
                                      generation={"brand": spec.brand.name}, ingredients={"brand logo": logo})
    except (bulk.BulkError, ProvenanceError) as e:
        raise ExportError(str(e)) from None

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (tmp / "images").mkdir()
        entries = []
        for row in rows:
            image = None
            if row.image_key:
                image = f"images/{row.id}.png"
                (tmp / image).write_bytes(images[(row.id, row.width, row.height)])
            lineage = Lineage.of(row.lineage)
            decisions = reviews.get(row.id, [])
            approver = next((r.reviewer for r in reversed(decisions) if r.action == "approve"), None)
            entries.append({
                "id": row.id, "campaign": campaign.name, "campaign_id": campaign_id, "product": row.product,
                "audience": row.audience, "placement": row.placement, "status": row.status, "copy": row.copy,
                "image": image, "width": row.width, "height": row.height, "final_url": urls.get(row.id),
                "ai_generated": True,
                "compliance": {"ok": row.compliance["ok"], "issues": row.compliance["issues"]},
                "scores": row.scores,
                "lineage": {
                    "seed": lineage.seed, "image_seed": lineage.image_seed,
                    "prompt": lineage.prompt.model_dump(mode="json"),
                    "text_model": lineage.record()["text_model"], "image_model": lineage.record()["image_model"],
                    "text_adapter": lineage.text_adapter, "image_adapter": lineage.image_adapter,
                    "generation": lineage.generation.model_dump(mode="json"), "fixes": lineage.fixes,
                    "reviewer": approver,
                    "edits": [{"reviewer": r.reviewer, "before": r.before, "after": r.after} for r in decisions if r.action == "edit"],
                    "adgen_version": lineage.adgen_version,
                },
            })
        (tmp / "creatives.json").write_text(json.dumps(entries, indent=2, ensure_ascii=False))
        fields = sorted({name for e in entries for name in e["copy"]})
        write_csv(
            tmp / "creatives.csv",
            ["id", "campaign", "product", "audience", "placement", "status", "image", "width", "height", "final_url",
             "ai_generated", "seed", "text_model", "image_model", "reviewer", "score"]
            + [f"score.{k}" for k in WEIGHTS] + [f"copy.{n}" for n in fields],
            ([e["id"], e["campaign"], e["product"], e["audience"], e["placement"], e["status"], e["image"] or "",
              e["width"] or "", e["height"] or "", e["final_url"] or "", "true", e["lineage"]["seed"],
              e["lineage"]["text_model"]["ref"], (e["lineage"]["image_model"] or {}).get("ref", ""),
              e["lineage"]["reviewer"] or ""] + _score_cells(e["scores"]) + [" | ".join(e["copy"].get(n, [])) for n in fields]
             for e in entries),
        )
        bulk.write_platform_folders(tmp, spec, creatives, urls, images, square_logo, preview=status != "approved")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return entries


def _score_cells(scores: dict | None) -> list:
    """The score and score.<component> cells of a creative; empty for one made before scoring."""
    if not scores:
        return [""] * (1 + len(WEIGHTS))
    return [scores["overall"]] + [scores["components"][k] for k in WEIGHTS]


def _signed_images(ctx: Context, spec: CampaignSpec, rows: list[records.Creative], logo: bytes | None,
                   signer: Signer) -> dict[tuple[str, int, int], bytes]:
    """Every exported image of every creative, at every size, XMP-marked and C2PA-signed."""
    images = {}
    for row in rows:
        if not row.image_key:
            continue
        lineage = Lineage.of(row.lineage)
        sizes = _sizes(ctx, row, spec, logo, shot_of(lineage, ctx))
        ingredients = {"brand logo": logo} if logo else {}
        if lineage.product_photo is not None:
            ingredients["product photo (cut-out)"] = ctx.storage.get(lineage.product_photo.cutout_key)
        models = (("text", lineage.text_model), ("image", lineage.image_model))
        adapters = (("text", lineage.text_adapter), ("image", lineage.image_adapter))
        for (width, height), png in sizes.items():
            generation = {
                "creative": row.id, "campaign": lineage.campaign, "size": f"{width}x{height}",
                "models": {kind: {"ref": m.ref, "hash": m.hash} for kind, m in models if m},
                "adapters": {kind: {"ref": a["ref"], "version": a.get("version"), "hash": a["hash"]}
                             for kind, a in adapters if a},
                "seed": lineage.seed, "image_seed": lineage.image_seed, "adgen_version": lineage.adgen_version,
            }
            images[(row.id, width, height)] = signer.sign(
                png, title=bulk.image_name(row.id, width, height), generation=generation,
                ingredients=ingredients,
            )
    return images


def _sizes(ctx: Context, row: records.Creative, spec: CampaignSpec, logo: bytes | None,
           product: Shot | None) -> dict[tuple[int, int], bytes]:
    """A creative at every size of its placement, as stored with it (the files review and the report
    show), each checked as the primary size is. A creative made before other sizes were stored has
    them laid out here from its stored background, by the job's own layout."""
    place = placement(row.placement)
    stored = {(row.width, row.height): row.image_key}
    stored.update({tuple(map(int, size.split("x"))): key for size, key in (row.other_sizes or {}).items()})
    out = {}
    for width, height in place.sizes:
        what = f"creative {row.id} at {width}x{height}"
        if (width, height) in stored:
            png = ctx.storage.get(stored[(width, height)])
        else:
            try:
                png = layout(row.copy, place, spec, Image.open(io.BytesIO(ctx.storage.get(row.background_key))), logo,
                             (width, height), product, language=spec.language_of(row.audience))
            except ValueError as e:  # the layout could not fit the copy at this size
                raise bulk.BulkError(f"{what}: {e}") from None
        bulk.check_image(png, width, height, place, what)
        out[(width, height)] = png
    return out
