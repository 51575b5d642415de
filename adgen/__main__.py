"""`python -m adgen` is the `adgen` command."""

from adgen.cli import app

app()
