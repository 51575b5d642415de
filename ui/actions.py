"""What the web app does on the server, one function per user action, free of Gradio.

Every function takes the signed-in user's name first and looks up what it is asked to touch
through `adgen.accounts`, so an id of another advertiser fails exactly like an id that does not
exist, whichever button or endpoint sent it. Input is validated before anything is written; a
problem raises `InputError` with a message that names the field. Review actions take the version of
the creative the page showed (`seen`): one that changed since is refused, never silently undone.
Creating a campaign reads the brand kit and never writes it; only `save_brand_kit` does.
"""

import hashlib
import io
import secrets
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import Image, ImageColor, ImageDraw, ImageFont
from pydantic import ValidationError
from sqlalchemy import select

from adgen import records
from adgen.accounts import brand_of, brands_of, campaign_of, campaigns_of, creative_of
from adgen.context import Context
from adgen.export import export_campaign
from adgen.fonts import FontError
from adgen.jobs import create_campaign, logo_problem, regenerate
from adgen.languages import LanguageError, direction, language_label, language_tag
from adgen.linebreak import graphemes
from adgen.platforms import placement, registry
from adgen.review import alternatives, approve, edit, reject, swap
from adgen.score import overall
from adgen.scripts import draw_line, measure
from adgen.spec import DEFAULT_COLORS, Brand, SpecError, parse_spec
from adgen.typeset import FONT_PATH
from ui import photos as product_photos
from ui.jobs import start_campaign

MAX_SPEC_BYTES = 256 * 1024
FIELD_LABELS = {"voice": "Voice", "banned_terms": "Banned terms", "colors": "Colours", "name": "Brand name"}


class InputError(ValueError):
    """Input the user can fix; the message names the field."""


# ----- brand kit -----

def my_brands(ctx: Context, user: str) -> list[tuple[str, str]]:
    """(name, id) pairs for a dropdown."""
    with ctx.db() as s:
        return [(b.name, b.id) for b in brands_of(s, user)]


def brand_kit(ctx: Context, user: str, brand_id: str) -> dict:
    with ctx.db() as s:
        b = brand_of(s, user, brand_id)
        return {"id": b.id, "name": b.name, "voice": b.voice, "banned_terms": list(b.banned_terms),
                "colors": list(b.colors), "logo_key": b.logo_key}


def logo_image(ctx: Context, user: str, brand_id: str) -> Image.Image | None:
    kit = brand_kit(ctx, user, brand_id)
    return Image.open(io.BytesIO(ctx.storage.get(kit["logo_key"]))) if kit["logo_key"] else None


def _split(text: str) -> list[str]:
    return [t.strip() for t in (text or "").replace("\n", ",").split(",") if t.strip()]


def _check_logo(path: str) -> bytes:
    """The uploaded logo's bytes, once they are known to be a PNG, JPEG or WebP image of a sane size:
    the upload's name and declared type are the browser's word, the bytes are checked here."""
    data = Path(path).read_bytes()
    if problem := logo_problem(data):
        raise InputError(f"Logo: {problem}")
    return data


def save_brand_kit(ctx: Context, user: str, brand_id: str, voice: str, banned_terms: str, colors: str,
                   logo_path: str | None) -> dict:
    """Validate the whole kit, then write it; a bad field writes nothing."""
    with ctx.db() as s:
        name = brand_of(s, user, brand_id).name
    try:
        kit = Brand(name=name, voice=voice or "", banned_terms=_split(banned_terms), colors=_split(colors))
    except ValidationError as e:
        err = e.errors()[0]
        label = FIELD_LABELS.get(str(err["loc"][0]), str(err["loc"][0]))
        raise InputError(f"{label}: {err['msg'].removeprefix('Value error, ')}") from None
    logo = _check_logo(logo_path) if logo_path else None
    logo_key = None
    if logo is not None:
        logo_key = f"brands/logos/{hashlib.sha256(logo).hexdigest()[:16]}.png"
        ctx.storage.put(logo_key, logo, "image/png")
    with ctx.db.begin() as s:
        b = brand_of(s, user, brand_id)
        b.voice, b.banned_terms, b.colors = kit.voice, kit.banned_terms, kit.colors
        b.logo_key = logo_key or b.logo_key
    return brand_kit(ctx, user, brand_id)


# ----- campaigns -----

def placement_choices() -> list[tuple[str, str]]:
    return [(f"{p.label} ({'text only' if not p.image else f'{p.image.width}x{p.image.height}'})", name)
            for name, p in registry().placements.items()]


def _rows(table) -> list[list[str]]:
    """A Dataframe's rows as lists of stripped strings, with empty rows dropped."""
    rows = table.get("data", []) if isinstance(table, dict) else (table or [])
    out = []
    for row in rows:
        cells = ["" if c is None else str(c).strip() for c in row]
        if any(cells):
            out.append(cells)
    return out


def _products(table) -> list[dict]:
    rows = _rows(table)
    if not rows:
        raise InputError("Products: add at least one product with a name")
    products = []
    for i, row in enumerate(rows, 1):
        name, description, benefits, url, photo = (row + [""] * 5)[:5]
        if not name:
            raise InputError(f"Products, row {i}: the product needs a name")
        products.append({"name": name, "description": description, "benefits": _split(benefits), "url": url or None,
                         "images": [photo] if photo else []})
    return products


def photo_previews(user: str, photo_paths: list[str] | None, products) -> list[tuple[Image.Image, str]]:
    """What each uploaded product photo's cut-out keeps (see ui.photos.preview); a photo that cannot
    be used raises InputError naming the file."""
    owners = {}
    for row in _rows(products):
        cells = row + [""] * 5
        name, photo = cells[0], cells[4]
        if name and photo:
            owners[Path(photo).name] = name
    try:
        return product_photos.preview(product_photos.uploaded(photo_paths), owners)
    except product_photos.PhotoError as e:
        raise InputError(str(e)) from None


def _audiences(table) -> list[dict]:
    rows = _rows(table)
    if not rows:
        raise InputError("Audiences: add at least one audience with a name and a persona")
    audiences = []
    for i, row in enumerate(rows, 1):
        name, persona, language = (row + [""] * 3)[:3]
        if not name or not persona:
            raise InputError(f"Audiences, row {i}: an audience needs a name (e.g. busy-parents) and a persona")
        try:
            language = language_tag(language or "en")
        except LanguageError as e:
            raise InputError(f"Audiences, row {i}: language {e}") from None
        audiences.append({"name": name, "persona": persona, "language": language})
    return audiences


def _kit_spec(kit: dict) -> dict:
    return {"name": kit["name"], "voice": kit["voice"], "banned_terms": kit["banned_terms"],
            "colors": kit["colors"] or DEFAULT_COLORS}


def _create(ctx: Context, data: dict, kit: dict, source: str, photo_paths: list[str] | None, label) -> str:
    """Validate a spec made in the browser, record the campaign and start its runner. The brand
    kit's logo and the uploaded product photos go in through private temporary files, never through
    a path the user wrote; `label(i, j)` names a product's photo entry in errors."""
    tmp = Path(tempfile.mkdtemp(prefix="adgen-upload-"))
    photos = tmp / "photos"
    try:
        if kit["logo_key"]:
            (tmp / "logo.png").write_bytes(ctx.storage.get(kit["logo_key"]))
            data["brand"]["logo"] = str(tmp / "logo.png")
        try:
            product_photos.attach(data, product_photos.uploaded(photo_paths), photos, label)
        except product_photos.PhotoError as e:
            raise InputError(str(e)) from None
        try:
            spec = parse_spec(data, source=source)
        except SpecError as e:
            raise InputError(str(e).replace(f"{source}: ", "", 1)) from None
        for kind in ("text", "image"):
            if getattr(spec.models, kind) != "default":
                raise InputError(f"models.{kind}: the web app runs the models its operator installed; use 'default'")
        try:
            campaign_id = create_campaign(spec, ctx)
        except SpecError as e:
            # a photo is named by the file the user uploaded, not by its private copy
            raise InputError(str(e).replace(f"{photos}/", "")) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    start_campaign(campaign_id, ctx)
    return campaign_id


def create_from_form(ctx: Context, user: str, brand_id: str, name: str, products, audiences,
                     placements: list[str], variants: int, seed: int | None, text_adapter: str,
                     image_adapter: str, photo_paths: list[str] | None = None, copy_by: str | None = None) -> str:
    """Build a spec from the campaign builder's fields and start generating; returns the campaign id.
    A product's photo is the uploaded photo its photo column names; `copy_by` is the spec's field
    (the text model writes each audience's language, or English drafts that reviewers replace)."""
    kit = brand_kit(ctx, user, brand_id)
    if not (name or "").strip():
        raise InputError("Campaign name: give the campaign a name, e.g. spring-launch")
    if not placements:
        raise InputError("Placements: choose at least one placement")
    data = {
        "campaign": name.strip(), "brand": _kit_spec(kit), "products": _products(products),
        "audiences": _audiences(audiences), "placements": list(placements), "variants": int(variants or 0),
        "seed": int(seed or 0), "adapters": {"text": (text_adapter or "").strip() or None,
                                             "image": (image_adapter or "").strip() or None},
        "copy_by": copy_by or "model",
    }
    return _create(ctx, data, kit, "campaign", photo_paths, lambda i, _: f"Products, row {i + 1}: photo")


def create_from_upload(ctx: Context, user: str, brand_id: str, spec_path: str | None,
                       photo_paths: list[str] | None = None) -> str:
    """Start a campaign from an uploaded YAML spec. Its brand must be the selected brand, and it may
    not name files on the server: the logo comes from the brand kit, and a product's `images` name
    photos uploaded beside the spec (by file name)."""
    if not spec_path:
        raise InputError("Spec file: choose a YAML file first")
    kit = brand_kit(ctx, user, brand_id)
    raw = Path(spec_path).read_bytes()
    if len(raw) > MAX_SPEC_BYTES:
        raise InputError(f"Spec file: {len(raw) // 1024} KB is too large for a spec (limit {MAX_SPEC_BYTES // 1024} KB)")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except RecursionError:
        raise InputError("Spec file: nested too deeply to be a campaign spec") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"Spec file: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise InputError("Spec file: expected a mapping with campaign, brand, products, audiences, placements")
    brand = data.get("brand")
    if not isinstance(brand, dict):
        raise InputError("brand: is required (a mapping with at least name)")
    if brand.get("name") != kit["name"]:
        raise InputError(f"brand.name: {brand.get('name')!r} is not the selected brand; use {kit['name']!r}")
    if brand.get("logo"):
        raise InputError("brand.logo: a spec uploaded here cannot name a file; upload the logo in the brand kit")
    return _create(ctx, data, kit, "spec", photo_paths, lambda i, j: f"products[{i}].images[{j}]")


def my_campaigns(ctx: Context, user: str) -> list[tuple[str, str]]:
    with ctx.db() as s:
        return [(f"{c.name} ({c.brand.name}, {c.created_at:%Y-%m-%d %H:%M})", c.id) for c in campaigns_of(s, user)]


@dataclass
class CreativeView:
    id: str
    status: str
    image: str  # a file in the server's picture folder, or a presigned URL
    caption: str


def _fit(text: str, size: int, language: str, width: int) -> str:
    """text cut at the last grapheme that fits `width` pixels (a card shows the start of each text)."""
    clusters = graphemes(text)
    while len(clusters) > 1 and measure("".join(clusters), size, language=language) > width:
        clusters.pop()
    return "".join(clusters)


def _text_card(copy: dict, language: str = "en") -> Image.Image:
    """A picture of a text-only creative (a search ad) so it sits in the gallery beside the others,
    its texts set in the audience's language as creatives are (from the right for Arabic, Hebrew)."""
    im = Image.new("RGB", (600, 314), "#FFFFFF")
    draw = ImageDraw.Draw(im)
    x, anchor = (576, "rs") if direction(language) == "rtl" else (24, "ls")
    y = 24
    for field, size, color in (("headline", 22, "#1A0DAB"), ("description", 16, "#333333")):
        for text in copy.get(field, [])[:3]:
            try:
                draw_line(draw, (x, y + size), _fit(text, size, language, 552), size, fill=ImageColor.getrgb(color),
                          anchor=anchor, language=language)
            except FontError:  # a character no bundled font has: the card says so rather than draw a box
                draw.text((x, y + size), f"this {field} has a character no bundled font can draw", fill="#9B2C1F",
                          font=ImageFont.truetype(str(FONT_PATH), 14), anchor=anchor)
            y += size + 10
        y += 10
    draw.text((24, 280), "Search ad (text only)", fill="#777777", font=ImageFont.truetype(str(FONT_PATH), 14))
    return im


def _picture(ctx: Context, c: records.Creative, folder: Path, language: str = "en") -> str:
    """What the gallery shows, as a file or URL. Local storage: the stored PNG copied once per
    version into the server's picture folder (never re-encoded on each poll; Gradio serves its
    own cached copy, so no storage path is ever served). S3: a presigned URL valid for ten minutes."""
    if c.image_key and ctx.settings.storage.startswith("s3://"):
        return ctx.storage.url(c.image_key, expires=600)
    path = folder / f"{c.id}-{c.updated_at:%Y%m%d%H%M%S%f}.png"
    if not path.exists():
        if c.image_key:
            data = ctx.storage.get(c.image_key)
        else:
            buf = io.BytesIO()
            _text_card(c.copy, language).save(buf, format="PNG")
            data = buf.getvalue()
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")  # two polls at once never share a half file
        try:
            with open(fd, "wb") as f:
                f.write(data)
            Path(tmp).replace(path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        # Gradio serves its own cached copy, so the previous versions of this creative can go.
        for old in folder.glob(f"{c.id}-*.png"):
            if old != path:
                old.unlink(missing_ok=True)
    return str(path)


def prune_pictures(folder: Path, older_than: float = 3600, every: float = 600) -> int:
    """Remove pictures written more than `older_than` seconds ago (one asked for again is simply
    written again); runs at most once per `every` seconds, a marker file's time saying when it last
    ran, so several server processes agree. Returns how many files went."""
    marker, now = folder / ".pruned", time.time()
    if marker.exists() and now - marker.stat().st_mtime < every:
        return 0
    marker.touch()
    removed = 0
    for path in folder.iterdir():
        if path != marker and now - path.stat().st_mtime > older_than:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def campaign_state(ctx: Context, user: str, campaign_id: str) -> dict:
    """Progress per job and the campaign's creatives (records only, no pictures yet)."""
    with ctx.db() as s:
        campaign = campaign_of(s, user, campaign_id)
        languages = _languages(campaign)
        jobs = [{"id": j.id, "product": j.product, "audience": j.audience, "placement": j.placement,
                 "language": languages.get(j.audience, "en"), "status": j.status, "error": j.error,
                 "replaces": j.replaces} for j in campaign.jobs]
        query = select(records.Creative).where(records.Creative.campaign_id == campaign_id).order_by(records.Creative.id)
        creatives = list(s.scalars(query))
        return {"id": campaign.id, "name": campaign.name, "status": campaign.status, "jobs": jobs,
                "creatives": creatives, "languages": languages}


def _languages(campaign: records.Campaign) -> dict[str, str]:
    """Each audience's BCP 47 language, from the stored (validated) spec."""
    return {a["name"]: a.get("language", "en") for a in campaign.spec["audiences"]}


SORTS = ("id", "score")  # gallery order: as made, or best score first


def gallery(ctx: Context, state: dict, audience: str, placement_name: str, status: str,
            folder: Path, sort: str = "id", min_score: float | None = None) -> list[CreativeView]:
    """The creatives of a campaign state (from `campaign_state`, which checked access), filtered,
    and ordered as made or best score first; `min_score` leaves out creatives scored below it (and
    unscored ones)."""
    if sort not in (None, "", *SORTS):
        raise InputError(f"Sort: one of {', '.join(SORTS)}")
    prune_pictures(folder)
    rows = [c for c in state["creatives"] if not min_score or overall(c) >= min_score]
    if sort == "score":
        rows.sort(key=overall, reverse=True)
    views = []
    for c in rows:
        if any(wanted not in ("", "all", None) and wanted != value
               for wanted, value in ((audience, c.audience), (placement_name, c.placement), (status, c.status))):
            continue
        badge = "passes checks" if c.compliance["ok"] else "fails checks"
        score = f" · score {c.scores['overall']}" if c.scores else ""
        language = state["languages"].get(c.audience, "en")
        views.append(CreativeView(c.id, c.status, _picture(ctx, c, folder, language),
                                  f"{c.audience} · {language_label(language)} · {placement(c.placement).label} · "
                                  f"{c.status} · {badge}{score}"))
    return views


def creative_detail(ctx: Context, user: str, creative_id: str, folder: Path) -> dict:
    with ctx.db() as s:
        c = creative_of(s, user, creative_id)
        language = _languages(s.get(records.Campaign, c.campaign_id)).get(c.audience, "en")
        reviews = s.scalars(select(records.Review).where(records.Review.creative_id == c.id).order_by(records.Review.id))
        history = [{"action": r.action, "reviewer": r.reviewer, "reason": r.reason, "at": f"{r.created_at:%Y-%m-%d %H:%M}"}
                   for r in reviews]
        return {"id": c.id, "campaign_id": c.campaign_id, "status": c.status, "product": c.product,
                "audience": c.audience, "language": language, "direction": direction(language),
                "placement": c.placement, "copy": c.copy, "compliance": c.compliance,
                "scores": c.scores, "lineage": c.lineage, "reviews": history, "image": _picture(ctx, c, folder, language),
                "version": c.version,
                "fields": [n for n, f in placement(c.placement).fields.items() if f.written]}


def creative_alternatives(ctx: Context, user: str, creative_id: str) -> list[dict]:
    """The unchosen candidate copies of the creative's job, each with its scores (see adgen.review.swap)."""
    with ctx.db() as s:
        creative_of(s, user, creative_id)
    return alternatives(ctx, creative_id)


def swap_in(ctx: Context, user: str, creative_id: str, alternative: int | None, seen: int | None = None) -> dict:
    """Swap an unchosen candidate in; the creative is re-rendered, re-checked and back to pending."""
    with ctx.db() as s:
        creative_of(s, user, creative_id)
    if alternative is None or alternative == "":
        raise InputError("Alternative: choose one of the creative's alternatives")
    return swap(ctx, creative_id, int(alternative), user, seen)


def version_of(ctx: Context, user: str, creative_id: str) -> int:
    """The creative's version now: what the page has seen after its own action."""
    with ctx.db() as s:
        return creative_of(s, user, creative_id).version


# ----- review and export -----

def approve_one(ctx: Context, user: str, creative_id: str, seen: int | None = None) -> None:
    with ctx.db() as s:
        campaign_id = creative_of(s, user, creative_id).campaign_id
    approve(ctx, campaign_id, [creative_id], user, None if seen is None else {creative_id: seen})


def reject_one(ctx: Context, user: str, creative_id: str, reason: str, seen: int | None = None) -> None:
    with ctx.db() as s:
        campaign_id = creative_of(s, user, creative_id).campaign_id
    if not (reason or "").strip():
        raise InputError("Reason: say why the creative is rejected")
    reject(ctx, campaign_id, [creative_id], user, reason, None if seen is None else {creative_id: seen})


def edit_copy(ctx: Context, user: str, creative_id: str, field: str, index: int, text: str,
              seen: int | None = None) -> dict:
    """Replace one text; the creative is re-rendered and re-checked (see adgen.review.edit)."""
    with ctx.db() as s:
        creative_of(s, user, creative_id)
    if not (text or "").strip():
        raise InputError("New text: write the replacement text")
    return edit(ctx, creative_id, field, int(index or 0), text, user, seen)


def regenerate_one(ctx: Context, user: str, creative_id: str, seed: int | None, seen: int | None = None) -> str:
    """Make the creative again with a new seed (random when none is given) in the background; only
    the new job is sent."""
    with ctx.db() as s:
        campaign_id = creative_of(s, user, creative_id).campaign_id
    seed = secrets.randbelow(2**31) if seed in (None, "") else int(seed)
    job_id = regenerate(ctx, creative_id, seed, user, seen)
    start_campaign(campaign_id, ctx, [job_id])
    return job_id


def approve_remaining(ctx: Context, user: str, campaign_id: str) -> int:
    """Approve every pending creative that passes its checks; the ones that fail stay pending."""
    with ctx.db() as s:
        campaign_of(s, user, campaign_id)
        query = select(records.Creative.id, records.Creative.compliance).where(
            records.Creative.campaign_id == campaign_id, records.Creative.status == "pending")
        ids = [cid for cid, compliance in s.execute(query) if compliance["ok"]]
    return approve(ctx, campaign_id, ids, user) if ids else 0


def export_zip(ctx: Context, user: str, campaign_id: str, folder: Path) -> Path:
    """The export bundle of the approved creatives as a zip in a fresh folder under `folder`; bundles
    there older than an hour are removed (by then the browser has its copy)."""
    with ctx.db() as s:
        name = campaign_of(s, user, campaign_id).name
    for old in folder.iterdir():
        if time.time() - old.stat().st_mtime > 3600:
            shutil.rmtree(old, ignore_errors=True)
    work = Path(tempfile.mkdtemp(dir=folder))
    bundle = work / name
    export_campaign(ctx, campaign_id, bundle)
    archive = work / f"{name}-{campaign_id}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(bundle.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(work))
    shutil.rmtree(bundle)
    return archive
