"""The brand-kit commands: `adgen brand show NAME` and `adgen brand set NAME ...`.

Besides the web app's brand-kit editor, `brand set` is the one way a brand's kit (voice, banned
terms, colours, logo) changes: creating a campaign records a new brand with its spec's kit but never
changes an existing one, and each campaign keeps a snapshot of the kit it was made with.
"""

import hashlib
import json
from pathlib import Path

import typer

from cli.console import context, out, user_errors

brand_app = typer.Typer(help="See and change a brand's kit.", no_args_is_help=True)


def _brand(s, name: str):
    from sqlalchemy import select

    from adgen import records

    brand = s.scalar(select(records.Brand).where(records.Brand.name == name))
    if brand is None:
        raise LookupError(f"no brand {name!r}; a brand is recorded by its first campaign or in the web app")
    return brand


@brand_app.command("show")
@user_errors
def brand_show(name: str):
    """The brand's kit as JSON."""
    with context().db() as s:
        b = _brand(s, name)
        out.print_json(json.dumps({"name": b.name, "voice": b.voice, "banned_terms": b.banned_terms,
                                   "colors": b.colors, "logo_key": b.logo_key}))


@brand_app.command("set")
@user_errors
def brand_set(name: str,
              voice: str = typer.Option(None, help="How the brand speaks."),
              banned_terms: str = typer.Option(None, "--banned-terms", help="Comma-separated words no creative may contain "
                                               "(replaces the list; an empty string clears it)."),
              colors: str = typer.Option(None, help="Comma-separated #RRGGBB colours: primary, light, accent."),
              logo: Path = typer.Option(None, help="PNG, JPEG or WebP logo file.")):
    """Change the brand's kit; fields not given stay as they are. The whole kit is checked before
    anything is written. Campaigns already made keep the kit they were made with; exports check
    banned terms against the kit as it is now as well."""
    from pydantic import ValidationError

    from adgen.jobs import logo_problem
    from adgen.spec import Brand, SpecError

    ctx = context()
    with ctx.db() as s:
        b = _brand(s, name)
        kit = {"voice": b.voice, "banned_terms": b.banned_terms, "colors": b.colors}
    def split(text: str) -> list[str]:
        return [t.strip() for t in text.split(",") if t.strip()]

    changed = {k: v for k, v in {"voice": voice, "banned_terms": None if banned_terms is None else split(banned_terms),
                                 "colors": None if colors is None else split(colors)}.items() if v is not None}
    try:
        checked = Brand(name=name, **{**kit, **changed})
    except ValidationError as e:
        err = e.errors()[0]
        raise SpecError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg'].removeprefix('Value error, ')}") from None
    data = None
    if logo is not None:
        if not logo.is_file():
            raise SpecError(f"--logo: {logo} is not a file")
        data = logo.read_bytes()
        if problem := logo_problem(data):
            raise SpecError(f"--logo: {logo}: {problem}")
    with ctx.db.begin() as s:
        b = _brand(s, name)
        b.voice, b.banned_terms, b.colors = checked.voice, checked.banned_terms, checked.colors
        if data is not None:
            b.logo_key = f"brands/logos/{hashlib.sha256(data).hexdigest()[:16]}.png"
            ctx.storage.put(b.logo_key, data, "image/png")
    out.print(f"brand kit of {name} saved")
