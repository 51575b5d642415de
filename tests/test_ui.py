"""The web app through the official Gradio client against a running `adgen ui`: sign-in, the
whole flow on the real runner and models, isolation between advertisers on every endpoint, and
bad input answered with a message that names the field while nothing is written."""

import hashlib
import io
import json
import re
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.conftest import EXAMPLE
from tests.webapp import USERS, running_ui

PRODUCTS = {"headers": ["name", "description", "benefits", "url"],
            "data": [["Cold Brew Concentrate", "Smooth, low-acid cold brew concentrate.", "low acid, 16 cups per bottle", "https://example.com/cold-brew"]]}
AUDIENCES = {"headers": ["name", "persona"], "data": [["busy-parents", "Parents of young kids, short on time."]]}
ESPRESSO = EXAMPLE.parent / "espresso.png"
# The builder's products with the fifth column: the uploaded photo each product shows.
WITH_PHOTO = {"headers": [*PRODUCTS["headers"], "photo"], "data": [[*PRODUCTS["data"][0], "espresso.png"]]}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("webapp")


@pytest.fixture(scope="module")
def server(root, default_models):
    with running_ui(root) as url:
        yield url


def client(server, name) -> Client:
    return Client(server, auth=(name, USERS[name][0]), verbose=False)


@pytest.fixture(scope="module")
def alice(server) -> Client:
    return client(server, "alice")


@pytest.fixture(scope="module")
def bob(server) -> Client:
    return client(server, "bob")


def brand_id(c: Client) -> str:
    return c.predict(api_name="/whoami")[1]["value"]


def campaign_ids(c: Client) -> list[str]:
    return [cid for _, cid in c.predict(api_name="/whoami")[2]["choices"]]


def wait_until_made(c: Client, campaign_id: str, creatives: int, timeout: float = 180) -> tuple:
    """Poll the campaign view as the page does, until every job is finished and the creatives are in."""
    deadline = time.monotonic() + timeout
    while True:
        view = c.predict(campaign_id, "all", "all", "all", "id", 0, api_name="/campaign")
        done, jobs, made = map(int, re.search(r"(\d+) of (\d+) jobs finished, (\d+) creatives", view[0]).groups())
        if done == jobs and made == creatives:
            return view
        assert time.monotonic() < deadline, f"campaign not made in {timeout} s: {view[0]}"
        time.sleep(1)


@pytest.fixture(scope="module")
def made(alice) -> dict:
    """Alice's brand kit with a logo, and a tiny campaign made through the builder, its product
    shown from an uploaded photo."""
    bid = brand_id(alice)
    alice.predict(bid, "warm, witty, never pushy", "cheap, guarantee", "#3B2A20, #F2E8DC, #C8553D",
                  handle_file(str(EXAMPLE.parent / "northwind-logo.png")), api_name="/save_brand")
    created = alice.predict(bid, "spring-launch", WITH_PHOTO, AUDIENCES, ["meta_feed", "google_rsa"], 1, 7, "", "",
                            [handle_file(str(ESPRESSO))], api_name="/create_campaign")
    cid = created[0]["value"]
    view = wait_until_made(alice, cid, 2)
    return {"brand": bid, "campaign": cid, "view": view, "ids": [f"{cid}-000-0", f"{cid}-001-0"]}


def test_sign_in_is_required(server):
    for path in ("/config", "/gradio_api/info"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(server + path)
        assert e.value.code == 401
    with pytest.raises(Exception, match="(?i)login|credentials|unauthor|401"):
        Client(server, auth=("alice", "not-her-password"), verbose=False)
    with pytest.raises(Exception):  # noqa: B017 -- no credentials at all: the client cannot even read the API
        Client(server, verbose=False)


def test_create_generate_review_and_export(alice, made, tmp_path):
    progress, pictures = made["view"][0], made["view"][1]
    assert "2 of 2 jobs finished" in progress and "done" in progress
    captions = sorted(p["caption"] for p in pictures)
    assert captions[0].startswith("busy-parents · English (en) · Google responsive search ad · pending")
    assert "Meta feed" in captions[1]
    feed_pic = next(p for p in pictures if "Meta feed" in p["caption"])
    with Image.open(feed_pic["image"]) as im:
        assert im.size == (1080, 1080)  # the finished creative at the placement's size, not a thumbnail

    feed, search = made["ids"]
    image, head, copy_md, lineage, history, _field, badges, edit_box = alice.predict(feed, api_name="/creative")
    lineage = json.loads(lineage)
    assert "meta_feed" in head and "English (en)" in head and "pending" in head and "headline" in copy_md
    assert edit_box["rtl"] is False
    assert "badge" in badges and lineage["seed"] and lineage["text_model"]["hash"]
    # the uploaded photo, cut out by its own alpha channel, is the product in the picture
    photo = lineage["product_photo"]
    assert photo["mask_source"] == "alpha" and photo["photo_sha256"] == hashlib.sha256(ESPRESSO.read_bytes()).hexdigest()

    # an edit that breaks a rule is re-rendered, re-checked and cannot be approved
    alice.predict(feed, "headline", 0, "CHEAP cold brew for everyone", api_name="/edit")
    _, head, copy_md, _, history, _, badges, _ = alice.predict(feed, api_name="/creative")
    assert "banned term" in badges and "CHEAP cold brew" in copy_md and history[-1]["action"] == "edit"
    with pytest.raises(AppError, match="fails its checks"):
        alice.predict(feed, api_name="/approve")
    alice.predict(feed, "headline", 0, "Cold brew, your way", api_name="/edit")
    alice.predict(feed, api_name="/approve")
    assert "approved" in alice.predict(feed, api_name="/creative")[1]

    # regenerate the search ad with a new seed: a new creative replaces it, the old one is rejected
    alice.predict(search, 4242, api_name="/regenerate")
    view = wait_until_made(alice, made["campaign"], 3)
    new = f"{made['campaign']}-002-0"
    lineage = json.loads(alice.predict(new, api_name="/creative")[3])
    assert lineage["replaces"] == search and lineage["seed"] == 4242
    _, head, _, _, history, _, _, _ = alice.predict(search, api_name="/creative")
    assert "rejected" in head and "regenerated with seed 4242" in history[-1]["reason"]
    rejected = alice.predict(made["campaign"], "all", "all", "rejected", "id", 0, api_name="/campaign")[1]
    assert len(rejected) == 1 and len(view[1]) == 3

    alice.predict(made["campaign"], api_name="/approve_all")
    approved = alice.predict(made["campaign"], "all", "all", "approved", "id", 0, api_name="/campaign")[1]
    assert len(approved) == 2

    bundle = alice.predict(made["campaign"], api_name="/export")
    with zipfile.ZipFile(bundle) as z:
        names = z.namelist()
        entries = json.loads(z.read("spring-launch/creatives.json"))
        assert sorted(e["id"] for e in entries) == sorted([feed, new])
        assert all(e["status"] == "approved" and e["lineage"]["reviewer"] == "alice" for e in entries)
        feed_entry = next(e for e in entries if e["id"] == feed)
        assert feed_entry["copy"]["headline"][0] == "Cold brew, your way"
        with Image.open(io.BytesIO(z.read(f"spring-launch/{feed_entry['image']}"))) as im:
            assert im.size == (1080, 1080)
        assert "spring-launch/creatives.csv" in names
        # the platform folder, its bulk file and every size of the feed creative come in the zip too
        assert "spring-launch/meta/ads-manager-import.csv" in names
        assert {n for n in names if n.startswith(f"spring-launch/meta/{feed}_")} == {
            f"spring-launch/meta/{feed}_square_1080x1080.png", f"spring-launch/meta/{feed}_portrait_1080x1350.png"}

    # after launch: the search ads' Google Ads export, uploaded in the results tab
    _results_are_imported_and_show_what_won(alice, made["campaign"], search, new, tmp_path)


def _google_export(path: Path, rows: list[tuple[str, int, int]]) -> str:
    with open(path, "w", newline="") as f:
        f.write("Ad report\nNovember 1, 2026 - November 30, 2026\nDay,Final URL,Impr.,Clicks,Conversions,Cost\n")
        for creative_id, impressions, clicks in rows:
            f.write(f"2026-11-01,https://example.com/cold-brew?utm_content={creative_id},{impressions},{clicks},1,3.50\n")
    return str(path)


def _results_are_imported_and_show_what_won(alice, cid, old, new, tmp_path):
    """Two search ads of one cell, the regenerated one clicked far more: stored once, the winner
    called and drawn, a row of no creative listed, a malformed file refused in one line."""
    report = _google_export(tmp_path / "google-ads.csv", [(old, 2000, 40), (new, 2000, 110), ("0123456789ab-000-0", 500, 5)])
    summary, plot, table, verdicts = alice.predict(cid, handle_file(report), "google", False, api_name="/import_results")
    assert summary.startswith("Stored 2 rows from google-ads.csv.")
    assert "Rows that match no creative of this campaign (not stored):\n- row 6: `https://example.com/cold-brew?utm_content=0123456789ab-000-0`" in summary
    assert [(r[3], r[4], r[5], r[6], r[10]) for r in table["data"]] == [(new, 2000, 110, "5.50%", "winner"), (old, 2000, 40, "2.00%", "")]
    assert re.search(rf"Cold Brew Concentrate · busy-parents · google_rsa: winner \*\*{new}\*\* \(p = [\d.e-]+\)", verdicts)
    with Image.open(plot) as im:  # the picture: each creative's CTR and interval, the winner in orange
        colours = {c for _, c in im.convert("RGB").getcolors(1 << 16)}
    assert (200, 85, 61) in colours and (59, 42, 32) in colours

    again = alice.predict(cid, handle_file(report), "google", False, api_name="/import_results")
    assert again[0] == "google-ads.csv was imported before; nothing changed.\n\nRows that match no creative of this campaign (not stored):\n- row 6: `https://example.com/cold-brew?utm_content=0123456789ab-000-0`"
    assert again[2]["data"] == table["data"]
    bad = _google_export(tmp_path / "bad.csv", [(new, 100, 300)])
    with pytest.raises(AppError, match=r"^bad.csv row 4: 300 clicks but only 100 impressions$"):
        alice.predict(cid, handle_file(bad), "google", False, api_name="/import_results")
    assert alice.predict(cid, api_name="/insights")[1]["data"] == table["data"]  # nothing written


def test_gallery_sorts_and_filters_by_score_and_a_swap_needs_a_new_approval(alice, made):
    """Scores beside every creative, best first on request, a minimum score; an unchosen candidate
    swapped in from the app is re-rendered, re-checked and back to pending."""
    cid, (feed, _) = made["campaign"], made["ids"]
    pictures = alice.predict(cid, "all", "all", "all", "score", 0, api_name="/campaign")[1]
    scores = [int(re.search(r"score (\d+)$", p["caption"]).group(1)) for p in pictures]
    assert len(scores) >= 2 and scores == sorted(scores, reverse=True)
    kept = alice.predict(cid, "all", "all", "all", "score", scores[0], api_name="/campaign")[1]
    assert 1 <= len(kept) < len(pictures) or scores[0] == scores[-1]
    assert all(int(re.search(r"score (\d+)$", p["caption"]).group(1)) >= scores[0] for p in kept)

    head = alice.predict(feed, api_name="/creative")[1]
    assert re.search(r"score \*\*\d+\*\*/100: audience [\d.]+ · product", head)

    choice, listing = alice.predict(feed, api_name="/alternatives")
    assert len(choice["choices"]) >= 2 and listing.startswith("0. **")
    alice.predict(feed, api_name="/approve")
    before = alice.predict(feed, api_name="/creative")
    alice.predict(feed, 0, api_name="/swap")
    after = alice.predict(feed, api_name="/creative")
    assert "pending" in after[1] and after[2] != before[2] and after[4][-1]["action"] == "swap"
    # the copy swapped out is now the alternative it came from
    old_headline = re.search(r"\*\*headline\*\*: <span[^>]*>([^<]+)", before[2]).group(1).strip()
    assert old_headline in alice.predict(feed, api_name="/alternatives")[1].split("\n")[0]
    with pytest.raises(AppError, match="alternatives; alternative must be"):
        alice.predict(feed, 999, api_name="/swap")


def test_files_are_never_served_from_the_records_or_storage(server, root, made):
    """Signed in or not, no path into the home (database, storage) is served, even when asked by name."""
    session = httpx.Client(base_url=server)
    password = USERS["bob"][0]
    assert session.post("/login", data={"username": "bob", "password": password}).status_code == 200
    image = next((root / "home" / "storage" / "campaigns").rglob("*.png"))
    for path in (root / "home" / "adgen.db", image):
        assert session.get(f"/gradio_api/file={path}").status_code == 403
        assert httpx.get(f"{server}/gradio_api/file={path}").status_code in (401, 403)


def test_a_second_advertiser_reaches_nothing_of_the_first(alice, bob, made, tmp_path):
    cid, bid, (feed, search) = made["campaign"], made["brand"], made["ids"]
    before = alice.predict(feed, api_name="/creative")
    logo = str(EXAMPLE.parent / "northwind-logo.png")
    attempts = {
        "/brand_kit": (bid,),
        "/save_brand": (bid, "hijacked", "", "#000000", handle_file(logo)),
        "/create_campaign": (bid, "stolen", PRODUCTS, AUDIENCES, ["meta_feed"], 1, 0, "", ""),
        "/upload_spec": (bid, handle_file(str(EXAMPLE))),
        "/campaign": (cid, "all", "all", "all", "id", 0),
        "/creative": (feed,),
        "/approve": (search,),
        "/reject": (feed, "sabotage"),
        "/edit": (feed, "headline", 0, "Hijacked"),
        "/regenerate": (feed, 1),
        "/alternatives": (feed,),
        "/swap": (feed, 0),
        "/approve_all": (cid,),
        "/export": (cid,),
        "/insights": (cid,),
        "/import_results": (cid, handle_file(_google_export(tmp_path / "hers.csv", [(search, 100, 1)])), "google", False),
    }
    endpoints = set(bob.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert endpoints - {"/whoami", "/preview_photos"} == set(attempts), "every endpoint that takes an id must be tried here"
    for api_name, args in attempts.items():
        with pytest.raises(AppError, match=r"no (brand|campaign|creative) '"):
            bob.predict(*args, api_name=api_name)

    # nor can he use her brand's adapters in a campaign of his own brand
    with pytest.raises(AppError, match=r"adapters.text: northwind/text@v1 is an adapter of brand 'northwind', not of 'Contoso Tea'"):
        bob.predict(brand_id(bob), "borrowed", PRODUCTS, AUDIENCES, ["meta_feed"], 1, 0, "northwind/text@v1", "",
                    api_name="/create_campaign")
    assert campaign_ids(bob) == []  # nothing was recorded

    # bob's own view lists none of alice's things
    whoami = bob.predict(api_name="/whoami")
    assert [name for name, _ in whoami[1]["choices"]] == ["Contoso Tea"]
    assert cid not in campaign_ids(bob)
    # and alice's records are untouched
    after = alice.predict(feed, api_name="/creative")
    assert after[1:5] == before[1:5]
    kit = alice.predict(bid, api_name="/brand_kit")
    assert kit[0] == "warm, witty, never pushy"
    assert campaign_ids(alice) == [cid]


def _unchanged(c, bid, kit_before, campaigns_before):
    assert c.predict(bid, api_name="/brand_kit")[:3] == kit_before[:3]
    assert campaign_ids(c) == campaigns_before


def test_bad_input_gets_a_clear_message_and_writes_nothing(bob, tmp_path):
    bid = brand_id(bob)
    bob.predict(bid, "calm", "", "#112233", None, api_name="/save_brand")
    kit, campaigns = bob.predict(bid, api_name="/brand_kit"), campaign_ids(bob)

    not_image = tmp_path / "logo.png"
    not_image.write_text("this is not a picture")
    big = tmp_path / "big.png"
    Image.frombytes("RGB", (1600, 1400), bytes(range(256)) * (1600 * 1400 * 3 // 256)).save(big, compress_level=0)
    assert 5 * 1024**2 < big.stat().st_size < 8 * 1024**2
    cases = [
        ((bid, "calm", "", "#112233", handle_file(str(not_image))), "Logo: the file is not an image"),
        ((bid, "calm", "", "#112233", handle_file(str(big))), "Logo: the file is 6.4 MB; the limit is 5 MB"),
        ((bid, "loud", "", "#12345G, #FFFFFF", None), "Colours: '#12345G' is not a colour"),
    ]
    for args, message in cases:
        with pytest.raises(AppError, match=message):
            bob.predict(*args, api_name="/save_brand")
        _unchanged(bob, bid, kit, campaigns)

    empty = {"headers": PRODUCTS["headers"], "data": [["", "", "", ""]]}
    no_name = {"headers": PRODUCTS["headers"], "data": [["", "A tea without a name", "", ""]]}
    for products, message in ((empty, "Products: add at least one product"), (no_name, "Products, row 1: the product needs a name")):
        with pytest.raises(AppError, match=message):
            bob.predict(bid, "autumn", products, AUDIENCES, ["meta_feed"], 1, 0, "", "", api_name="/create_campaign")
        _unchanged(bob, bid, kit, campaigns)
    with pytest.raises(AppError, match="campaign: 'Autumn Tea' is not a slug"):
        bob.predict(bid, "Autumn Tea", PRODUCTS, AUDIENCES, ["meta_feed"], 1, 0, "", "", api_name="/create_campaign")
    # the audiences' language column: a tag that is not BCP 47, and German for the English-only default model
    german = {"headers": ["name", "persona", "language"], "data": [["teachers", "Teachers who grade at night.", "de"]]}
    bad_tag = {**german, "data": [["teachers", "Teachers who grade at night.", "german!"]]}
    for audiences, copy_by, message in ((bad_tag, "model", "Audiences, row 1: language 'german!' is not a BCP 47 language tag"),
                                        (german, "model", "'de': the default model writes English only")):
        with pytest.raises(AppError, match=message):
            bob.predict(bid, "autumn", PRODUCTS, audiences, ["meta_feed"], 1, 0, "", "", None, copy_by,
                        api_name="/create_campaign")
        _unchanged(bob, bid, kit, campaigns)

    spec = EXAMPLE.read_text().replace("Northwind Coffee", "Contoso Tea").replace(
        "  logo: examples/northwind-logo.png        # optional\n", "")
    with_photo, spec = spec, "\n".join(line for line in spec.splitlines() if "images:" not in line)
    specs = {
        "unknown-placement.yaml": (spec.replace("meta_story", "tiktok_story"), "placements: unknown placement 'tiktok_story'"),
        "broken.yaml": ("campaign: [unclosed\n", "Spec file: not valid YAML at line"),
        "other-brand.yaml": (EXAMPLE.read_text(), "brand.name: 'Northwind Coffee' is not the selected brand"),
        "server-file.yaml": (spec.replace("  voice:", "  logo: /etc/hostname\n  voice:"), "brand.logo: a spec uploaded here cannot name a file"),
        "server-photo.yaml": (with_photo.replace("examples/espresso.png", "/etc/hostname"),
                              r"products\[0\].images\[0\]: '/etc/hostname' is not among the uploaded product photos \(none uploaded\)"),
        "photo-not-uploaded.yaml": (with_photo, r"products\[0\].images\[0\]: 'examples/espresso.png' is not among the uploaded"),
    }
    for name, (text, message) in specs.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(AppError, match=message):
            bob.predict(bid, handle_file(str(path)), api_name="/upload_spec")
        _unchanged(bob, bid, kit, campaigns)

    # German with English drafts for reviewers to replace: the campaign's jobs are for German readers
    cid = bob.predict(bid, "herbst", PRODUCTS, german, ["meta_feed"], 1, 0, "", "", None, "edits",
                      api_name="/create_campaign")[0]["value"]
    assert "teachers · German (de)" in bob.predict(cid, "all", "all", "all", "id", 0, api_name="/campaign")[0]


def _png(path, image: Image.Image) -> str:
    image.save(path)
    return str(path)


def test_product_photos_are_previewed_as_what_their_cut_out_keeps(bob, tmp_path):
    """The builder shows each photo beside what its cut-out keeps, over a checkerboard: a PNG with
    alpha by its own alpha channel, a photo on its background by GrabCut."""
    cup = Image.open(ESPRESSO)
    on_table = Image.new("RGB", cup.size, (236, 232, 224))
    on_table.paste(cup, (0, 0), cup)
    jpeg = tmp_path / "cup-on-table.jpg"
    on_table.save(jpeg, quality=95)
    products = {"headers": WITH_PHOTO["headers"], "data": [["Espresso Blend", "", "", "", "espresso.png"]]}
    shown = bob.predict([handle_file(str(ESPRESSO)), handle_file(str(jpeg))], products, api_name="/preview_photos")
    assert len(shown) == 2
    alpha, grabcut = shown
    assert alpha["caption"].startswith("espresso.png (for Espresso Blend): keeps ") and "its own alpha channel" in alpha["caption"]
    assert grabcut["caption"].startswith("cup-on-table.jpg (not named by any product yet)") and "GrabCut" in grabcut["caption"]
    with Image.open(alpha["image"]) as im:
        pair = np.asarray(im.convert("RGB")).astype(int)
    width = (pair.shape[1] - 8) // 2
    assert pair.shape[0] == 320 and width == round(cup.width * 320 / cup.height)
    photo, kept = pair[:, :width], pair[:, width + 8 :]
    # a corner of the photo is transparent, so the checkerboard shows there; the cup's middle is the cup
    assert {tuple(kept[2, 2]), tuple(kept[2, 20])} == {(204, 204, 204), (255, 255, 255)}
    inside = np.asarray(cup.getchannel("A").resize((width, 320))) == 255
    assert inside.mean() > 0.2 and np.abs(kept[inside] - photo[inside]).mean() < 1


def test_a_product_photo_that_cannot_be_used_is_refused_naming_the_file(bob, tmp_path):
    bid = brand_id(bob)
    kit, campaigns = bob.predict(bid, api_name="/brand_kit"), campaign_ids(bob)
    not_image = tmp_path / "photo.png"
    not_image.write_text("not a picture")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # 48 KB, 400 megapixels once decoded
    cases = {
        _png(tmp_path / "clear.png", Image.new("RGBA", (64, 64), (0, 0, 0, 0))): "clear.png: the cut-out is empty",
        _png(tmp_path / "flat.png", Image.new("RGB", (300, 200), (90, 120, 150))): r"flat.png: the cut-out is (empty|the whole frame)",
        str(not_image): "photo.png is not an image",
        str(bomb): "bomb.png: the image is over the limit of 40 megapixels",
    }
    products = {"headers": WITH_PHOTO["headers"], "data": [["Oolong", "", "", "", ""]]}
    for path, message in cases.items():
        with pytest.raises(AppError, match=message) as refused:
            bob.predict([handle_file(path)], products, api_name="/preview_photos")
        assert "\n" not in str(refused.value)
        # and the campaign that names it is refused the same way, with nothing written
        named = {"headers": WITH_PHOTO["headers"], "data": [["Oolong", "", "", "", Path(path).name]]}
        with pytest.raises(AppError, match=f"product 'Oolong': image {message}"):
            bob.predict(bid, "oolong", named, AUDIENCES, ["meta_feed"], 1, 0, "", "", [handle_file(path)],
                        api_name="/create_campaign")
        _unchanged(bob, bid, kit, campaigns)
    # a photo named but not uploaded, or uploaded but named by no product, is not silently dropped
    named = {"headers": WITH_PHOTO["headers"], "data": [["Oolong", "", "", "", "oolong.png"]]}
    with pytest.raises(AppError, match=r"Products, row 1: photo: 'oolong.png' is not among the uploaded product photos \(none"):
        bob.predict(bid, "oolong", named, AUDIENCES, ["meta_feed"], 1, 0, "", "", api_name="/create_campaign")
    with pytest.raises(AppError, match=r"Product photos: 'espresso.png' is not named by any product"):
        bob.predict(bid, "oolong", products, AUDIENCES, ["meta_feed"], 1, 0, "", "", [handle_file(str(ESPRESSO))],
                    api_name="/create_campaign")
    _unchanged(bob, bid, kit, campaigns)


def test_the_review_tab_names_each_audiences_language_and_sets_right_to_left_copy(bob, tmp_path):
    """A spec uploaded with an Arabic and a Japanese audience (copy through edits): the job table,
    the captions, the audience filter and the creative's heading say each audience's language; the
    Arabic creative's copy, card and edit box read from the right, the Japanese one's from the left."""
    spec = {"campaign": "tea-in-two-languages", "brand": {"name": "Contoso Tea"}, "copy_by": "edits",
            "products": [{"name": "Jasmine Tea", "description": "Loose-leaf jasmine green tea.",
                          "benefits": ["fragrant"], "url": "https://example.com/jasmine"}],
            "audiences": [{"name": "cairo", "persona": "Tea lovers in Cairo.", "language": "ar"},
                          {"name": "tokyo", "persona": "Tea lovers in Tokyo.", "language": "ja"}],
            "placements": ["google_rsa"], "variants": 1}
    path = tmp_path / "two-languages.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    cid = bob.predict(brand_id(bob), handle_file(str(path)), api_name="/upload_spec")[0]["value"]
    progress, pictures, audiences = (wait_until_made(bob, cid, 2)[i] for i in (0, 1, 2))
    assert "cairo · Arabic (ar)" in progress and "tokyo · Japanese (ja)" in progress
    assert ["cairo · Arabic (ar)", "cairo"] in audiences["choices"]
    captions = {p["caption"].split(" · ")[0]: p for p in pictures}
    assert captions["cairo"]["caption"].startswith("cairo · Arabic (ar) · Google responsive search ad")
    for audience, label, rtl in (("cairo", "Arabic (ar)", True), ("tokyo", "Japanese (ja)", False)):
        creative = next(f"{cid}-{i:03d}-0" for i in range(2) if audience in bob.predict(f"{cid}-{i:03d}-0", api_name="/creative")[1])
        detail = bob.predict(creative, api_name="/creative")
        assert f"· {audience} · {label} ·" in detail[1] and f"lang='{label[-3:-1]}' dir='auto'" in detail[2]
        assert detail[7]["rtl"] is rtl  # the edit box types right to left for Arabic
        with Image.open(captions[audience]["image"]) as card:  # the search ad's card, set from its reading side
            ink = Image.eval(card.convert("L").crop((0, 20, 600, 56)), lambda v: 255 if v < 200 else 0).getbbox()
        assert (ink[2] > 560 and ink[0] > 40) if rtl else (ink[0] < 30), (audience, ink)


def test_an_action_on_a_creative_changed_since_it_was_opened_is_refused(server, alice, made):
    """Two pages of one advertiser open the same creative; one edits it; the other's decision, made
    on what it saw, is refused with the reason, and goes through once the page has reloaded it."""
    feed, _ = made["ids"]
    other = client(server, "alice")
    alice.predict(feed, api_name="/creative")
    other.predict(feed, api_name="/creative")
    other.predict(feed, "headline", 0, "Cold brew, ready when you are", api_name="/edit")
    with pytest.raises(AppError, match="changed since you opened it"):
        alice.predict(feed, api_name="/approve")
    with pytest.raises(AppError, match="changed since you opened it"):
        alice.predict(feed, "off brand", api_name="/reject")
    assert "status **pending**" in alice.predict(feed, api_name="/creative")[1]
    alice.predict(feed, "off brand", api_name="/reject")
    assert "status **rejected**" in alice.predict(feed, api_name="/creative")[1]
