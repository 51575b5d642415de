"""One settings object, read from the environment (ADGEN_*).

Everything a user made lives under ADGEN_HOME unless a setting points elsewhere, so two homes never
see each other's data.
"""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADGEN_", extra="ignore")

    home: Path = Field(default=Path("~/.adgen"), description="Folder for default models, the embedded database and local storage.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the records database; default: SQLite under home.")
    storage_url: str | None = Field(default=None, description="Local folder or s3://bucket/prefix for assets; default: a folder under home.")
    s3_endpoint_url: str | None = Field(default=None, description="Endpoint of an S3-compatible server (MinIO, moto); default: AWS.")
    models: Path | None = Field(default=None, description="Folder of the offline default models; default: models/ under home.")
    torch_threads: int | None = Field(default=None, ge=1, description="torch CPU threads per process; default: one per core. `adgen worker` sets it per child. Images are byte-identical between runs only at the same thread count.")
    device: str | None = Field(default=None, description="torch device for models (cpu, cuda, cuda:1); default: cuda when present.")
    broker_url: str | None = Field(default=None, description="Celery broker (redis://host:6379/0): campaigns run on `adgen worker` processes; default: in-process.")
    c2pa_cert: Path | None = Field(default=None, description="PEM certificate chain (signer first, then intermediates) that signs the C2PA manifest of every exported image; default: the local test chain `adgen init` makes under home (for testing only, trusted by no one).")
    c2pa_key: Path | None = Field(default=None, description="PEM private key of c2pa_cert; set both or neither.")
    c2pa_alg: str = Field(default="es256", description="Signing algorithm of c2pa_key (es256, es384, ps256, ed25519, ...).")
    job_time_limit: int = Field(default=1800, ge=10, description="Seconds one job may run on a worker before it is killed; the broker's redelivery timeout and the reconciler are derived from it.")
    signin_attempts: int = Field(default=5, ge=1, description="Failed sign-ins allowed per account and per client address in `signin_window` seconds; more are refused, without checking the password, until the oldest ages out.")
    signin_window: int = Field(default=60, ge=1, description="Seconds over which failed sign-ins are counted.")
    session_idle: int = Field(default=2 * 3600, ge=1, description="Seconds a web app session may go unused before it ends.")
    session_max: int = Field(default=24 * 3600, ge=1, description="Seconds after sign-in a web app session ends however busy it is.")
    ui_origins: list[str] = Field(default=[], description="Extra origins (https://ads.example.com) allowed to send requests that change something, when a proxy changes the Host header; the app's own origin is always allowed.")
    adapter_bytes: int | None = Field(default=None, ge=1, description="Most bytes of brand adapters (the sizes of their files) kept loaded on each resident model; loading one more first deletes the least recently used until it fits. Default: no byte cap, only the count (8 text, 4 image adapters).")
    max_jobs: int = Field(default=500, ge=1, description="Most jobs (products x audiences x placements) one campaign may have.")
    max_creatives: int = Field(default=5000, ge=1, description="Most creatives (jobs x variants) one campaign may have.")
    max_running_campaigns: int = Field(default=10, ge=1, description="Most unfinished (pending or running) campaigns one brand may have at once; another is refused until one finishes or is cancelled.")

    def model_post_init(self, _context) -> None:
        self.home = self.home.expanduser().resolve()

    @property
    def models_dir(self) -> Path:
        return self.models.expanduser().resolve() if self.models else self.home / "models"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'adgen.db'}"

    @property
    def storage(self) -> str:
        return self.storage_url or str(self.home / "storage")


def get_settings() -> Settings:
    """Read the environment now (tests and the CLI may change it between calls)."""
    return Settings()
