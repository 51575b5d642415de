"""The production backends, over real connections: records on PostgreSQL, assets on an S3 server
(moto's standalone server process, spoken to over HTTP with boto3)."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from adgen.provenance import with_xmp, without_manifest
from adgen.settings import Settings
from adgen.storage import S3Storage, open_storage
from tests.conftest import EXAMPLE, adgen

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
S3_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    port = _free_port()
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=0.2)
            break
        except OSError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3(s3_server, monkeypatch):
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    bucket = f"creatives-{uuid.uuid4().hex[:8]}"
    import boto3

    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    monkeypatch.setenv("ADGEN_STORAGE_URL", f"s3://{bucket}/prod")
    monkeypatch.setenv("ADGEN_S3_ENDPOINT_URL", s3_server)
    return s3_server, bucket


@pytest.fixture
def postgres(monkeypatch):
    psycopg = pytest.importorskip("psycopg")
    name = f"adgen_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is needed (.ci/run starts it): {e}")
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    monkeypatch.setenv("ADGEN_DATABASE_URL", url)
    yield url
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_s3_storage_roundtrip_and_presigned_url(s3):
    endpoint, bucket = s3
    storage = open_storage(Settings())
    assert isinstance(storage, S3Storage)
    assert not storage.exists("campaigns/x/0.png")
    storage.put("campaigns/x/0.png", b"\x89PNG fake", "image/png")
    assert storage.exists("campaigns/x/0.png") and storage.get("campaigns/x/0.png") == b"\x89PNG fake"
    storage.put("campaigns/x/0.png", b"\x89PNG again", "image/png")  # same key: overwritten, not duplicated
    import boto3

    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["prod/campaigns/x/0.png"]
    with urllib.request.urlopen(storage.url("campaigns/x/0.png", expires=60)) as response:
        assert response.read() == b"\x89PNG again"


def test_campaign_on_postgresql_and_s3(postgres, s3, tmp_path, home, default_models):
    data = yaml.safe_load(EXAMPLE.read_text())
    data.update(placements=["meta_feed", "google_rsa"], variants=2, audiences=data["audiences"][:1])
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    campaign_id = json.loads(adgen("campaign", "run", str(spec), "--json").stdout)["campaign_id"]
    assert campaign_id in adgen("campaign", "list").stdout
    adgen("review", "approve", campaign_id, "--all")
    out = tmp_path / "bundle"
    adgen("campaign", "export", campaign_id, "--out", str(out))
    entries = json.loads((out / "creatives.json").read_text())
    assert len(entries) == 4 and {e["status"] for e in entries} == {"approved"}
    feed = [e for e in entries if e["placement"] == "meta_feed"]
    assert all((out / e["image"]).read_bytes().startswith(b"\x89PNG") for e in feed)
    shown = json.loads(adgen("creative", "show", feed[0]["id"]).stdout)
    with urllib.request.urlopen(shown["image_url"]) as response:  # presigned: no credentials needed
        # the exported file is the stored image, XMP-marked and C2PA-signed on the way out
        assert with_xmp(response.read()) == without_manifest((out / feed[0]["image"]).read_bytes())
    assert not (home / "adgen.db").exists() and not (home / "storage").exists()  # nothing went local

    import psycopg

    with psycopg.connect(postgres.replace("+psycopg", "")) as conn:
        assert conn.execute("select count(*) from creatives where status = 'approved'").fetchone()[0] == 4
