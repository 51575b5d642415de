"""The records: brands, campaigns, jobs, creatives, reviews, results from the ad platforms and the web
app's accounts, in SQLAlchemy 2.

SQLite under ADGEN_HOME by default; ADGEN_DATABASE_URL selects another database (PostgreSQL in
production). A creative row carries its whole lineage, so it can be explained and re-rendered.

The schema is versioned with Alembic (adgen/migrations). An empty database is created from these
models and stamped with the newest revision on first use, without loading Alembic; a database at an
older revision is refused until `adgen db upgrade` migrates it.
"""

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from adgen.settings import Settings

SCHEMA_REVISION = "0007"  # the head of adgen/migrations/versions (0004 chains after 0005, 0006 after 0004, 0007 after 0006); a test keeps them in step
MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaError(RuntimeError):
    """The records database is at another schema revision than this adgen needs."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    return uuid.uuid4().hex[:12]


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class Brand(Base):
    __tablename__ = "brands"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    voice: Mapped[str] = mapped_column(Text, default="")
    banned_terms: Mapped[list] = mapped_column(default=list)
    colors: Mapped[list] = mapped_column(default=list)
    logo_key: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=_now)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"))
    spec: Mapped[dict]  # the validated spec, as written by the user
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, running, done, failed, cancelled
    text_model: Mapped[dict]  # {"ref", "path", "hash"}
    image_model: Mapped[dict]
    created_at: Mapped[datetime] = mapped_column(default=_now)
    # The in-process runner making this campaign's jobs (host/pid) and until when its lease holds: at
    # most one runner per campaign, whichever process or machine starts it (adgen.recovery).
    runner: Mapped[str | None] = mapped_column(String(200))
    runner_until: Mapped[datetime | None]

    brand: Mapped[Brand] = relationship()
    jobs: Mapped[list["Job"]] = relationship(back_populates="campaign", order_by="Job.position")


class Job(Base):
    """One product x audience x placement cell of a campaign, asking for `variants` creatives."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    product: Mapped[str] = mapped_column(String(200))
    audience: Mapped[str] = mapped_column(String(200))
    placement: Mapped[str] = mapped_column(String(100))
    variants: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, running, done, failed, cancelled
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lost: Mapped[int] = mapped_column(Integer, default=0)  # runs lost with their worker (a child that died, a dead machine)
    queued_at: Mapped[datetime | None]  # when last sent to the workers; the reconciler's clock for lost messages
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # host/pid of the process that ran it last
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    replaces: Mapped[str | None] = mapped_column(String(40))  # the creative this job makes again with a new seed
    alternatives: Mapped[list | None]  # candidate copies best-of-N did not choose, with their scores

    campaign: Mapped[Campaign] = relationship(back_populates="jobs")


class Creative(Base):
    __tablename__ = "creatives"
    __table_args__ = (UniqueConstraint("job_id", "variant"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    variant: Mapped[int] = mapped_column(Integer)
    product: Mapped[str] = mapped_column(String(200))
    audience: Mapped[str] = mapped_column(String(200))
    placement: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, approved, rejected
    copy: Mapped[dict]  # field -> list of texts
    image_key: Mapped[str | None] = mapped_column(String(500))  # the finished creative
    background_key: Mapped[str | None] = mapped_column(String(500))  # the model's image before layout
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    # the placement's other (`also`) sizes laid out from the same background: "WxH" -> storage key
    other_sizes: Mapped[dict | None] = mapped_column(JSON)
    compliance: Mapped[dict]
    scores: Mapped[dict | None]  # adgen.score: overall 0-100 and its components; none on creatives made before scoring
    lineage: Mapped[dict]
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)
    # Raised by every change: an update made from an older version fails (StaleDataError), so of two
    # reviewers acting on what they saw, one wins and the other is told it changed.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))  # approve, reject, edit, swap
    reviewer: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict | None]
    after: Mapped[dict | None]
    created_at: Mapped[datetime] = mapped_column(default=_now)


class Result(Base):
    """What one creative did on an ad platform over a date range: one row of a platform's export."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), index=True)
    platform: Mapped[str] = mapped_column(String(20))  # google, meta, linkedin, x
    ad: Mapped[str] = mapped_column(String(500))  # the ad name or final URL the row was matched on
    date_start: Mapped[date]
    date_end: Mapped[date]
    impressions: Mapped[int] = mapped_column(Integer)
    clicks: Mapped[int] = mapped_column(Integer)
    conversions: Mapped[int] = mapped_column(Integer)
    spend: Mapped[float | None] = mapped_column(Float)
    file_hash: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of the imported file
    line: Mapped[int] = mapped_column(Integer)  # the row's line in that file
    imported_at: Mapped[datetime] = mapped_column(default=_now)


class User(Base):
    """An advertiser account of the web app. The password is stored only as a salted hash."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=_now)


class BrandAccess(Base):
    """Which brands a user may work on: their brand kits, campaigns, creatives and exports."""

    __tablename__ = "brand_access"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), primary_key=True)


_engines: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    if url not in _engines:
        engine = _engine(url)
        _prepare(engine)
        _engines[url] = engine
    return _engines[url]


def _engine(url: str) -> Engine:
    # pool_pre_ping: a worker outlives database restarts; a dropped connection is replaced, not used.
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):
            # WAL lets readers (the report, the UI) work while a runner writes.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
    return engine


def _prepare(engine: Engine) -> None:
    """Create an empty database at the newest revision; refuse one at another revision."""
    with engine.begin() as conn:
        tables = set(inspect(conn).get_table_names())
        if not tables & set(Base.metadata.tables):
            Base.metadata.create_all(conn)
            conn.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL, "
                              "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": SCHEMA_REVISION})
            return
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar() if "alembic_version" in tables else None
    if version != SCHEMA_REVISION:
        raise SchemaError(f"the records database is at schema revision {version or 'none (made before migrations)'}; "
                          f"this adgen needs {SCHEMA_REVISION}: run 'adgen db upgrade'")


def upgrade(url: str) -> tuple[str | None, str]:
    """Migrate the database to the newest revision; returns (revision before, revision after). A
    database made before migrations existed (adgen 0.1) is recognised as revision 0001."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = _engine(url)
    with engine.begin() as conn:
        tables = set(inspect(conn).get_table_names())
        before = conn.execute(text("SELECT version_num FROM alembic_version")).scalar() if "alembic_version" in tables else None
        config.attributes["connection"] = conn
        if before is None and "jobs" in tables:
            command.stamp(config, "0001")
            before = "0001"
        command.upgrade(config, "head")
        after = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    _engines.pop(url, None)
    return before, after


def open_db(settings: Settings) -> sessionmaker[Session]:
    """A session factory for the configured database, creating the schema on first use."""
    if settings.database.startswith("sqlite:///"):
        settings.home.mkdir(parents=True, exist_ok=True)
    return sessionmaker(engine_for(settings.database), expire_on_commit=False)
