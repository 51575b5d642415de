"""The placement registry: text limits, image sizes and editorial rules, loaded from data/platforms.yaml.

The numbers live in the data file with their sources; code reads them from here and nowhere else.
"""

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

Style = Literal["headline", "long_headline", "description", "short_description", "primary_text", "path"]
# What a text is in the ad, whatever the platform calls its field: the renderer, compliance and
# exports read roles, never field names.
Role = Literal["headline", "body", "description", "path", "cta", "business_name"]


class TextField(BaseModel):
    """One text field of a placement, e.g. an RSA headline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    role: Role
    style: Style | None = None
    choices: str | None = None  # key into cta_lists: the field is picked from a fixed list
    from_: Literal["brand_name"] | None = None  # the field is copied from the brand, not written
    max: int | None = None
    limit: Literal["hard", "recommended"] = "hard"
    hard_max: int | None = None
    count: tuple[int, int]
    generate: int = 1
    at_least_one_max: int | None = None
    url_length: int | None = None
    pattern: str | None = None
    source: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [self.style is not None, self.choices is not None, self.from_ is not None]
        if sum(kinds) != 1:
            raise ValueError(f"field {self.name!r} needs exactly one of style, choices, from")
        if self.style is not None and self.max is None:
            raise ValueError(f"field {self.name!r} needs max")
        return self

    @property
    def written(self) -> bool:
        """True when the text model writes this field."""
        return self.style is not None


class ImageSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int
    height: int
    min_width: int | None = None
    min_height: int | None = None
    max_kb: int | None = None
    also: list[tuple[int, int]] = []
    safe_top: float = 0.0
    safe_bottom: float = 0.0
    safe_note: str | None = None
    note: str | None = None


class Placement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    label: str
    channel: str
    editorial: str
    source: str
    fields: dict[str, TextField]
    image: ImageSpec | None
    rules: tuple[str, ...] = ()
    cta_choices: tuple[str, ...] = ()

    def first_text(self, role: Role, texts: dict[str, list[str]]) -> str:
        """The first text of the first field with this role that has one ("" when none has)."""
        return next((texts[f.name][0] for f in self.fields.values() if f.role == role and texts.get(f.name)), "")

    def role_texts(self, role: Role, texts: dict[str, list[str]], nth: int = 1) -> list[str]:
        """The texts of the `nth` field with this role, in the registry's field order (RSA path 1 and
        path 2, Performance Max headline and long headline); [] when there is no such field."""
        fields = [f.name for f in self.fields.values() if f.role == role]
        return texts.get(fields[nth - 1], []) if nth <= len(fields) else []


class Registry(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str
    placements: dict[str, Placement]


@cache
def registry() -> Registry:
    """Load and validate the placement registry shipped with adgen."""
    raw = yaml.safe_load(resources.files("adgen").joinpath("data/platforms.yaml").read_text())
    placements = {}
    for name, p in raw["placements"].items():
        fields = {}
        for fname, f in p["fields"].items():
            f = dict(f)
            if "from" in f:
                f["from_"] = f.pop("from")
            fields[fname] = TextField(name=fname, **f)
        cta = next((f.choices for f in fields.values() if f.choices), None)
        placements[name] = Placement(
            name=name,
            **{k: v for k, v in p.items() if k != "fields"},
            fields=fields,
            rules=tuple(raw["editorial"][p["editorial"]]),
            cta_choices=tuple(raw["cta_lists"][cta]) if cta else (),
        )
    return Registry(version=raw["version"], placements=placements)


def placement(name: str) -> Placement:
    reg = registry()
    if name not in reg.placements:
        raise KeyError(f"unknown placement {name!r}; valid: {', '.join(reg.placements)}")
    return reg.placements[name]
