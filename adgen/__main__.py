"""`python -m adgen` is the `adgen` command (cli/main.py); an entry point, never imported."""

from cli.main import app

app()
