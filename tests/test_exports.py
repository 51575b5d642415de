"""Launch-ready exports, as a media buyer would check them: a small campaign on every platform runs on
the tiny models, is approved and exported through the real command line; each platform file is
parsed back with the csv module against the documented columns, its texts and limits and the
images it names; every PNG is read back for its XMP and, with c2pa's own Reader, its C2PA manifest.
No test reaches an ad platform: importing a file into a platform's tool is left to a person."""

import csv
import io
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from PIL import Image
from sqlalchemy import select

from adgen import __version__, bulk, records
from adgen.context import Context
from adgen.csvfile import write_csv
from adgen.landing import URLError, final_url
from adgen.platforms import placement
from adgen.provenance import (
    TRAINED_ALGORITHMIC_MEDIA,
    digital_source_type,
    read_manifest,
    with_xmp,
    without_manifest,
)
from adgen.settings import Settings
from adgen.spec import SpecError, parse_spec
from tests.conftest import EXAMPLE, MODELS, adgen

PLACEMENTS = ["google_rsa", "google_pmax", "meta_feed", "meta_story", "linkedin_single_image", "x_promoted"]
URL = "https://example.com/cold-brew?ref=spring"


def _spec_data(**changes) -> dict:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["products"][0]["url"] = URL
    data.update({"placements": PLACEMENTS, "variants": 1, "audiences": data["audiences"][:1], **changes})
    return data


@pytest.fixture(scope="module")
def export_home(tmp_path_factory, default_models) -> Path:
    return tmp_path_factory.mktemp("exports-home")


@pytest.fixture(scope="module")
def _campaign_id(export_home, tmp_path_factory) -> str:
    spec = tmp_path_factory.mktemp("spec") / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec_data()))
    env = {"ADGEN_HOME": str(export_home), "ADGEN_MODELS": str(MODELS)}
    info = json.loads(adgen("campaign", "run", str(spec), "--json", env=env).stdout)
    assert info["jobs"] == {"done": len(PLACEMENTS)}
    campaign_id = info["campaign_id"]
    # The tiny model's asset group may miss Google's "one description <= 60, one headline <= 15"
    # rules; a reviewer fixes it by editing, as the CLI tells them to.
    for e in _preview(campaign_id, tmp_path_factory.mktemp("check") / "p", env):
        if e["placement"] == "google_pmax" and not e["compliance"]["ok"]:
            adgen("review", "edit", e["id"], "--field", "description", "--index", "1", "--text", "Smooth cold brew in seconds.", env=env)
            adgen("review", "edit", e["id"], "--field", "headline", "--index", "4", "--text", "Cold Brew Today", env=env)
    adgen("review", "approve", campaign_id, "--all", env=env)
    return campaign_id


def _preview(campaign_id: str, out: Path, env: dict | None = None) -> list[dict]:
    adgen("campaign", "export", campaign_id, "--out", str(out), "--status", "any", env=env)
    return json.loads((out / "creatives.json").read_text())


@pytest.fixture
def campaign(_campaign_id, export_home, monkeypatch) -> str:
    monkeypatch.setenv("ADGEN_HOME", str(export_home))
    return _campaign_id


@pytest.fixture(scope="module")
def approved(_campaign_id, export_home, tmp_path_factory) -> Path:
    """The approved export of the campaign, made once for the checks below."""
    out = tmp_path_factory.mktemp("approved") / "bundle"
    adgen("campaign", "export", _campaign_id, "--out", str(out), env={"ADGEN_HOME": str(export_home)})
    return out


def _rows(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_every_platform_file_has_its_documented_columns_every_creative_and_its_images(approved):
    entries = json.loads((approved / "creatives.json").read_text())
    assert len(entries) == len(PLACEMENTS) and all(e["status"] == "approved" for e in entries)
    documented = yaml.safe_load((Path(bulk.__file__).parent / "data" / "bulk_formats.yaml").read_text())["platforms"]
    assert sorted(p.name for p in approved.iterdir() if p.is_dir()) == ["google", "images", "linkedin", "meta", "x"]
    seen = set()
    for platform, fmt in documented.items():
        for file in fmt["files"]:
            assert fmt["source"].startswith("https://")
            header, rows = _rows(approved / platform / file["name"])
            expected = []
            for col in file["columns"]:
                expected += [f"{col['header']} {n}" for n in range(1, col["repeat"] + 1)] if col.get("repeat") else [col["header"]]
            assert header == expected, file["name"]
            mine = [e for e in entries if e["placement"] in file["placements"]]
            for e in mine:
                p = placement(e["placement"])
                # one row per size on single-image platforms, one row per ad or asset group otherwise
                matching = [r for r in rows if e["id"] in (r.get("Labels") or r.get("Ad Name") or r.get("Ad name") or "")]
                assert len(matching) == (1 + len(p.image.also) if "image" in [c["value"] for c in file["columns"]] else 1)
                for row in matching:
                    seen.add(e["id"])
                    assert "PREVIEW" not in json.dumps(row)
                    _check_texts(row, file, e, p)
                    _check_url(next(v for k, v in row.items() if k in ("Final URL", "Link", "Destination URL", "Website URL")), platform, e)
                    _check_images(row, file, approved / platform, p)
    assert seen == {e["id"] for e in entries}


def _check_texts(row: dict, file: dict, entry: dict, p) -> None:
    """Every text in its own column, equal to the creative's copy, never joined, within the limit."""
    for col in file["columns"]:
        kind, _, field = col["value"].partition(":")
        if kind not in ("copy", "cta_enum"):
            continue
        texts = entry["copy"].get(field, [])
        if col.get("repeat"):
            cells = [row[f"{col['header']} {n}"] for n in range(1, col["repeat"] + 1)]
            assert [c for c in cells if c] == texts and len(texts) >= p.fields[field].count[0]
            assert all(len(c) <= p.fields[field].max for c in texts if p.fields[field].max)
        elif kind == "cta_enum":
            assert row[col["header"]] == texts[0].upper().replace(" ", "_")
        else:
            assert row[col["header"]] == (texts[0] if texts else "")
            assert " | " not in row[col["header"]]


def _check_url(url: str, platform: str, entry: dict) -> None:
    parts = urlsplit(url)
    assert url.startswith("https://example.com/cold-brew?ref=spring&")  # the product's own query kept, first
    query = parse_qs(parts.query)
    assert query == {"ref": ["spring"], "utm_source": [platform], "utm_medium": ["paid"], "utm_campaign": ["spring-launch"],
                     "utm_term": [entry["audience"]], "utm_content": [entry["id"]]}
    assert entry["final_url"] == url


def _check_images(row: dict, file: dict, folder: Path, p) -> None:
    names = [row[c["header"]] for c in file["columns"] if c["value"] == "image" or c["value"].startswith("image:")]
    if p.image is None:
        assert not names
        return
    sizes = {(p.image.width, p.image.height), *map(tuple, p.image.also)}
    for name in names:
        with Image.open(folder / name) as im:
            assert im.size in sizes and f"{im.size[0]}x{im.size[1]}" in name
            assert bulk.aspect_name(*im.size) in name
    if "logo" in [c["value"] for c in file["columns"]]:
        with Image.open(folder / row["Logo"]) as im:
            assert im.size[0] == im.size[1] >= 128  # Performance Max: a square logo
        assert {bulk.aspect_name(*Image.open(folder / n).size) for n in names} >= {"landscape", "square"}


def test_every_png_carries_the_ai_source_type_and_a_c2pa_manifest_that_validates(approved, export_home):
    root = (export_home / "c2pa-test" / "root.pem").read_bytes()  # made by the first export: none configured
    pngs = sorted(approved.rglob("*.png"))
    with_image = [placement(p) for p in PLACEMENTS if placement(p).image]
    # the generic bundle's images, every size in the platform folders, and the square logo
    assert len(pngs) == len(with_image) + sum(len(p.sizes) for p in with_image) + 1
    entries = {e["id"]: e for e in json.loads((approved / "creatives.json").read_text())}
    for path in pngs:
        data = path.read_bytes()
        assert digital_source_type(data) == TRAINED_ALGORITHMIC_MEDIA, path
        manifest, state = read_manifest(data, trust_root=root)
        assert state == "Trusted", path  # valid signature, chaining to the test root
        assert read_manifest(data)[1] == "Valid"  # without the test root: signed, but trusted by no one
        assert manifest["claim_generator_info"][0]["name"] == "adgen"
        assert manifest["claim_generator_info"][0]["version"] == __version__
        assert manifest["signature_info"]["common_name"].startswith("adgen local test certificate")
        actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))["data"]["actions"]
        created = next(a for a in actions if a["action"] == "c2pa.created")
        assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
        titles = [i["title"] for i in manifest["ingredients"]]
        if path.name.startswith("logo"):
            assert titles == ["brand logo"]
            continue
        # the example brand has a logo, and its product a photo that every image creative shows
        assert titles == ["brand logo", "product photo (cut-out)"], path
        cid = re.match(r"([0-9a-f]+-\d{3}-\d+)", path.name).group(1)
        generation = next(a for a in manifest["assertions"] if a["label"] == "org.adgen.generation")["data"]
        assert generation["creative"] == cid
        lineage = entries[cid]["lineage"]
        assert created["parameters"]["models"]["image"]["hash"] == lineage["image_model"]["hash"]
        assert created["parameters"]["models"]["text"]["ref"] == lineage["text_model"]["ref"]
    with (approved / "creatives.csv").open() as f:
        assert {r["ai_generated"] for r in csv.DictReader(f)} == {"true"}
    assert all(e["ai_generated"] is True for e in entries.values())


def test_tampered_pixels_break_the_manifest(approved, export_home):
    path = next((approved / "meta").glob("*.png"))
    data = bytearray(path.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 40] ^= 0xFF
    _, state = read_manifest(bytes(data), trust_root=(export_home / "c2pa-test" / "root.pem").read_bytes())
    assert state == "Invalid"


def test_preview_bundles_say_preview_in_every_folder_file_and_row(campaign, tmp_path):
    out = tmp_path / "preview"
    adgen("campaign", "export", campaign, "--out", str(out), "--status", "any")
    folders = [p for p in out.iterdir() if p.is_dir() and p.name != "images"]
    assert sorted(p.name for p in folders) == ["PREVIEW-google", "PREVIEW-linkedin", "PREVIEW-meta", "PREVIEW-x"]
    for folder in folders:
        for path in folder.glob("*.csv"):
            assert path.name.startswith("PREVIEW-")
            header, rows = _rows(path)
            campaign_col = header[0]
            assert rows and all(r[campaign_col].startswith("PREVIEW do not import") for r in rows)


def test_formula_like_text_is_escaped_in_every_csv(campaign, tmp_path):
    entries = _preview(campaign, tmp_path / "before")
    feed = next(e for e in entries if e["placement"] == "meta_feed")
    adgen("review", "edit", feed["id"], "--field", "primary_text", "--text", '=HYPERLINK("http://evil.test","Cold brew")')
    out = tmp_path / "after"
    adgen("campaign", "export", campaign, "--out", str(out), "--status", "any")
    _, rows = _rows(out / "creatives.csv")
    row = next(r for r in rows if r["id"] == feed["id"])
    assert row["copy.primary_text"] == "'" + '=HYPERLINK("http://evil.test","Cold brew")'
    _, meta = _rows(out / "PREVIEW-meta" / "PREVIEW-ads-manager-import.csv")
    bodies = {r["Body"] for r in meta if r["Ad Name"].startswith(feed["id"])}
    assert bodies == {"'" + '=HYPERLINK("http://evil.test","Cold brew")'}
    # the creative itself keeps the text as written; only the spreadsheet cell is escaped
    shown = json.loads(adgen("creative", "show", feed["id"]).stdout)
    assert shown["copy"]["primary_text"] == ['=HYPERLINK("http://evil.test","Cold brew")']


def test_a_product_without_a_url_fails_the_export_naming_it_and_writes_nothing(tmp_path, default_models):
    data = _spec_data(placements=["google_rsa"])
    del data["products"][0]["url"]
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    campaign_id = json.loads(adgen("campaign", "run", str(spec), "--json").stdout)["campaign_id"]
    adgen("review", "approve", campaign_id, "--all")
    out = tmp_path / "bundle"
    result = adgen("campaign", "export", campaign_id, "--out", str(out), check=False)
    assert result.returncode == 2
    assert "products[0].url" in result.stderr and "Cold Brew Concentrate" in result.stderr
    assert not out.exists() and list(tmp_path.glob(".bundle-*")) == []


def test_a_campaign_stored_with_an_invalid_url_still_loads_and_its_export_names_the_product(tmp_path, default_models):
    """Campaigns recorded before URLs were checked keep working for review and the report; only the
    export, which needs the URL, refuses them."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec_data(placements=["google_rsa"])))
    campaign_id = json.loads(adgen("campaign", "run", str(spec), "--json").stdout)["campaign_id"]
    with Context(Settings()).db.begin() as s:  # as an older adgen, which did not check URLs, stored it
        campaign = s.get(records.Campaign, campaign_id)
        stored = json.loads(json.dumps(campaign.spec))
        stored["products"][0]["url"] = "www.example.com/cold-brew"
        campaign.spec = stored
    assert "done" in adgen("campaign", "show", campaign_id).stdout
    adgen("campaign", "report", campaign_id, "--out", str(tmp_path / "report.html"))
    adgen("review", "approve", campaign_id, "--all")
    out = tmp_path / "bundle"
    result = adgen("campaign", "export", campaign_id, "--out", str(out), check=False)
    assert result.returncode == 2
    assert "Cold Brew Concentrate" in result.stderr and "'www.example.com/cold-brew' is not an http(s) URL" in result.stderr
    assert not out.exists() and list(tmp_path.glob(".bundle-*")) == []


def test_landing_urls_are_validated_and_keep_the_existing_query():
    template = {"utm_source": "{platform}", "utm_medium": "paid", "utm_content": "{creative}"}
    values = {"platform": "meta", "campaign": "c", "audience": "a", "product": "p", "placement": "meta_feed", "creative": "x-1"}
    assert final_url("https://shop.example/p?color=red&size=2", template, values) == \
        "https://shop.example/p?color=red&size=2&utm_source=meta&utm_medium=paid&utm_content=x-1"
    assert final_url("http://shop.example", {"utm_term": ""}, values) == "http://shop.example"  # empty: left out
    for bad, message in (("shop.example/p", r"not an http\(s\) URL"), ("ftp://shop.example/p", r"not an http\(s\) URL"),
                         ("https://shop.example/cold brew", "contains a space")):
        with pytest.raises(URLError, match=message):
            final_url(bad, template, values)
    with pytest.raises(URLError, match="already sets utm_source"):
        final_url("https://shop.example/?utm_source=newsletter", template, values)

    data = _spec_data()
    data["products"][0]["url"] = "www.example.com/cold-brew"
    with pytest.raises(SpecError, match=r"products\[0\]\.url: 'www.example.com/cold-brew' is not an http\(s\) URL"):
        parse_spec(data)
    data = _spec_data(tracking={"utm_campaign": "{season}"})
    with pytest.raises(SpecError, match=r"tracking\.utm_campaign: \{season\} is not a placeholder"):
        parse_spec(data)
    assert parse_spec(_spec_data()).tracking.utm_medium == "paid"


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(tmp_path):
    cells = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "Cold brew - smooth", "a=b", ""]
    write_csv(tmp_path / "t.csv", ["=header"], [[c] for c in cells])
    with (tmp_path / "t.csv").open(newline="") as f:
        read = [r[0] for r in csv.reader(f)]
    assert read == ["'=header", "'=1+1", "'+SUM(A1)", "'-2+3", "'@cmd", "'\tx", "'\rx", "Cold brew - smooth", "a=b", ""]


def test_xmp_marking_is_deterministic_and_leaves_the_pixels_alone():
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 10)).save(buf, format="PNG")
    png = buf.getvalue()
    marked = with_xmp(png)
    assert marked == with_xmp(png) == with_xmp(marked)  # a re-render marked again compares equal
    assert digital_source_type(marked) == TRAINED_ALGORITHMIC_MEDIA and digital_source_type(png) is None
    with Image.open(io.BytesIO(marked)) as a, Image.open(io.BytesIO(png)) as b:
        assert a.tobytes() == b.tobytes()


def test_the_local_test_chain_is_made_once_and_only_one_half_of_a_real_one_is_refused(tmp_path):
    from cryptography import x509

    from adgen.provenance import ProvenanceError, credentials, ensure_test_certificate
    from adgen.settings import Settings

    folder = ensure_test_certificate(tmp_path)
    chain = (folder / "chain.pem").read_bytes()
    assert ensure_test_certificate(tmp_path) == folder and (folder / "chain.pem").read_bytes() == chain  # idempotent
    signer, root = x509.load_pem_x509_certificates(chain)
    assert signer.issuer == root.subject and signer.issuer != signer.subject  # C2PA refuses a self-signed signer
    assert signer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION in signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert credentials(Settings(home=tmp_path)).test is True
    with pytest.raises(ProvenanceError, match="ADGEN_C2PA_CERT and ADGEN_C2PA_KEY: set both"):
        credentials(Settings(home=tmp_path, c2pa_cert=folder / "chain.pem"))
    real = credentials(Settings(home=tmp_path, c2pa_cert=folder / "chain.pem", c2pa_key=folder / "key.pem"))
    assert real.test is False and real.chain == chain


def test_every_size_is_made_in_the_job_stored_with_the_creative_and_exported_as_stored(tmp_path, default_models):
    """The other sizes are the files review and the report show: made by the job (a product photo's
    scene painted for each size's layout by the job's own models), made again when a reviewer edits
    the copy, and shipped by the export as stored."""
    data = _spec_data(placements=["meta_feed", "linkedin_single_image", "x_promoted"])
    assert data["products"][0]["images"]
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    campaign = json.loads(adgen("campaign", "run", str(spec), "--json").stdout)["campaign_id"]
    ctx = Context(Settings())

    def stored(creative_id: str) -> tuple[records.Creative, dict[str, bytes]]:
        with ctx.db() as s:
            row = s.get(records.Creative, creative_id)
        return row, {size: ctx.storage.get(key) for size, key in (row.other_sizes or {}).items()}

    feed = next(e for e in _preview(campaign, tmp_path / "before") if e["placement"] == "meta_feed")
    _, before = stored(feed["id"])
    adgen("review", "edit", feed["id"], "--field", "headline", "--index", "0", "--text", "Cold brew at every size")
    _, after = stored(feed["id"])
    assert before.keys() == after.keys() == {"1080x1350"}
    assert before["1080x1350"] != after["1080x1350"]  # laid out again with the new headline

    entries = _preview(campaign, tmp_path / "bundle")
    with ctx.db() as s:
        rows = s.scalars(select(records.Creative).where(records.Creative.campaign_id == campaign)).all()
    for row in rows:
        place = placement(row.placement)
        assert sorted(row.other_sizes or {}) == sorted(f"{w}x{h}" for w, h in place.sizes[1:]), row.placement
        target = bulk.file_format(row.placement)
        for size, key in (row.other_sizes or {}).items():
            width, height = map(int, size.split("x"))
            png = ctx.storage.get(key)
            assert Image.open(io.BytesIO(png)).size == (width, height)
            exported = (tmp_path / "bundle" / f"PREVIEW-{target[0]}" / bulk.image_name(row.id, width, height)).read_bytes()
            assert without_manifest(exported) == with_xmp(png), (row.id, size)
    assert {e["id"] for e in entries} == {r.id for r in rows}
    adgen("campaign", "report", campaign, "--out", str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text()  # the report shows every stored size
    assert html.count("<img class='other' src='data:image/jpeg;base64,") == sum(len(r.other_sizes) for r in rows) > 0
