"""What must not grow with the records: `campaign list` and `campaign show` ask the database the same
number of queries for 2 campaigns as for 200 (counted with SQLAlchemy's cursor events, on both
backends), and the brand adapters resident on a model stay under a cap in bytes, least recently
used evicted first, on real PEFT adapters of different sizes."""

import json
import shutil

from sqlalchemy import event, select
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


def _web_app_queries(url: str, user: str) -> tuple[int, list]:
    """The statements the web app's campaign picker sends for one user, and what it lists."""
    from adgen.context import Context
    from ui.actions import my_campaigns

    statements = []
    engine = records.engine_for(url)
    count = lambda *_: statements.append(1)  # noqa: E731
    event.listen(engine, "before_cursor_execute", count)
    try:
        listed = my_campaigns(Context(Settings()), user)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements), listed


def _grant_every_brand(url: str) -> None:
    from adgen.accounts import add_user

    with Session(records.engine_for(url)) as s, s.begin():
        add_user(s, "ana", "a long enough password", list(s.scalars(select(records.Brand.name))))


def test_campaign_list_and_show_ask_as_many_queries_for_200_campaigns_as_for_2(database):  # noqa: F811
    url = Settings().database
    _add_campaigns(url, 0, 2)
    few_list, listed = _queries(url, "campaign", "list")
    few_show, _ = _queries(url, "campaign", "show", "c0000", "--json")
    _grant_every_brand(url)
    few_web, picked = _web_app_queries(url, "ana")
    assert len(listed.splitlines()) == 1 + 2 and len(picked) == 2

    _add_campaigns(url, 2, 197)
    _add_campaigns(url, 199, 1, creatives=200)
    many_list, listed = _queries(url, "campaign", "list")
    many_show, shown = _queries(url, "campaign", "show", "c0199", "--json")
    _grant_every_brand(url)
    many_web, picked = _web_app_queries(url, "ana")

    assert (few_list, few_show, few_web) == (many_list, many_show, many_web)
    assert (many_list, many_show) == (1, 3)
    assert len(picked) == 200 and picked[0][1] == "c0199" and "brand 199" in picked[0][0]
    rows = [line.split() for line in listed.splitlines()[1:]]
    assert len(rows) == 200
    assert rows[0][:6] == ["c0000", "campaign-0", "brand", "0", "done", "3"] and rows[0][6] == "1"
    assert rows[-1][5:7] == ["200", "1"]
    info = json.loads(shown)
    assert info["brand"] == "brand 199" and info["total"] == 200
    assert info["creatives"] == {"approved": 1, "pending": 199}
    assert info["jobs"] == {"done": 1, "failed": 1} and info["failed_jobs"] == [{"id": "c0199-j1", "error": "out of memory"}]
    assert info["compliance"] == {"pass": 134, "fail": 66, "fixed": 100}


def test_resident_adapters_stay_under_the_byte_cap_least_recently_used_first(default_models, tmp_path, monkeypatch):
    """Three real PEFT adapters of different ranks (so different sizes) pushed to the registry and
    switched to through the runners' own path, under ADGEN_ADAPTER_BYTES."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from adgen.adapters import adapter_files, push
    from adgen.context import Context
    from adgen.models import LoadedAdapters, folder_hash
    from adgen.resident import text_model_for

    base = tmp_path / "text"  # a copy, so this test's resident model is its own
    shutil.copytree(default_models["text"], base)
    ref = {"ref": str(base), "path": str(base), "hash": folder_hash(base)}
    ctx = Context(Settings())
    lineages, sizes = {}, {}
    for name, rank in (("a", 2), ("b", 4), ("c", 8)):
        torch.manual_seed(rank)
        peft = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=rank, init_lora_weights=False))
        peft.save_pretrained(tmp_path / name)
        lineages[name] = push(ctx.storage, tmp_path / name, brand=f"brand-{name}", kind="text",
                              base={"ref": ref["ref"], "hash": ref["hash"]}).lineage()
        sizes[name] = sum(p.stat().st_size for p in adapter_files(tmp_path / name, "text"))
    assert len(set(sizes.values())) == 3

    def use(*names: str, cap: int) -> list[str]:
        """Switch to each adapter in turn under a cap; the adapters left loaded, oldest first."""
        monkeypatch.setenv("ADGEN_ADAPTER_BYTES", str(cap))
        for name in names:
            model = text_model_for({**ref, "adapter": lineages[name]}, Context(Settings()))
        loaded = {f"adapter_{lineage['hash']}": name for name, lineage in lineages.items()}
        assert set(model.model.peft_config) == set(model.adapters)  # what peft holds is what is counted
        assert model.model.active_adapter == f"adapter_{lineages[names[-1]]['hash']}"
        assert model.complete([[{"role": "user", "content": "Coffee"}]], seed=1, max_new_tokens=2)
        return [loaded[n] for n in model.adapters]

    # c does not fit beside a and b: b, used least recently, goes; a, used again, stays.
    assert use("a", "b", "a", "c", cap=sum(sizes.values()) - 1) == ["a", "c"]
    assert use("b", cap=sum(sizes.values()) - 1) == ["c", "b"]
    # A cap below any one adapter keeps only the one in use.
    assert use("a", cap=1) == ["a"]

    # Without a byte cap, the count alone decides, as before.
    counted = LoadedAdapters(capacity=2)
    for name in ("x", "y"):
        assert counted.evict(10**9) == []
        counted.used(name, size=10**9)
    assert counted.evict(10**9) == ["x"]
