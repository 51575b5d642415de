"""The web app on S3 storage: creatives reach the browser through short-lived presigned URLs, never
through the web server's disk."""

import io
import time
import urllib.parse
import urllib.request
import uuid

import pytest
from gradio_client import Client
from PIL import Image

from tests.test_backends import S3_ENV, s3_server  # noqa: F401 -- the moto server fixture
from tests.test_ui import AUDIENCES, PRODUCTS
from tests.webapp import USERS, running_ui


@pytest.fixture(scope="module")
def server(tmp_path_factory, s3_server, default_models):  # noqa: F811
    import boto3

    bucket = f"creatives-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket=bucket)
    env = {**S3_ENV, "ADGEN_STORAGE_URL": f"s3://{bucket}/prod", "ADGEN_S3_ENDPOINT_URL": s3_server}
    root = tmp_path_factory.mktemp("webapp-s3")
    with running_ui(root, env=env) as url:
        yield url, root


def test_s3_creatives_are_shown_through_presigned_urls(server, s3_server):  # noqa: F811
    server, root = server
    # download_files=False: the client would fetch a URL through the server's file route, which
    # (rightly) refuses; the page's browser loads it from S3 directly.
    alice = Client(server, auth=("alice", USERS["alice"][0]), verbose=False, download_files=False)
    bid = alice.predict(api_name="/whoami")[1]["value"]
    cid = alice.predict(bid, "s3-launch", PRODUCTS, AUDIENCES, ["meta_feed"], 1, 3, "", "", api_name="/create_campaign")[0]["value"]
    deadline = time.monotonic() + 180
    while "1 of 1 jobs finished, 1 creatives" not in (view := alice.predict(cid, "all", "all", "all", api_name="/campaign"))[0]:
        assert time.monotonic() < deadline, view[0]
        time.sleep(1)
    url = view[1][0]["image"]["url"]
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    assert url.startswith(s3_server) and query["X-Amz-Expires"] == ["600"] and "X-Amz-Signature" in query
    with Image.open(io.BytesIO(urllib.request.urlopen(url).read())) as im:
        assert im.size == (1080, 1080)
    # the creative's own view is presigned too, and nothing of it was written to the server's disk
    detail = alice.predict(f"{cid}-000-0", api_name="/creative")
    assert detail[0][0]["image"]["url"].startswith(s3_server)
    assert not list(root.rglob("*.png"))
