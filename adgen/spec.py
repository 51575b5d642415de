"""The campaign spec users write: brand, products, audiences, placements, variants, models, adapters.

Validated with pydantic when loaded; `load_spec` turns any problem into a one-line `SpecError` that
names the field and what would be valid.
"""

import io
import re
import warnings
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from adgen.platforms import registry

HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
MAX_VARIANTS = 20
# Any image a user gives (logo, training photo): decoding costs width x height x 4 bytes and time in
# every job, so a small file that declares a huge canvas (a decompression bomb) is refused from its
# header, before it is decoded. 40 megapixels is a 7000x5700 photo.
MAX_IMAGE_PIXELS = 40_000_000
# What the records hold: names are String(200) columns. Free text (descriptions, personas, voice)
# goes into every prompt, so it is bounded too; and no spec needs to nest deeper than a few levels.
MAX_NAME, MAX_TEXT, MAX_DEPTH = 200, 2000, 10
NAME_KEYS = {"campaign", "name"}
MAX_CANDIDATES = 16
# Best-of-N: 3 candidates keep the wall time near the goal (1.1-1.6x of one candidate on the tiny
# defaults, bench/quality.py); 8 reach audience fit 0.87 on the example but cost about 3x (README "Scores").
DEFAULT_CANDIDATES = 3

NonEmpty = Annotated[str, Field(min_length=1)]


class SpecError(ValueError):
    """A campaign spec that cannot be used; the message names the field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


DEFAULT_COLORS = ["#222222", "#F5F5F5", "#D94F30"]  # a brand that names no colours: primary, light, accent


class Brand(Strict):
    name: NonEmpty = Field(description="Brand name as it appears in ads.")
    voice: str = Field("", description="How the brand speaks, e.g. 'warm, witty, never pushy'.")
    banned_terms: list[str] = Field([], description="Words no creative may contain (case-insensitive).")
    colors: list[str] = Field(
        DEFAULT_COLORS,
        min_length=1,
        max_length=6,
        description="Brand colours as #RRGGBB: primary (dark), light, accent.",
    )
    logo: Path | None = Field(None, description="PNG or JPEG logo, relative to the working folder or the spec file.")
    fonts: list[Path] = Field(
        [], description="The brand's own TrueType/OpenType font files, tried before the bundled fonts; paths as logo."
    )

    def faces(self) -> tuple:
        """The brand's fonts as faces for the renderer (adgen.fonts.Face), in the order given."""
        from adgen.fonts import brand_faces

        return brand_faces(self.fonts) if self.fonts else ()

    @field_validator("colors")
    @classmethod
    def _hex(cls, colors: list[str]) -> list[str]:
        for c in colors:
            if not HEX_COLOR.match(c):
                raise ValueError(f"{c!r} is not a colour; use #RRGGBB, e.g. #3B2A20")
        return [c.upper() for c in colors]


class Product(Strict):
    name: NonEmpty = Field(description="Product name; the copy names it.")
    description: str = Field("", description="One or two sentences about the product.")
    benefits: list[NonEmpty] = Field([], description="Short benefit phrases, e.g. 'low acid'.")
    url: str | None = Field(None, description="Landing page (http or https); exports add UTM parameters from `tracking`. "
                                              "Required to export for a placement on an ad platform.")
    images: list[Path] = Field([], description="Product photos (PNG, JPEG or WebP), relative to the working folder or "
                                              "the spec file; the first is cut out and shown in every image creative.")

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None, info: ValidationInfo) -> str | None:
        from adgen.landing import URLError, check_url

        # A campaign stored before URLs were checked still loads (review, report); its export then
        # fails naming the product, so nothing is lost and nothing bad is exported.
        if url is None or (info.context or {}).get("stored"):
            return url
        try:
            return check_url(url)
        except URLError as e:
            raise ValueError(str(e)) from None


class Audience(Strict):
    name: str = Field(description="Lower-case slug, e.g. busy-parents.")
    persona: NonEmpty = Field(description="Who they are and what they want, in a sentence or two.")
    language: str = Field("en", description="Language of the copy, a BCP 47 tag: en, ja, zh-Hant, pt-BR, ar.")
    tone: str | None = Field(None, description="Tone for this audience, overriding nothing else.")
    interests: list[str] = Field([], description="Interests that set the scene of the images.")

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not SLUG.match(name):
            raise ValueError(f"{name!r} is not a slug; use lower-case letters, digits and hyphens, e.g. busy-parents")
        return name

    @field_validator("language")
    @classmethod
    def _bcp47(cls, language: str) -> str:
        from adgen.languages import language_tag

        return language_tag(language)

    @property
    def label(self) -> str:
        return self.name.replace("-", " ")


class Models(Strict):
    text: NonEmpty = Field("default", description="'default', a local folder or a hub id of a causal LM.")
    image: NonEmpty = Field("default", description="'default', a local folder or a hub id of a diffusers text-to-image pipeline.")
    inpaint: NonEmpty = Field("default", description="'default', a local folder or a hub id of a diffusers inpainting "
                                                     "pipeline; paints the scene around a product photo.")
    judge: NonEmpty = Field("default", description="The encoder that scores copy: 'default' (all-MiniLM-L6-v2, bundled), or a "
                            "local folder or hub id of a sentence-transformers model (a multilingual one for other languages).")


class ImageSettings(Strict):
    """How the image model samples, over its family's defaults (adgen/data/image_families.yaml): set
    both for a few-step model kept in a local folder (SDXL-Turbo: steps 1, guidance 0)."""

    steps: int | None = Field(None, ge=1, le=150, description="Denoising steps; default: the pipeline family's.")
    guidance: float | None = Field(None, ge=0, le=30, description="Classifier-free guidance scale (0 or 1: none, "
                                   "and no negative prompt); default: the pipeline family's.")


class Adapters(Strict):
    text: str | None = Field(None, description="Brand LoRA for the text model from the registry: brand/text@vN or brand/text@latest.")
    image: str | None = Field(None, description="Brand LoRA for the image model from the registry: brand/image@vN or brand/image@latest.")

    @field_validator("text", "image")
    @classmethod
    def _ref(cls, ref: str | None, info) -> str | None:
        from adgen.adapters import AdapterError, parse_ref

        if ref is None:
            return None
        try:
            parse_ref(ref, info.field_name)
        except AdapterError as e:
            raise ValueError(str(e)) from None
        return ref


class Tracking(Strict):
    """UTM parameters added to every creative's landing URL. Values may name {platform} (google,
    meta, linkedin, x), {campaign}, {audience}, {product} (slugged), {placement} and {creative} (its id);
    an empty value leaves the parameter out."""

    utm_source: str = Field("{platform}", description="Where the click came from; default: the platform.")
    utm_medium: str = Field("paid", description="Kind of traffic; default: paid.")
    utm_campaign: str = Field("{campaign}", description="Default: the campaign slug.")
    utm_term: str = Field("{audience}", description="Default: the audience slug.")
    utm_content: str = Field("{creative}", description="Default: the creative id, so reports join back to it.")

    @field_validator("*")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        from adgen.landing import URLError, check_template

        try:
            return check_template(value)
        except URLError as e:
            raise ValueError(str(e)) from None


class CampaignSpec(Strict):
    campaign: str = Field(description="Campaign name, a slug, e.g. spring-launch.")
    brand: Brand
    products: list[Product] = Field(min_length=1)
    audiences: list[Audience] = Field(min_length=1)
    placements: list[str] = Field(min_length=1, description="Placement names from the registry.")
    variants: int = Field(3, ge=1, le=MAX_VARIANTS, description="Creatives per product x audience x placement.")
    candidates: int = Field(DEFAULT_CANDIDATES, ge=1, le=MAX_CANDIDATES, description="Best-of-N: copies written per "
                            "variant, in the same batched model call; the best distinct ones are kept, the rest stay as alternatives.")
    seed: int = Field(0, ge=0, description="Seed for every random choice; the same spec and seed give the same creatives.")
    models: Models = Models()
    adapters: Adapters = Adapters()
    image_settings: ImageSettings = Field(ImageSettings(), description="Image steps and guidance over the model "
                                          "family's defaults.")
    copy_by: Literal["model", "edits"] = Field(
        "model",
        description="'model': the text model writes the copy in each audience's language; 'edits': it writes English "
        "drafts that reviewers replace (adgen review edit), for languages the text model does not write.",
    )
    tracking: Tracking = Field(Tracking(), description="UTM parameters of the exported landing URLs.")

    def language_of(self, audience: str) -> str:
        """The BCP 47 language of the audience named `audience` ("en" for one the spec no longer has)."""
        return next((a.language for a in self.audiences if a.name == audience), "en")

    @field_validator("campaign")
    @classmethod
    def _campaign_slug(cls, name: str) -> str:
        if not SLUG.match(name):
            raise ValueError(f"{name!r} is not a slug; use lower-case letters, digits and hyphens")
        return name

    @field_validator("placements")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        valid = registry().placements
        for name in names:
            if name not in valid:
                raise ValueError(f"unknown placement {name!r}; valid: {', '.join(valid)}")
        if len(set(names)) != len(names):
            raise ValueError("a placement is listed twice")
        return names

    @field_validator("audiences")
    @classmethod
    def _unique_audiences(cls, audiences: list[Audience]) -> list[Audience]:
        names = [a.name for a in audiences]
        if len(set(names)) != len(names):
            raise ValueError("two audiences share a name")
        return audiences

    @field_validator("products")
    @classmethod
    def _unique_products(cls, products: list[Product]) -> list[Product]:
        names = [p.name for p in products]
        if len(set(names)) != len(names):
            raise ValueError("two products share a name")
        return products


def image_size_problem(data: bytes) -> str | None:
    """Why these image bytes are too large to decode (over MAX_IMAGE_PIXELS, read from the header
    alone), or None. Whether the bytes are an image of an accepted format is the caller's check."""
    from PIL import Image, UnidentifiedImageError

    try:
        # Pillow only warns up to twice its own limit; the size is read, and judged, here
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        width = height = None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    if width is None or width * height > MAX_IMAGE_PIXELS:
        size = f"{width}x{height} px" if width else "the image"
        return (f"{size} is over the limit of {MAX_IMAGE_PIXELS // 1_000_000} megapixels "
                "(e.g. 7000x5700); scale it down")
    return None


def check_image_bytes(data: bytes, what: str) -> None:
    """Refuse an image over MAX_IMAGE_PIXELS; `what` names the field or file in the message."""
    if problem := image_size_problem(data):
        raise SpecError(f"{what}: {problem}")


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _check_strings(value: object, source: str, where: str = "", depth: int = 0) -> None:
    """Every string a user wrote: no invisible or control characters (they hide words from the
    banned-term check and from reviewers), no longer than the records or prompts take."""
    from adgen.compliance import invisible_chars

    if depth > MAX_DEPTH:
        raise SpecError(f"{source}: {where}: nested more than {MAX_DEPTH} levels deep; a spec needs a few")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_strings(item, source, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_strings(item, source, f"{where}[{i}]", depth + 1)
    elif isinstance(value, str):
        if hidden := invisible_chars(value):
            raise SpecError(f"{source}: {where}: holds an invisible or control character ({hidden[0]}); remove it")
        limit = MAX_NAME if where.rsplit(".", 1)[-1] in NAME_KEYS else MAX_TEXT
        if len(value) > limit:
            raise SpecError(f"{source}: {where}: {len(value)} characters; at most {limit}")


def check_size(spec: CampaignSpec, source: str = "spec") -> None:
    """A campaign's size against the limits in settings, before anything is recorded."""
    from adgen.settings import get_settings

    settings = get_settings()
    counts = (len(spec.products), len(spec.audiences), len(spec.placements))
    jobs = counts[0] * counts[1] * counts[2]
    if jobs > settings.max_jobs:
        raise SpecError(f"{source}: {jobs} jobs (products x audiences x placements = {' x '.join(map(str, counts))}) "
                        f"is over the limit of {settings.max_jobs} jobs per campaign (ADGEN_MAX_JOBS)")
    if jobs * spec.variants > settings.max_creatives:
        raise SpecError(f"{source}: {jobs * spec.variants} creatives ({jobs} jobs x {spec.variants} variants) is over "
                        f"the limit of {settings.max_creatives} creatives per campaign (ADGEN_MAX_CREATIVES)")


def parse_spec(data: object, source: str = "spec", base_dir: Path | None = None) -> CampaignSpec:
    """Validate a spec given as parsed YAML/JSON, and its size against the limits in settings.
    Relative logo paths resolve against the working folder first, then `base_dir` (the spec file's
    folder); so do product images."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping with campaign, brand, products, audiences, placements")
    _check_strings(data, source)
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        where = _where(err["loc"])
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known field"
        raise SpecError(f"{source}: {where}: {msg}") from None
    check_size(spec, source)
    if spec.brand.logo is not None:
        spec.brand.logo = _resolve(spec.brand.logo, base_dir, f"{source}: brand.logo")
    for i, product in enumerate(spec.products):
        product.images = [_resolve(image, base_dir, f"{source}: products[{i}].images[{j}] ({product.name})")
                          for j, image in enumerate(product.images)]
    for i, font in enumerate(spec.brand.fonts):
        spec.brand.fonts[i] = _resolve(font, base_dir, f"{source}: brand.fonts[{i}]")
    if spec.brand.fonts:
        from adgen.fonts import FontError

        try:
            spec.brand.faces()
        except FontError as e:
            raise SpecError(f"{source}: brand.fonts: {e}") from None
    return spec


def _resolve(path: Path, base_dir: Path | None, where: str) -> Path:
    """A file the spec names, found in the working folder first, then in `base_dir`."""
    candidates = [path] if path.is_absolute() else [Path.cwd() / path] + ([base_dir / path] if base_dir else [])
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise SpecError(f"{where}: file {str(path)!r} does not exist")
    return found.resolve()


def load_spec(path: str | Path) -> CampaignSpec:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text (byte {e.start}); save the spec as UTF-8") from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to be a campaign spec") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}:{line} not valid YAML ({getattr(e, 'problem', e)})") from None
    return parse_spec(data, source=str(path), base_dir=path.parent)
