"""Reviews are never undone, on PostgreSQL with real concurrent sessions: approve refuses what is no
longer pending, an edit racing an approval (or two regenerates of one creative) ends with one winner
and a clear message for the other, a late run of a job leaves reviewed creatives alone, and creating
a campaign never changes the brand kit (each campaign keeps a snapshot; export checks the kit as it
is now as well)."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
import yaml

from adgen import records
from adgen.context import Context
from adgen.export import ExportError, export_campaign
from adgen.jobs import (
    RunnerBusy,
    claim,
    create_campaign,
    drop_runner,
    job_counts,
    regenerate,
    run_campaign,
    run_job,
    runner_of,
    take_runner,
)
from adgen.review import ReviewError, approve, edit, reject
from adgen.settings import Settings
from adgen.spec import parse_spec
from tests.conftest import EXAMPLE, MODELS, REPO, adgen
from tests.test_backends import PG_ADMIN

CHANGED = "changed since you opened it"


def _data(name: str, **brand) -> dict:
    data = yaml.safe_load(EXAMPLE.read_text())
    data.update(campaign=name, placements=["meta_feed"], variants=4, audiences=data["audiences"][:1])
    for product in data["products"]:
        product["images"] = []  # the image model paints the whole picture: the fastest image job
    data["brand"].update(brand)
    return data


@pytest.fixture(scope="module")
def world(tmp_path_factory, default_models):
    """A PostgreSQL database and a home of this module's own, with one campaign of 4 creatives made."""
    psycopg = pytest.importorskip("psycopg")
    name = f"adgen_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    admin.execute(f'CREATE DATABASE "{name}"')
    env = {"ADGEN_HOME": str(tmp_path_factory.mktemp("races")), "ADGEN_MODELS": str(MODELS),
           "ADGEN_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        ctx = Context(Settings())
    campaign_id = create_campaign(parse_spec(_data("races"), base_dir=REPO), ctx)
    assert run_campaign(campaign_id, ctx) == {"done": 1}
    yield env, ctx, campaign_id
    records._engines.pop(env["ADGEN_DATABASE_URL"]).dispose()
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _creative(ctx: Context, creative_id: str) -> records.Creative:
    with ctx.db() as s:
        return s.get(records.Creative, creative_id)


def _race(*calls) -> list:
    """Run the calls at once, each in its own thread (its own database session); returns what each
    returned or raised."""
    start, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        start.wait()
        try:
            results[i] = call()
        except Exception as e:  # noqa: BLE001  (the race's outcome is what the test checks)
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_approve_refuses_what_is_no_longer_pending_and_what_changed_since_it_was_seen(world):
    _, ctx, campaign_id = world
    job = f"{campaign_id}-000"
    reject(ctx, campaign_id, [f"{job}-0"], "rita", "off brand")
    with pytest.raises(ReviewError, match=r"is rejected, no longer pending"):
        approve(ctx, campaign_id, [f"{job}-0"], "alice")
    seen = _creative(ctx, f"{job}-1").version
    edit(ctx, f"{job}-1", "headline", 0, "Cold brew, your way", "bob", seen=seen)
    with pytest.raises(ReviewError, match=CHANGED):  # what alice saw was the creative before bob's edit
        approve(ctx, campaign_id, [f"{job}-1"], "alice", seen={f"{job}-1": seen})
    assert _creative(ctx, f"{job}-1").status == "pending"
    approve(ctx, campaign_id, [f"{job}-1"], "alice", seen={f"{job}-1": _creative(ctx, f"{job}-1").version})
    assert _creative(ctx, f"{job}-1").status == "approved"


def test_an_edit_and_an_approve_racing_on_one_creative_have_exactly_one_winner(world):
    env, ctx, campaign_id = world
    creative_id = f"{campaign_id}-000-2"
    before = _creative(ctx, creative_id)
    image_before = ctx.storage.get(before.image_key)
    for round_ in range(3):
        seen = _creative(ctx, creative_id).version
        text = f"Cold brew, round {round_}"
        outcome = _race(lambda: edit(ctx, creative_id, "headline", 0, text, "bob", seen=seen),  # noqa: B023
                        lambda: approve(ctx, campaign_id, [creative_id], "alice", seen={creative_id: seen}))  # noqa: B023
        lost = [r for r in outcome if isinstance(r, Exception)]
        assert len(lost) == 1 and isinstance(lost[0], ReviewError) and CHANGED in str(lost[0]), outcome
        after = _creative(ctx, creative_id)
        if isinstance(outcome[0], Exception):  # the approval won: nothing of the edit is left anywhere
            assert after.status == "approved" and after.copy == before.copy
            assert ctx.storage.get(after.image_key) == image_before
            break
        assert after.status == "pending" and after.copy["headline"][0] == text  # the edit won
        assert ctx.storage.get(after.image_key) != image_before
        before, image_before = after, ctx.storage.get(after.image_key)
    with ctx.db() as s:
        actions = [r.action for r in s.query(records.Review).filter_by(creative_id=creative_id)]
    assert actions.count("approve") <= 1


def test_two_concurrent_regenerates_of_one_creative_do_not_collide(world):
    _, ctx, campaign_id = world
    creative_id = f"{campaign_id}-000-3"
    seen = _creative(ctx, creative_id).version
    first = _race(lambda: regenerate(ctx, creative_id, 11, "alice"), lambda: regenerate(ctx, creative_id, 12, "bob"))
    assert all(isinstance(r, str) for r in first) and first[0] != first[1], first  # two new jobs, no IntegrityError
    # Two reviewers who both saw the same version: one regenerates, the other is told it changed.
    seen = _creative(ctx, creative_id).version
    second = _race(lambda: regenerate(ctx, creative_id, 13, "alice", seen=seen),
                   lambda: regenerate(ctx, creative_id, 14, "bob", seen=seen))
    assert sum(isinstance(r, str) for r in second) == 1, second
    assert any(isinstance(r, ReviewError) and CHANGED in str(r) for r in second), second
    with ctx.db() as s:
        jobs = [j.id for j in s.get(records.Campaign, campaign_id).jobs if j.replaces == creative_id]
    assert sorted(jobs) == sorted([*first, *(r for r in second if isinstance(r, str))])


def test_a_campaign_held_by_a_runner_elsewhere_is_left_to_it(world):
    """The runner lease lives in the records: a runner of another process or machine holds the
    campaign until it lets go or its lease runs out, and no second runner starts beside it."""
    _, ctx, campaign_id = world
    assert take_runner(campaign_id, ctx, "elsewhere/4242")
    with pytest.raises(RunnerBusy, match="a runner is active \\(elsewhere/4242\\)"):
        run_campaign(campaign_id, ctx)
    assert runner_of(campaign_id, ctx) == "elsewhere/4242" and not take_runner(campaign_id, ctx, "here/1")
    with ctx.db.begin() as s:  # its machine died: the lease runs out
        s.get(records.Campaign, campaign_id).runner_until = records._now() - timedelta(seconds=1)
    assert runner_of(campaign_id, ctx) is None and take_runner(campaign_id, ctx, "here/1")
    drop_runner(campaign_id, ctx, "here/1")
    assert runner_of(campaign_id, ctx) is None


def test_a_late_run_of_a_job_never_undoes_a_review(world, tmp_path):
    _, ctx, campaign_id = world
    job_id = f"{campaign_id}-000"
    shown = {c: _creative(ctx, f"{job_id}-{c}") for c in range(4)}
    images = {c: ctx.storage.get(row.image_key) for c, row in shown.items()}
    with ctx.db.begin() as s:  # the job given back to pending, as the reconciler does when a run is lost
        s.get(records.Job, job_id).status = "pending"
    assert run_job(job_id, ctx) == "done"
    for c, row in shown.items():
        now = _creative(ctx, f"{job_id}-{c}")
        assert (now.status, now.copy, ctx.storage.get(now.image_key)) == (row.status, row.copy, images[c]), c
    assert not claim(job_id, ctx)  # done: a delivery again is skipped


def test_creating_a_campaign_never_changes_the_brand_kit(world, tmp_path, monkeypatch):
    env, ctx, campaign_id = world
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    brand = "Northwind Coffee"
    kit = {"voice": "warm, witty, never pushy", "banned_terms": ["cheap", "guarantee"],
           "colors": ["#3B2A20", "#F2E8DC", "#C8553D"]}
    assert adgen("brand", "set", brand, "--banned-terms", "cheap, guarantee, miracle").returncode == 0
    kit["banned_terms"].append("miracle")
    # A spec that would wipe the banned terms and change the voice and colours, for everyone on the brand.
    wiping = parse_spec(_data("wiping", banned_terms=[], voice="shouty", colors=["#000000"]), base_dir=REPO)
    wiped = create_campaign(wiping, ctx)
    with ctx.db() as s:
        b = s.get(records.Campaign, wiped).brand
        assert {"voice": b.voice, "banned_terms": b.banned_terms, "colors": b.colors} == kit
        snapshot = s.get(records.Campaign, wiped).spec["brand_kit"]
    assert {k: snapshot[k] for k in kit} == kit  # the campaign keeps the kit it was made with

    # The kit changes after the campaign was made: export checks the kit as it is now as well.
    job_id = f"{campaign_id}-000"
    creative = next(c for c in (_creative(ctx, f"{job_id}-{v}") for v in range(4)) if c.status == "approved")
    word = next(w for w in (w.strip(".,!?:;") for w in creative.copy["headline"][0].split())
                if len(w) > 3 and w.lower() not in creative.product.lower())
    result = adgen("brand", "set", brand, "--banned-terms", f"cheap, guarantee, miracle, {word}")
    assert result.returncode == 0
    with pytest.raises(ExportError, match=rf"{creative.id} no longer passes its checks \(.*banned term '{word}'"):
        export_campaign(ctx, campaign_id, tmp_path / "bundle")
    bad = adgen("brand", "set", brand, "--colors", "teal", check=False)
    assert bad.returncode == 2 and "--colors" in bad.stderr and "#RRGGBB" in bad.stderr


def test_the_pages_poll_gives_up_on_a_lost_run_and_starts_a_runner(world):
    """No broker: a regenerated job whose runner died with its machine an hour ago, and others left
    pending. The web app's poll of the campaign gives up on the lost run and starts a runner (a
    `campaign resume` process), which makes them all, so the page does not poll forever."""
    from ui.jobs import look_after

    _, ctx, campaign_id = world
    with ctx.db() as s:
        waiting = [j.id for j in s.get(records.Campaign, campaign_id).jobs if j.status == "pending"]
    assert len(waiting) == 3  # the regenerates above
    with ctx.db.begin() as s:
        job = s.get(records.Job, waiting[0])
        job.status, job.started_at, job.attempts = "running", records._now() - timedelta(hours=1), 1
    look_after(campaign_id, ctx)
    deadline = time.monotonic() + 120
    while (counts := job_counts(campaign_id, ctx)).get("pending") or counts.get("running"):
        assert time.monotonic() < deadline, counts
        time.sleep(0.2)
    with ctx.db() as s:
        jobs = {j.id: j for j in s.get(records.Campaign, campaign_id).jobs}
    assert all(jobs[j].status == "done" for j in waiting)
    assert (jobs[waiting[0]].lost, jobs[waiting[0]].attempts) == (1, 2)
