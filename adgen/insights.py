"""Learn which creatives won: CTR and conversion rate per creative with 95% Wilson intervals, per
product x audience x placement cell, a winner only where a two-proportion z-test says the best CTR
differs from the runner-up's (p < 0.05, two-sided), and the rank correlation of score components
with CTR when the creatives were scored. Rendered as text rows and as a self-contained HTML page
with a per-cell plot of CTR and its interval.
"""

import base64
import html
import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select

from adgen import records
from adgen.context import Context

Z95 = 1.959963984540054
ALPHA = 0.05
TEST = "two-proportion z-test on CTR, best vs runner-up, two-sided, p < 0.05"


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) without trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test that x1/n1 and x2/n2 differ."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


@dataclass
class CreativeStats:
    id: str
    product: str
    audience: str
    placement: str
    copy: dict
    impressions: int
    clicks: int
    conversions: int
    scores: dict

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def ctr_interval(self) -> tuple[float, float]:
        return wilson(self.clicks, self.impressions)

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.clicks if self.clicks else 0.0

    @property
    def conversion_interval(self) -> tuple[float, float]:
        return wilson(self.conversions, self.clicks)


@dataclass
class Cell:
    product: str
    audience: str
    placement: str
    creatives: list[CreativeStats]  # best CTR first
    p_value: float  # best vs runner-up
    winner: str | None  # the best creative's id, only when significant


def cells(ctx: Context, campaign_id: str) -> list[Cell]:
    """The campaign's creatives with results, summed over every imported period, grouped by cell."""
    with ctx.db() as s:
        if s.get(records.Campaign, campaign_id) is None:
            raise LookupError(f"no campaign {campaign_id!r}; see 'adgen campaign list'")
        R = records.Result
        sums = s.execute(select(R.creative_id, func.sum(R.impressions), func.sum(R.clicks), func.sum(R.conversions))
                         .where(R.campaign_id == campaign_id).group_by(R.creative_id)).all()
        creatives = {c.id: c for c in s.scalars(select(records.Creative).where(
            records.Creative.id.in_([row[0] for row in sums])))}
    grouped: dict[tuple, list[CreativeStats]] = {}
    for creative_id, impressions, clicks, conversions in sums:
        c = creatives[creative_id]
        stats = CreativeStats(c.id, c.product, c.audience, c.placement, c.copy, int(impressions), int(clicks),
                              int(conversions), _scores(c))
        grouped.setdefault((c.product, c.audience, c.placement), []).append(stats)
    out = []
    for (product, audience, placement), members in sorted(grouped.items()):
        members.sort(key=lambda m: (-m.ctr, m.id))
        p = 1.0
        if len(members) > 1:
            best, second = members[0], members[1]
            p = two_proportion_p(best.clicks, best.impressions, second.clicks, second.impressions)
        out.append(Cell(product, audience, placement, members, p, members[0].id if p < ALPHA else None))
    return out


def _scores(creative: records.Creative) -> dict:
    """The creative's overall score and its components (adgen.score); empty for one made before scoring."""
    scores = creative.scores or {}
    return {"overall": float(scores["overall"]), **scores["components"]} if scores else {}


def score_correlations(all_cells: list[Cell]) -> dict[str, tuple[float, int]]:
    """Spearman's rank correlation of each score component with CTR over the creatives that have it."""
    from scipy.stats import spearmanr

    creatives = [c for cell in all_cells for c in cell.creatives]
    names = sorted({k for c in creatives for k in c.scores})
    out = {}
    for name in names:
        pairs = [(c.scores[name], c.ctr) for c in creatives if name in c.scores]
        if len(pairs) >= 3 and len({a for a, _ in pairs}) > 1 and len({b for _, b in pairs}) > 1:
            rho = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
            out[name] = (float(rho), len(pairs))
    return out


def _headline(c: CreativeStats) -> str:
    for field in ("headline", "headlines", "primary_text", "text", "intro"):
        if c.copy.get(field):
            return c.copy[field][0]
    return next((texts[0] for texts in c.copy.values() if texts), "")


def plot(all_cells: list[Cell]) -> bytes:
    """A PNG: one band per cell, each creative's CTR as a dot with its 95% interval as a bar."""
    font = ImageFont.load_default(size=13)
    rows = sum(len(c.creatives) + 1 for c in all_cells)
    width, left, right, row_h = 900, 330, 40, 20
    height = 40 + rows * row_h
    top_ctr = max((cr.ctr_interval[1] for c in all_cells for cr in c.creatives), default=0.01) * 1.1 or 0.01
    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)

    def x(v):
        return left + v / top_ctr * (width - left - right)

    for i in range(5):
        v = top_ctr * i / 4
        d.line([(x(v), 25), (x(v), height - 5)], fill="#e4e4e4")
        d.text((x(v), 5), f"{v:.1%}", fill="#555", font=font, anchor="ma")
    y = 30
    for cell in all_cells:
        d.text((8, y), f"{cell.audience} / {cell.placement}", fill="black", font=font)
        y += row_h
        for cr in cell.creatives:
            lo, hi = cr.ctr_interval
            colour = "#c8553d" if cr.id == cell.winner else "#3b2a20"
            d.text((20, y), cr.id, fill=colour, font=font)
            d.line([(x(lo), y + 7), (x(hi), y + 7)], fill=colour, width=3)
            d.ellipse([x(cr.ctr) - 4, y + 3, x(cr.ctr) + 4, y + 11], fill=colour)
            y += row_h
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def render_html(campaign_id: str, all_cells: list[Cell]) -> str:
    """A self-contained page: the plot, then a table per cell, then the score correlations."""
    e = html.escape
    png = base64.b64encode(plot(all_cells)).decode()
    parts = [f"<!doctype html><meta charset='utf-8'><title>Insights {e(campaign_id)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.win{background:#fbe9e4}</style>",
             f"<h1>What won in campaign {e(campaign_id)}</h1>",
             f"<p>Intervals are 95% Wilson intervals. A cell has a winner only where the {TEST}.</p>",
             f"<img alt='CTR per creative with 95% intervals, per cell' src='data:image/png;base64,{png}'>"]
    for cell in all_cells:
        verdict = (f"winner {e(cell.winner)} (p = {cell.p_value:.3g})" if cell.winner
                   else f"no significant winner (p = {cell.p_value:.3g})")
        parts.append(f"<h2>{e(cell.product)} · {e(cell.audience)} · {e(cell.placement)}: {verdict}</h2><table>"
                     "<tr><th>creative</th><th>copy</th><th>impressions</th><th>clicks</th><th>CTR (95% CI)</th>"
                     "<th>conversions</th><th>conversion rate (95% CI)</th></tr>")
        for c in cell.creatives:
            lo, hi = c.ctr_interval
            clo, chi = c.conversion_interval
            parts.append(f"<tr class='{'win' if c.id == cell.winner else ''}'><td>{e(c.id)}</td><td>{e(_headline(c))}</td>"
                         f"<td>{c.impressions}</td><td>{c.clicks}</td><td>{c.ctr:.2%} ({lo:.2%}–{hi:.2%})</td>"
                         f"<td>{c.conversions}</td><td>{c.conversion_rate:.2%} ({clo:.2%}–{chi:.2%})</td></tr>")
        parts.append("</table>")
    correlations = score_correlations(all_cells)
    if correlations:
        parts.append("<h2>Score components vs CTR (Spearman's rank correlation)</h2><table><tr><th>component</th>"
                     "<th>rho</th><th>creatives</th></tr>")
        parts += [f"<tr><td>{e(k)}</td><td>{rho:+.2f}</td><td>{n}</td></tr>" for k, (rho, n) in correlations.items()]
        parts.append("</table>")
    return "\n".join(parts)
