"""The adapter registry: brand LoRAs as versioned refs (`brand/kind@vN`, `brand/kind@latest`) kept
entirely in storage, so the same registry works on a local folder and on S3.

Layout under the storage root, one folder per version plus one index per brand and kind:

    adapters/<brand>/<kind>/v<N>/claimed              written only if absent: who took the number N
    adapters/<brand>/<kind>/v<N>/<adapter files>      the standard PEFT or diffusers files, as trained
    adapters/<brand>/<kind>/v<N>/adgen-adapter.json   metadata: base model and its hash, dataset, metrics, ...
    adapters/<brand>/<kind>/index.json                {"latest": 2}: where @latest points
    adapters/brands.json                              {"northwind": ["text", "image"]}, for listing

A push takes its version number with a conditional write of `claimed` (`Storage.put_new`: a hard
link locally, `If-None-Match: *` on S3), so two pushes at once never both get vN. A version exists
once its metadata is written, and that is written last, so a failed upload never leaves a half
version behind. Runners resolve a ref to its metadata, fetch its files into a local cache keyed by
content hash (each file checked against its sha256, the set against the hash the campaign
recorded) and check that the adapter was trained on the campaign's base model.
"""

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from adgen.storage import Storage

KINDS = ("text", "image")
# The files that make an adapter, per kind: PEFT for causal LMs, diffusers' LoRA file for pipelines.
FORMATS = {
    "text": {"required": ["adapter_config.json", "adapter_model.safetensors"]},
    "image": {"required": ["pytorch_lora_weights.safetensors"]},
}
# Besides the weights, a version keeps what a person reads: the model card, loss curve, samples.
EXTRA_FILES = ("README.md", "loss.png", "validation.png", "metrics.json", "recipe.yaml")
META = "adgen-adapter.json"
CLAIM = "claimed"
BRANDS = "adapters/brands.json"
REF = re.compile(r"^(?P<brand>[a-z0-9][a-z0-9-]*)/(?P<kind>[a-z]+)(@(?P<version>v\d+|latest))?$")


def brand_slug(name: str) -> str:
    """A brand record's name as a registry slug: 'Northwind Coffee' -> 'northwind-coffee'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def names_brand(registry_brand: str, brand_name: str) -> bool:
    """Whether a registry brand slug names a brand record: the record's slug is the slug or starts
    with it ('northwind' names Northwind Coffee)."""
    slug = brand_slug(brand_name)
    return slug == registry_brand or slug.startswith(registry_brand + "-")


class AdapterError(ValueError):
    """An adapter ref or adapter folder that cannot be used; the message names the ref or file."""


@dataclass(frozen=True)
class AdapterRef:
    brand: str
    kind: str
    version: str  # "v3" or "latest"

    def __str__(self) -> str:
        return f"{self.brand}/{self.kind}@{self.version}"


def parse_ref(ref: str, kind: str | None = None) -> AdapterRef:
    """'northwind/text@v2' -> AdapterRef; no version means @latest."""
    m = REF.match(ref.strip())
    if not m or m["kind"] not in KINDS:
        raise AdapterError(f"{ref!r} is not an adapter ref; use brand/text@vN, brand/image@latest, ...")
    if kind and m["kind"] != kind:
        raise AdapterError(f"{ref!r} is not a {kind} adapter; use {m['brand']}/{kind}@vN or {m['brand']}/{kind}@latest")
    return AdapterRef(m["brand"], m["kind"], m["version"] or "latest")


@dataclass
class AdapterVersion:
    """The metadata stored with each version; what lineage and `adapters show` report."""

    brand: str
    kind: str
    version: int
    format: str  # "peft" (text) or "diffusers" (image)
    base: dict  # {"ref", "hash"} of the model it was trained on
    hash: str  # content hash of the adapter files
    files: dict[str, str]  # file name -> sha256
    dataset: dict = field(default_factory=dict)  # {"hash", "size", "source"}
    hyperparameters: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    created: str = ""
    source: str = "adgen finetune"

    @property
    def ref(self) -> str:
        return f"{self.brand}/{self.kind}@v{self.version}"

    @property
    def prefix(self) -> str:
        return f"{_folder(self.brand, self.kind)}/v{self.version}"

    def lineage(self) -> dict:
        """What a creative records about the adapter it was made with."""
        return {"ref": self.ref, "version": self.version, "hash": self.hash, "base": self.base}


def _folder(brand: str, kind: str) -> str:
    return f"adapters/{brand}/{kind}"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def content_hash(files: dict[str, str], kind: str) -> str:
    """The adapter's identity: a hash over the sha256 of its weight files."""
    weights = "".join(f"{n}:{files[n]}" for n in FORMATS[kind]["required"])
    return hashlib.sha256(weights.encode()).hexdigest()[:16]


def adapter_files(path: Path, kind: str) -> list[Path]:
    """The files of an adapter folder that go into the registry; raises naming what is missing."""
    if not path.is_dir():
        raise AdapterError(f"{path} is not a folder")
    missing = [name for name in FORMATS[kind]["required"] if not (path / name).is_file()]
    if missing:
        raise AdapterError(
            f"{path} has no {', '.join(missing)}; a {kind} adapter needs {', '.join(FORMATS[kind]['required'])}"
        )
    return [path / n for n in [*FORMATS[kind]["required"], *EXTRA_FILES] if (path / n).is_file()]


def check_brand(brand: str) -> None:
    """A registry brand is a slug; asked before any training so a typo costs nothing."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,99}", brand):
        raise AdapterError(f"--brand {brand!r} is not a slug; use lower-case letters, digits and hyphens")


def _index(storage: Storage, brand: str, kind: str) -> dict:
    key = f"{_folder(brand, kind)}/index.json"
    return json.loads(storage.get(key)) if storage.exists(key) else {"latest": None}


def _numbers(storage: Storage, brand: str, kind: str) -> list[int]:
    """The versions of brand/kind: every vN whose metadata exists, up to the last number claimed
    (a claim without metadata is a push in progress or one that failed)."""
    found, n = [], 1
    while True:
        prefix = f"{_folder(brand, kind)}/v{n}"
        if storage.exists(f"{prefix}/{META}"):
            found.append(n)
        elif not storage.exists(f"{prefix}/{CLAIM}"):
            return found
        n += 1


def _claim(storage: Storage, brand: str, kind: str, start: int) -> int:
    """The first free version number from `start`, taken atomically."""
    n = start
    while True:
        prefix = f"{_folder(brand, kind)}/v{n}"
        stamp = json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds")}).encode()
        # a version pushed before claims existed has metadata and no claim: taken all the same
        if storage.put_new(f"{prefix}/{CLAIM}", stamp, "application/json") and not storage.exists(f"{prefix}/{META}"):
            return n
        n += 1


def push(
    storage: Storage, path: Path, *, brand: str, kind: str, base: dict, dataset: dict | None = None,
    hyperparameters: dict | None = None, metrics: dict | None = None, source: str = "adgen finetune",
    promote: bool = True,
) -> AdapterVersion:
    """Store an adapter folder as the next version of brand/kind; returns its metadata. With
    `promote`, @latest points to it (otherwise only its @vN ref reaches it until promoted)."""
    check_brand(brand)
    files = adapter_files(path, kind)
    digests = {p.name: _sha256(p) for p in files}
    index = _index(storage, brand, kind)
    number = _claim(storage, brand, kind, (index["latest"] or 0) + 1)
    version = AdapterVersion(
        brand=brand, kind=kind, version=number,
        format="peft" if kind == "text" else "diffusers", base=base, hash=content_hash(digests, kind), files=digests,
        dataset=dataset or {}, hyperparameters=hyperparameters or {}, metrics=metrics or {},
        created=datetime.now(UTC).isoformat(timespec="seconds"), source=source,
    )
    for p in files:
        storage.put(f"{version.prefix}/{p.name}", p.read_bytes())
    storage.put(f"{version.prefix}/{META}", json.dumps(asdict(version), indent=2).encode(), "application/json")
    if promote or index["latest"] is None:
        storage.put(f"{_folder(brand, kind)}/index.json", json.dumps({"latest": version.version}).encode(),
                    "application/json")
    listing = json.loads(storage.get(BRANDS)) if storage.exists(BRANDS) else {}
    if kind not in listing.setdefault(brand, []):
        listing[brand].append(kind)
        storage.put(BRANDS, json.dumps(listing, sort_keys=True).encode(), "application/json")
    return version


def brands(storage: Storage) -> list[str]:
    return sorted(json.loads(storage.get(BRANDS))) if storage.exists(BRANDS) else []


def resolve(storage: Storage, ref: str, kind: str | None = None) -> AdapterVersion:
    """The metadata of a ref; raises AdapterError naming the ref and what exists."""
    r = parse_ref(ref, kind)
    index = _index(storage, r.brand, r.kind)
    number = index["latest"] if r.version == "latest" else int(r.version[1:])
    key = f"{_folder(r.brand, r.kind)}/v{number}/{META}"
    if number is None or not storage.exists(key):
        have = _numbers(storage, r.brand, r.kind)
        if not have:
            raise AdapterError(f"adapter {ref!r} does not exist: brand {r.brand!r} has no {r.kind} adapters")
        raise AdapterError(f"adapter {ref!r} does not exist; {r.brand}/{r.kind} has {', '.join(f'v{v}' for v in have)}")
    return AdapterVersion(**json.loads(storage.get(key)))


def promote(storage: Storage, ref: str) -> AdapterVersion:
    """Point brand/kind@latest at the version `ref` names (to roll forward or back)."""
    version = resolve(storage, ref)
    storage.put(f"{_folder(version.brand, version.kind)}/index.json", json.dumps({"latest": version.version}).encode(),
                "application/json")
    return version


def versions(storage: Storage, brand: str, kind: str) -> tuple[list[AdapterVersion], int | None]:
    return ([resolve(storage, f"{brand}/{kind}@v{v}") for v in _numbers(storage, brand, kind)],
            _index(storage, brand, kind)["latest"])


def check_base(version: AdapterVersion, model: dict, field_name: str) -> None:
    """An adapter only fits the model it was trained on: refuse any other, naming both."""
    if version.base.get("hash") != model["hash"]:
        raise AdapterError(
            f"{field_name}: {version.ref} was trained on base model {version.base.get('ref')!r} "
            f"(hash {version.base.get('hash')}), but models.{version.kind} is {model['ref']!r} (hash {model['hash']})"
        )


def fetch(storage: Storage, lineage: dict, cache_dir: Path) -> Path:
    """The adapter's files in a local folder keyed by its content hash, downloaded on first use and
    checked file by file against the recorded digests; the folder appears whole or not at all."""
    target = cache_dir / lineage["hash"]
    if (target / META).is_file():
        return target
    brand_kind, _, version = lineage["ref"].partition("@")
    meta_key = f"adapters/{brand_kind}/{version}/{META}"
    meta = json.loads(storage.get(meta_key))
    kind = meta.get("kind")
    allowed = {*FORMATS.get(kind, {"required": []})["required"], *EXTRA_FILES}
    if kind not in KINDS or not set(meta["files"]) <= allowed:
        strange = sorted(set(meta["files"]) - allowed) or [str(kind)]
        raise AdapterError(f"{lineage['ref']}: its metadata names {strange[0]!r}, not a file an adapter has")
    if content_hash(meta["files"], kind) != lineage["hash"]:
        raise AdapterError(f"{lineage['ref']}: the files in storage are not the ones the campaign recorded "
                           f"(hash {lineage['hash']})")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache_dir))
    try:
        for name, digest in meta["files"].items():
            data = storage.get(f"adapters/{brand_kind}/{version}/{name}")
            if hashlib.sha256(data).hexdigest() != digest:
                raise AdapterError(f"{lineage['ref']}: {name} in storage does not match its recorded sha256")
            (tmp / name).write_bytes(data)
        (tmp / META).write_text(json.dumps(meta, indent=2))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target
