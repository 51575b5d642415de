"""The records on both backends, SQLite and PostgreSQL: Alembic migrations that match the models, a
database from before migrations upgraded in place, and the job state changes that make delivery
at least once and effects exactly once (claim, takeover, late failures, cancel, retry-failed)."""

import time

import pytest
import sqlalchemy as sa
import yaml

from adgen import jobs as job_state
from adgen import records
from adgen.context import Context
from adgen.settings import Settings
from adgen.spec import parse_spec
from tests.conftest import EXAMPLE, REPO, adgen
from tests.test_backends import postgres  # noqa: F401  (fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, home) -> str:
    if request.param == "sqlite":
        home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{home / 'adgen.db'}"
    return request.getfixturevalue("postgres")


def _schema(url: str) -> dict:
    engine = sa.create_engine(url)
    found = sa.inspect(engine)
    schema = {t: sorted((c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(t)) for t in found.get_table_names()}
    engine.dispose()
    return schema


def test_migrations_build_the_same_schema_as_first_use(database):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    start = time.perf_counter()
    records.engine_for(database)  # an empty database opened by adgen: made from the models, stamped
    assert time.perf_counter() - start < 2
    first_use = _schema(database)
    with sa.create_engine(database).connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() == records.SCHEMA_REVISION

    engine = sa.create_engine(database)
    with engine.begin() as conn:
        records.Base.metadata.drop_all(conn)
        conn.execute(sa.text("drop table alembic_version"))
    assert _schema(database) == {}
    assert records.upgrade(database) == (None, records.SCHEMA_REVISION)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), records.Base.metadata) == []
    engine.dispose()
    assert _schema(database) == first_use
    from alembic.script import ScriptDirectory

    assert ScriptDirectory(str(records.MIGRATIONS)).get_current_head() == records.SCHEMA_REVISION


def test_a_database_from_before_migrations_is_refused_then_upgraded(database, monkeypatch):
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(records.MIGRATIONS))
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(sa.text("drop table alembic_version"))  # as adgen 0.1 left it: tables, no history
    engine.dispose()
    monkeypatch.setenv("ADGEN_DATABASE_URL", database)

    result = adgen("campaign", "show", "nothing", check=False)
    assert result.returncode == 2 and "adgen db upgrade" in result.stderr
    assert f"records at schema {records.SCHEMA_REVISION} (was 0001)" in adgen("db", "upgrade").stdout
    assert f"records at schema {records.SCHEMA_REVISION}" in adgen("db", "upgrade").stdout  # idempotent
    assert "no campaign 'nothing'" in adgen("campaign", "show", "nothing", check=False).stderr
    assert {"queued_at", "claimed_by"} <= {c for c, _, _ in _schema(database)["jobs"]}


def test_job_states_on_both_backends(database, monkeypatch, default_models):
    monkeypatch.setenv("ADGEN_DATABASE_URL", database)
    ctx = Context(Settings())
    data = yaml.safe_load(EXAMPLE.read_text())
    data.update(placements=["google_rsa", "meta_feed", "x_promoted"], audiences=data["audiences"][:1])
    campaign_id = job_state.create_campaign(parse_spec(data, base_dir=REPO), ctx)
    first, second, third = (j.id for j in _jobs(ctx, campaign_id))

    assert job_state.claim(first, ctx) == 1
    assert not job_state.claim(first, ctx)  # running: a second delivery never takes it over
    with ctx.db.begin() as s:
        s.get(records.Job, first).status = "done"
    job_state.fail(first, ctx, RuntimeError("late failure of a duplicate run"))
    assert job_state.claim(second, ctx)
    job_state.fail(second, ctx, RuntimeError("model folder missing"))
    assert job_state.job_counts(campaign_id, ctx) == {"done": 1, "failed": 1, "pending": 1}

    assert job_state.cancel_campaign(campaign_id, ctx) == 1
    assert not job_state.claim(third, ctx)  # cancelled: a queued message for it is skipped
    assert job_state.reset_failed(campaign_id, ctx) == [second]
    jobs = {j.id: j for j in _jobs(ctx, campaign_id)}
    assert (jobs[first].status, jobs[second].status, jobs[third].status) == ("done", "pending", "cancelled")
    assert jobs[second].error is None and jobs[first].error is None
    assert jobs[first].attempts == 1 and jobs[first].claimed_by

    job_state.claim(second, ctx)
    job_state.release(second, ctx, ConnectionError("storage unreachable"))
    job = _jobs(ctx, campaign_id)[1]
    assert job.status == "pending" and "ConnectionError" in job.error and job.queued_at
    assert job_state.is_transient(ConnectionError()) and not job_state.is_transient(FileNotFoundError())


def _jobs(ctx, campaign_id):
    with ctx.db() as s:
        return s.get(records.Campaign, campaign_id).jobs
