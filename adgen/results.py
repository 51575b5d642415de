"""Import what ran: read an ad platform's ad-level performance export, join its rows to a campaign's
creatives and store them in the results table.

Each platform's column names are data (adgen/data/results_formats.yaml, with where they come from).
A row belongs to the creative named by `utm_content` in its URL, else by a creative id in its ad
name. The whole file is checked before anything is written: a malformed file is refused naming the
row. The file's hash makes a second import of the same file a no-op; a file whose dates overlap
results already imported for the campaign and platform is refused unless `replace` is given.
"""

import csv
import fnmatch
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml
from sqlalchemy import delete, select

from adgen import records
from adgen.context import Context

FORMATS = Path(__file__).parent / "data" / "results_formats.yaml"
_CREATIVE_ID = re.compile(r"[0-9a-f]{12}-\d{3}-\d+")
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%b %d, %Y")


class ResultsError(ValueError):
    """A results file that cannot be read as the platform's export, or an import that would overwrite."""


@cache
def formats() -> dict:
    return yaml.safe_load(FORMATS.read_text())


@dataclass
class Row:
    line: int  # the line of the file, as a spreadsheet would number it
    ad: str  # the ad name or URL the row was matched on
    date_start: date
    date_end: date
    impressions: int
    clicks: int
    conversions: int
    spend: float | None
    creative_id: str | None = None


@dataclass
class Imported:
    stored: int = 0
    replaced: int = 0
    unmatched: list[Row] = field(default_factory=list)
    already: bool = False  # the same file was imported before; nothing changed


def _column(header: list[str], names: list[str]) -> int | None:
    for name in names:
        for i, h in enumerate(header):
            if fnmatch.fnmatchcase(h.strip(), name):
                return i
    return None


def _number(value: str, what: str, where: str, integer: bool) -> float:
    text = value.strip().replace(",", "").lstrip("$€£")
    if text in ("", "--", "-"):
        return 0
    try:
        n = float(text)
    except ValueError:
        raise ResultsError(f"{where}: {what} is {value!r}, not a number") from None
    if n < 0 or (integer and n != int(n)):
        raise ResultsError(f"{where}: {what} is {value!r}, not a {'whole ' if integer else ''}number >= 0")
    return int(n) if integer else n


def _date(value: str, what: str, where: str) -> date:
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), form).date()
        except ValueError:
            continue
    raise ResultsError(f"{where}: {what} is {value!r}, not a date (like 2026-11-30)")


def parse(path: Path, platform: str) -> list[Row]:
    """The ad rows of a platform's export; a malformed file raises ResultsError naming the row."""
    if platform not in formats():
        raise ResultsError(f"--platform: {platform!r} is not one of {', '.join(formats())}")
    fmt = formats()[platform]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: cannot be read as a UTF-8 CSV file ({e})") from None
    lines = list(csv.reader(io.StringIO(text)))
    required = {"date_start": fmt["date_start"], "impressions": fmt["impressions"], "clicks": fmt["clicks"]}
    for start, header in enumerate(lines[:10]):  # noqa: B007  (the header's line is used below)
        cols = {key: _column(header, names) for key, names in fmt.items() if key != "source"}
        if all(cols[k] is not None for k in required) and (cols["ad_name"] is not None or cols["url"] is not None):
            break
    else:
        wanted = ", ".join(f"{k} ({' or '.join(v)})" for k, v in required.items())
        raise ResultsError(f"{path}: no header line with the {platform} export's columns {wanted} and an ad name "
                           f"({' or '.join(fmt['ad_name'])}) or URL ({' or '.join(fmt['url'])}); is --platform right?")
    rows = []
    for n, cells in enumerate(lines[start + 1:], start=start + 2):
        if not any(c.strip() for c in cells) or cells[0].strip().lower().startswith("total"):
            continue
        where = f"{path.name} row {n}"
        if len(cells) < len(header):
            raise ResultsError(f"{where}: {len(cells)} cells, the header has {len(header)}")

        def cell(key, cells=cells):
            return cells[cols[key]] if cols[key] is not None else ""

        start_day = _date(cell("date_start"), header[cols["date_start"]], where)
        end_day = _date(cell("date_end"), header[cols["date_end"]], where) if cols["date_end"] is not None else start_day
        if end_day < start_day:
            raise ResultsError(f"{where}: the reporting end {end_day} is before its start {start_day}")
        impressions = _number(cell("impressions"), header[cols["impressions"]], where, integer=True)
        clicks = _number(cell("clicks"), header[cols["clicks"]], where, integer=True)
        if clicks > impressions:
            raise ResultsError(f"{where}: {clicks} clicks but only {impressions} impressions")
        conversions = _number(cell("conversions"), "conversions", where, integer=True) if cols["conversions"] is not None else 0
        spend = _number(cell("spend"), "spend", where, integer=False) if cols["spend"] is not None else None
        rows.append(Row(n, (cell("url") or cell("ad_name")).strip(), start_day, end_day, impressions, clicks,
                        conversions, spend, creative_id=_creative_of(cell("url"), cell("ad_name"))))
    if not rows:
        raise ResultsError(f"{path}: no ad rows under the header")
    return rows


def _creative_of(url: str, ad_name: str) -> str | None:
    """The creative a row names: utm_content in its URL, else a creative id in its ad name."""
    if url.strip():
        content = parse_qs(urlsplit(url.strip()).query).get("utm_content")
        if content:
            return content[0]
    found = _CREATIVE_ID.search(ad_name)
    return found.group(0) if found else None


def import_results(ctx: Context, campaign_id: str, path: Path, platform: str, replace: bool = False) -> Imported:
    """Store a platform export's rows against the campaign's creatives, all or nothing."""
    rows = parse(path, platform)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    first, last = min(r.date_start for r in rows), max(r.date_end for r in rows)
    result = Imported()
    with ctx.db() as s, s.begin():
        if s.get(records.Campaign, campaign_id) is None:
            raise LookupError(f"no campaign {campaign_id!r}; see 'adgen campaign list'")
        known = set(s.scalars(select(records.Creative.id).where(records.Creative.campaign_id == campaign_id)))
        for r in rows:
            if r.creative_id not in known:
                r.creative_id = None
                result.unmatched.append(r)
        if s.scalar(select(records.Result.id).where(records.Result.campaign_id == campaign_id,
                                                    records.Result.file_hash == digest).limit(1)) is not None:
            result.already = True
            return result
        overlapping = (records.Result.campaign_id == campaign_id, records.Result.platform == platform,
                       records.Result.date_start <= last, records.Result.date_end >= first)
        existing = s.scalars(select(records.Result).where(*overlapping)).all()
        if existing and not replace:
            span = f"{min(e.date_start for e in existing)} to {max(e.date_end for e in existing)}"
            raise ResultsError(f"{path.name}: {first} to {last} overlaps {platform} results already imported for "
                               f"{span}; give --replace to replace them")
        if existing:
            s.execute(delete(records.Result).where(*overlapping))
            result.replaced = len(existing)
        for r in rows:
            if r.creative_id is None:
                continue
            s.add(records.Result(campaign_id=campaign_id, creative_id=r.creative_id, platform=platform, ad=r.ad[:500],
                                 date_start=r.date_start, date_end=r.date_end, impressions=r.impressions,
                                 clicks=r.clicks, conversions=r.conversions, spend=r.spend, file_hash=digest,
                                 line=r.line))
            result.stored += 1
    return result
