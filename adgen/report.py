"""A self-contained HTML contact sheet of a campaign: per product, an audience x placement grid of
every creative with its copy, status and compliance badges. Images are embedded as small JPEG
thumbnails, so the single file opens anywhere and can be mailed around.
"""

import base64
import html
import io
from collections import defaultdict

from PIL import Image
from sqlalchemy import select

from adgen import records
from adgen.context import Context
from adgen.languages import language_label
from adgen.lineage import Lineage
from adgen.platforms import placement
from adgen.score import best_per_cell
from adgen.score import summary as score_summary

THUMB = 360

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d1d1f;background:#f5f5f7}
h1{margin:0 0 4px}h2{margin:32px 0 8px}.meta{color:#555;margin-bottom:16px}
.summary span{display:inline-block;margin-right:14px;padding:4px 10px;border-radius:12px;background:#fff;border:1px solid #ddd}
table{border-collapse:separate;border-spacing:8px}th{text-align:left;font-size:13px;color:#444;vertical-align:bottom}
th.aud{vertical-align:top;min-width:170px;max-width:200px;font-size:14px;color:#1d1d1f}td{vertical-align:top}
.cell{display:flex;gap:8px}.card{background:#fff;border-radius:10px;border:1px solid #e2e2e2;padding:8px;width:220px;font-size:12px}
.card img{width:100%;border-radius:6px;display:block;margin-bottom:6px;background:#eee}
.card img.other{width:31%;display:inline-block;margin-right:2%}
.badge{display:inline-block;padding:1px 7px;border-radius:8px;font-size:11px;margin-right:4px}
.ok{background:#e3f5e8;color:#1b6b34}.bad{background:#fde7e7;color:#a11}.pending{background:#eef;color:#335}
.approved{background:#1b6b34;color:#fff}.rejected{background:#a11;color:#fff}
.f{margin-top:4px}.f b{color:#666;font-weight:600;font-size:10px;text-transform:uppercase;letter-spacing:.04em}
.serp{border:1px solid #e2e2e2;border-radius:8px;padding:8px;background:#fff;margin-bottom:6px}
.serp .ad{font-size:11px;color:#202124}.serp .t{color:#1a0dab;font-size:15px;line-height:1.3}.serp .u{color:#006621;font-size:12px}
.id{color:#999;font-size:10px;margin-top:4px}.issue{color:#a11}
"""


def _thumb(data: bytes) -> str:
    im = Image.open(io.BytesIO(data)).convert("RGB")
    im.thumbnail((THUMB, THUMB * 2))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _serp(copy: dict, url: str | None) -> str:
    """A search-result preview for text-only placements (responsive search ads)."""
    domain = (url or "example.com").split("//")[-1].split("/")[0]
    path = "/".join(t for k in ("path1", "path2") for t in copy.get(k, []))
    title = " | ".join(copy.get("headline", [])[:3])
    desc = " ".join(copy.get("description", [])[:2])
    return (f'<div class="serp"><div class="ad">Sponsored</div><div class="u">{html.escape(domain)}'
            f'{"/" + html.escape(path) if path else ""}</div><div class="t">{html.escape(title)}</div>'
            f"<div>{html.escape(desc)}</div></div>")


def render_report(ctx: Context, campaign_id: str) -> str:
    with ctx.db() as s:
        campaign = s.get(records.Campaign, campaign_id)
        if campaign is None:
            raise ValueError(f"no campaign {campaign_id!r}")
        creatives = s.scalars(
            select(records.Creative).where(records.Creative.campaign_id == campaign_id).order_by(records.Creative.id)
        ).all()
        jobs = {j.id: j for j in campaign.jobs}
    spec = campaign.spec
    grid: dict[str, dict[tuple[str, str], list]] = defaultdict(lambda: defaultdict(list))
    for c in creatives:
        grid[c.product][(c.audience, c.placement)].append(c)
    counts = defaultdict(int)
    for c in creatives:
        counts[c.status] += 1
    passing = sum(c.compliance["ok"] for c in creatives)
    failed_jobs = [j for j in jobs.values() if j.status == "failed"]

    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(campaign.name)}</title>",
           f"<style>{CSS}</style></head><body>",
           f"<h1>{html.escape(campaign.name)}</h1>",
           f"<div class='meta'>{html.escape(spec['brand']['name'])} · campaign {campaign.id} · "
           f"text model {html.escape(campaign.text_model['ref'])} ({campaign.text_model['hash']}) · "
           f"image model {html.escape(campaign.image_model['ref'])} ({campaign.image_model['hash']}) · seed {spec['seed']}</div>",
           "<div class='summary'>",
           f"<span>{len(creatives)} creatives</span><span>{passing} pass all checks</span>",
           *(f"<span>{n} {st}</span>" for st, n in sorted(counts.items())),
           f"<span>{len(jobs)} jobs, {len(failed_jobs)} failed</span>" if failed_jobs else f"<span>{len(jobs)} jobs</span>",
           "</div>"]
    for job in failed_jobs:
        out.append(f"<p class='issue'>job {job.id} ({html.escape(job.product)} / {job.audience} / {job.placement}) failed: {html.escape(job.error or '')}</p>")
    products = {p["name"]: p for p in spec["products"]}
    for product_name in products:
        out.append(f"<h2>{html.escape(product_name)}</h2><table><tr><th></th>")
        out += [f"<th>{html.escape(placement(p).label)}</th>" for p in spec["placements"]]
        out.append("</tr>")
        for audience in spec["audiences"]:
            language = audience.get("language", "en")
            out.append(f"<tr><th class='aud'>{html.escape(audience['name'])}<br><span style='font-weight:400'>"
                       f"{html.escape(audience['persona'])}<br>{html.escape(language_label(language))}</span></th>")
            for p in spec["placements"]:
                out.append("<td><div class='cell'>")
                for c in best_per_cell(grid[product_name][(audience["name"], p)]):
                    out.append(_card(ctx, c, products[product_name].get("url"), language))
                out.append("</div></td>")
            out.append("</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def _card(ctx: Context, c: records.Creative, url: str | None, language: str = "en") -> str:
    ok = c.compliance["ok"]
    parts = ["<div class='card'>"]
    if c.image_key:
        parts.append(f"<img src='{_thumb(ctx.storage.get(c.image_key))}' alt='{c.id}'>")
        for size, key in (c.other_sizes or {}).items():  # the same scene at the placement's other sizes
            parts.append(f"<img class='other' src='{_thumb(ctx.storage.get(key))}' alt='{c.id} {size}' title='{size}'>")
    else:
        parts.append(_serp(c.copy, url))
    parts.append(f"<span class='badge {c.status}'>{c.status}</span>")
    parts.append(f"<span class='badge {'ok' if ok else 'bad'}'>{'passes checks' if ok else str(len(c.compliance['issues'])) + ' issues'}</span>")
    if c.width:
        parts.append(f"<span class='badge pending'>{c.width}x{c.height}</span>")
    for name, texts in c.copy.items():
        # dir=auto: the browser sets each Arabic or Hebrew text right to left
        parts.append(f"<div class='f'><b>{html.escape(name)}</b><br>"
                     + "<br>".join(f"<span lang='{html.escape(language)}' dir='auto'>{html.escape(t)}</span>" for t in texts)
                     + "</div>")
    for issue in c.compliance["issues"]:
        parts.append(f"<div class='f issue'>{html.escape(issue)}</div>")
    parts.append(f"<div class='f'><b>score</b> {html.escape(score_summary(c.scores))}</div>")
    lineage = Lineage.of(c.lineage)
    fixes = lineage.fixes
    if fixes:
        summary = ", ".join(f"{f['field']} {f['action']}" for f in fixes)
        parts.append(f"<div class='id'>fixes: {html.escape(summary)}</div>")
    parts.append(f"<div class='id'>{c.id} · seed {lineage.image_seed}</div></div>")
    return "".join(parts)
