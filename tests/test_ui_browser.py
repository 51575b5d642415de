"""The web app in a real browser: headless Chromium (Debian's package) driven by Playwright signs in,
fills the brand kit and the campaign builder, generates, approves and downloads the export bundle,
saving a screenshot at each step (out/screenshots/, or ADGEN_SCREENSHOTS)."""

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, REPO
from tests.webapp import USERS, running_ui

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed and could not be (make test runs apt-get install chromium as root)"
)
# The flags a headless browser in a container needs, and none that let it reach the internet.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
SHOTS = Path(os.environ.get("ADGEN_SCREENSHOTS", REPO / "out" / "screenshots"))


@pytest.fixture(scope="module")
def page(tmp_path_factory, default_models):
    with running_ui(tmp_path_factory.mktemp("webapp-browser")) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(url)
        yield page
        browser.close()


def shot(page, name: str) -> None:
    """Save a full-page screenshot once the notices are dismissed (they would cover the page)."""
    for close in page.locator(".toast-close").all():
        close.click()
    sync_api.expect(page.locator(".toast-body")).to_have_count(0)
    sync_api.expect(page.locator(".progress-text, .eta-bar")).to_have_count(0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def fill_cell(page, table: str, row: int, col: int, text: str) -> None:
    cell = page.locator(f"#{table} [data-testid='cell-{row}-{col}']")
    cell.dblclick()
    editor = cell.locator("textarea, input")
    sync_api.expect(editor).to_be_focused()
    editor.fill(text)
    editor.press("Enter")
    sync_api.expect(cell).to_contain_text(text)


def test_sign_in_build_generate_approve_export(page, tmp_path):
    expect = sync_api.expect
    password, brand = USERS["alice"]
    shot(page, "0-sign-in")
    page.get_by_label("username").fill("alice")
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    expect(page.get_by_text("Signed in as")).to_be_visible()

    # brand kit: voice, banned terms, colours and a logo upload
    page.get_by_label("Voice").fill("warm, witty, never pushy")
    page.get_by_label("Banned terms").fill("cheap, guarantee")
    page.get_by_label("Colours").fill("#3B2A20, #F2E8DC, #C8553D")
    page.locator("#logo input[type=file]").set_input_files(str(EXAMPLE.parent / "northwind-logo.png"))
    page.get_by_role("button", name="Save brand kit").click()
    expect(page.get_by_text(f"Brand kit of {brand} saved.")).to_be_visible()
    shot(page, "1-brand-kit")

    # campaign builder
    page.get_by_role("tab", name="New campaign").click()
    page.get_by_label("Campaign name").fill("browser-launch")
    fill_cell(page, "products", 0, 0, "Cold Brew Concentrate")
    fill_cell(page, "products", 0, 1, "Smooth, low-acid cold brew concentrate.")
    fill_cell(page, "products", 0, 2, "low acid, ready in seconds")
    fill_cell(page, "products", 0, 3, "https://example.com/cold-brew")
    fill_cell(page, "audiences", 0, 0, "busy-parents")
    fill_cell(page, "audiences", 0, 1, "Parents of young kids, short on time, who want good coffee.")
    page.get_by_label("Meta feed (Facebook and Instagram), square image (1080x1080)").check()
    page.get_by_label("LinkedIn single image ad (1200x627)").check()
    page.get_by_label("number input for Variants per product x audience x placement").fill("1")
    page.get_by_label("number input for Variants per product x audience x placement").press("Enter")
    shot(page, "2-builder")
    page.get_by_role("button", name="Create campaign and generate").click()

    # the review tab opens and shows progress until both jobs are done and both creatives are in
    expect(page.get_by_text("2 of 2 jobs finished, 2 creatives")).to_be_visible(timeout=180_000)
    gallery = page.locator("#gallery")
    expect(gallery.locator("img")).to_have_count(2)
    gallery.locator("button.thumbnail-item, .thumbnail-item").first.click()
    expect(page.get_by_text("passes all checks")).to_be_visible()
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_text("status approved")).to_be_visible()
    page.get_by_role("button", name="Approve all remaining that pass").click()
    expect(page.get_by_text("Approved 1 creatives.")).to_be_visible()
    expect(gallery.get_by_text("approved")).to_have_count(2)
    shot(page, "3-review")

    page.get_by_role("button", name="Download export bundle (approved)").click()
    link = page.locator("#bundle a").first
    expect(link).to_be_visible()
    with page.expect_download() as download:
        link.click()
    bundle = tmp_path / "bundle.zip"
    download.value.save_as(bundle)
    with zipfile.ZipFile(bundle) as z:
        entries = json.loads(z.read("browser-launch/creatives.json"))
    assert sorted(e["placement"] for e in entries) == ["linkedin_single_image", "meta_feed"]
    for e in entries:
        assert e["status"] == "approved" and e["lineage"]["reviewer"] == "alice"
        # what was typed into the builder's tables is what the models were asked for
        assert "low acid" in json.dumps(e["lineage"]["prompt"]) and "busy parents" in json.dumps(e["lineage"]["prompt"])
    shot(page, "4-exported")
