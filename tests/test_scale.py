"""What must not grow with the records: `campaign list` and `campaign show` ask the database the same
number of queries for 2 campaigns as for 200 (counted with SQLAlchemy's cursor events, on both
backends), and the brand adapters resident on a model stay under a cap in bytes, least recently
used evicted first, on real PEFT adapters of different sizes."""

import json

from sqlalchemy import event
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from adgen import records
from adgen.settings import Settings
from tests.test_backends import postgres  # noqa: F401  (fixture)
from tests.test_records import database  # noqa: F401  (fixture: SQLite and PostgreSQL)

MODEL = {"ref": "default", "path": "/models/text", "hash": "0123456789abcdef"}


def _add_campaigns(url: str, first: int, count: int, creatives: int = 3) -> None:
    """`count` campaigns, each of its own brand, with two jobs and `creatives` creatives (the first
    approved, every other one fixed by the compliance loop), written straight to the records."""
    with Session(records.engine_for(url)) as s, s.begin():
        for i in range(first, first + count):
            brand = records.Brand(id=f"b{i:04d}", name=f"brand {i}")
            campaign = records.Campaign(id=f"c{i:04d}", name=f"campaign-{i}", brand=brand, spec={}, status="done",
                                        text_model=MODEL, image_model=MODEL)
            jobs = [records.Job(id=f"c{i:04d}-j{k}", campaign=campaign, position=k, product="p", audience="a",
                                placement="google_rsa", variants=creatives, seed=k, status=("done", "failed")[k],
                                error=None if k == 0 else "out of memory") for k in range(2)]
            s.add_all([brand, campaign, *jobs])
            s.flush()
            s.add_all(records.Creative(
                id=f"c{i:04d}-{v}", campaign_id=campaign.id, job_id=jobs[0].id, variant=v, product="p", audience="a",
                placement="google_rsa", status="approved" if v == 0 else "pending", copy={"headline": ["Hi"]},
                compliance={"ok": v % 3 != 2, "issues": []}, lineage={"fixes": [{"field": "headline"}] if v % 2 else []},
            ) for v in range(creatives))


def _queries(url: str, *args: str) -> tuple[int, str]:
    """The statements one in-process `adgen` command sends to the records database, and its output."""
    from cli.main import app

    statements = []
    engine = records.engine_for(url)
    count = lambda *_: statements.append(1)  # noqa: E731
    event.listen(engine, "before_cursor_execute", count)
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert result.exit_code == 0, result.output
    return len(statements), result.stdout


def test_campaign_list_and_show_ask_as_many_queries_for_200_campaigns_as_for_2(database):  # noqa: F811
    url = Settings().database
    _add_campaigns(url, 0, 2)
    few_list, listed = _queries(url, "campaign", "list")
    few_show, _ = _queries(url, "campaign", "show", "c0000", "--json")
    assert len(listed.splitlines()) == 1 + 2

    _add_campaigns(url, 2, 197)
    _add_campaigns(url, 199, 1, creatives=200)
    many_list, listed = _queries(url, "campaign", "list")
    many_show, shown = _queries(url, "campaign", "show", "c0199", "--json")

    assert (few_list, few_show) == (many_list, many_show) == (1, 3)
    rows = [line.split() for line in listed.splitlines()[1:]]
    assert len(rows) == 200
    assert rows[0][:6] == ["c0000", "campaign-0", "brand", "0", "done", "3"] and rows[0][6] == "1"
    assert rows[-1][5:7] == ["200", "1"]
    info = json.loads(shown)
    assert info["brand"] == "brand 199" and info["total"] == 200
    assert info["creatives"] == {"approved": 1, "pending": 199}
    assert info["jobs"] == {"done": 1, "failed": 1} and info["failed_jobs"] == [{"id": "c0199-j1", "error": "out of memory"}]
    assert info["compliance"] == {"pass": 134, "fail": 66, "fixed": 100}
