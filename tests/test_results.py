"""Results from the ad platforms through the real command line: each platform's export imported and
joined to creatives, a second import of the same file changing nothing, unmatched rows listed,
overlapping dates refused unless replaced, a malformed file refused whole, and insights that call a
winner only where the difference is significant."""

import csv

import pytest
import sqlalchemy as sa

from adgen import records
from adgen.context import Context
from adgen.insights import two_proportion_p, wilson
from adgen.settings import Settings
from tests.conftest import adgen

CAMPAIGN = "c0ffee000001"


@pytest.fixture
def creatives(home) -> list[str]:
    """A recorded campaign with two cells of three creatives (no models needed to import results)."""
    ctx = Context(Settings())
    ids = []
    with ctx.db() as s, s.begin():
        brand = records.Brand(name="Northwind Coffee")
        s.add(brand)
        s.flush()
        s.add(records.Campaign(id=CAMPAIGN, name="spring", brand_id=brand.id, spec={}, status="done",
                               text_model={"ref": "default"}, image_model={"ref": "default"}))
        s.flush()
        for position, audience in enumerate(["busy-parents", "night-owl-students"]):
            job_id = f"{CAMPAIGN}-{position:03d}"
            s.add(records.Job(id=job_id, campaign_id=CAMPAIGN, position=position, product="Cold Brew",
                              audience=audience, placement="meta_feed", variants=3, seed=1))
            s.flush()  # creatives name their job, and no relationship orders the inserts
            for v in range(3):
                ids.append(f"{job_id}-{v}")
                s.add(records.Creative(id=ids[-1], campaign_id=CAMPAIGN, job_id=job_id, variant=v, product="Cold Brew",
                                       audience=audience, placement="meta_feed", copy={"headline": [f"headline {v}"]},
                                       compliance={"ok": True}, lineage={},
                                       scores={"overall": 90 - 10 * v - 30 * position, "components": {"audience": 0.5 + position / 10 - v / 10}}))
    return ids


def _write(path, header, rows, preamble=()):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        for line in preamble:
            w.writerow(line)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def _url(creative_id):
    return f"https://example.com/cold-brew?utm_source=x&utm_content={creative_id}"


# One export per platform in its own column names: (header, a row builder, lines above the table).
EXPORTS = {
    "google": (["Day", "Final URL", "Impr.", "Clicks", "Conversions", "Cost"],
               lambda cid, day, i, c: [day, _url(cid), f"{i:,}", c, 1, "3.50"],
               [["Ad report"], ["November 1, 2026 - November 30, 2026"]]),
    "meta": (["Reporting starts", "Reporting ends", "Ad name", "Impressions", "Link clicks", "Results", "Amount spent (EUR)"],
             lambda cid, day, i, c: [day, day, f"spring | {cid}", i, c, 1, "3.50"], []),
    "linkedin": (["Start Date (in UTC)", "Ad Name", "Click URL", "Impressions", "Clicks", "Conversions", "Total Spent"],
                 lambda cid, day, i, c: [day.replace("2026-11-0", "11/").replace("2026-11-", "11/") + "/2026",
                                         f"ad {cid}", _url(cid), i, c, 1, "3.50"], []),
    "x": (["Time", "Ad name", "Impressions", "Link clicks", "Conversions", "Spend"],
          lambda cid, day, i, c: [day, f"spring {cid}", i, c, 1, "3.50"], []),
}


def _count() -> int:
    with Context(Settings()).db() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(records.Result))


@pytest.mark.parametrize("platform", sorted(EXPORTS))
def test_each_platform_export_is_joined_to_creatives_once(platform, creatives, tmp_path):
    header, row, preamble = EXPORTS[platform]
    rows = [row(cid, day, 1000, 20) for cid in creatives[:3] for day in ("2026-11-01", "2026-11-02")]
    rows.append(row("c0ffee999999-000-0", "2026-11-01", 500, 5))  # an ad this campaign never made
    rows.append(["Total: account"] + [""] * (len(header) - 1))
    report = _write(tmp_path / f"{platform}.csv", header, rows, preamble)

    first = adgen("results", "import", CAMPAIGN, report, "--platform", platform)
    assert "stored 6 rows" in first.stdout
    assert "1 rows match no creative" in first.stderr and "c0ffee999999-000-0" in first.stderr
    assert _count() == 6
    again = adgen("results", "import", CAMPAIGN, report, "--platform", platform)
    assert "imported before; nothing changed" in again.stdout and _count() == 6

    insights = adgen("campaign", "insights", CAMPAIGN).stdout
    assert "2.00%" in insights and creatives[0] in insights


def test_overlapping_dates_are_refused_unless_replaced(creatives, tmp_path):
    header, row, _ = EXPORTS["meta"]
    first = _write(tmp_path / "a.csv", header, [row(cid, "2026-11-01", 1000, 10) for cid in creatives])
    second = _write(tmp_path / "b.csv", header, [row(cid, "2026-11-01", 2000, 30) for cid in creatives])
    adgen("results", "import", CAMPAIGN, first, "--platform", "meta")
    refused = adgen("results", "import", CAMPAIGN, second, "--platform", "meta", check=False)
    assert refused.returncode == 2 and "--replace" in refused.stderr
    assert "stored 6 rows, replaced 6" in adgen("results", "import", CAMPAIGN, second, "--platform", "meta", "--replace").stdout
    with Context(Settings()).db() as s:
        assert s.scalar(sa.select(sa.func.sum(records.Result.impressions))) == 6 * 2000


def test_a_malformed_file_is_refused_naming_the_row_and_nothing_is_written(creatives, tmp_path):
    header, row, _ = EXPORTS["x"]
    rows = [row(cid, "2026-11-01", 1000, 10) for cid in creatives]
    rows[3][2] = "many"
    result = adgen("results", "import", CAMPAIGN, _write(tmp_path / "x.csv", header, rows), "--platform", "x", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: x.csv row 5: Impressions is 'many', not a number"]
    assert _count() == 0
    wrong = adgen("results", "import", CAMPAIGN, _write(tmp_path / "y.csv", header, rows[:2]), "--platform", "google", check=False)
    assert wrong.returncode == 2 and "is --platform right?" in wrong.stderr and _count() == 0


def test_a_winner_is_called_only_where_the_difference_is_significant(creatives, tmp_path):
    header, row, _ = EXPORTS["meta"]
    clicks = [120, 60, 58,  # cell 1: 6% against 3%, far apart at 2,000 impressions each
              41, 40, 39]  # cell 2: 2.05% against 2%: no test can tell these apart
    rows = [row(cid, "2026-11-01", 2000, c) for cid, c in zip(creatives, clicks, strict=True)]
    adgen("results", "import", CAMPAIGN, _write(tmp_path / "m.csv", header, rows), "--platform", "meta")
    page = tmp_path / "insights.html"
    text = adgen("campaign", "insights", CAMPAIGN, "--out", str(page)).stdout
    assert "two-proportion z-test" in text
    lines = {cid: line for line in text.splitlines() for cid in creatives if f" {cid} " in line}
    assert "winner (p=" in lines[creatives[0]] and "no significant" not in lines[creatives[0]]
    assert "no significant winner" in lines[creatives[3]]
    html = page.read_text()
    assert "data:image/png;base64," in html and f"winner {creatives[0]}" in html
    # the overall score falls as CTR does, over both cells: a perfect rank correlation
    assert "score overall vs CTR: Spearman rho +1.00 over 6 creatives" in text


def test_wilson_interval_and_two_proportion_test_match_known_values():
    lo, hi = wilson(10, 100)  # a textbook case: 10 of 100
    assert round(lo, 4) == 0.0552 and round(hi, 4) == 0.1744
    assert round(two_proportion_p(120, 2000, 60, 2000), 6) < 1e-4
    assert two_proportion_p(41, 2000, 40, 2000) > 0.5
