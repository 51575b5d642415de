"""The web app's commands: `adgen users add` (accounts) and `adgen ui` (the server).

Registered on the main `adgen` command line by `register`; gradio is imported only when the
server starts, so the other commands stay fast.
"""

import os
import sys

import typer

users_app = typer.Typer(help="Advertiser accounts of the web app.", no_args_is_help=True)


@users_app.command("add")
def users_add(name: str = typer.Argument(..., help="Sign-in name, e.g. alice."),
              brand: list[str] = typer.Option(..., "--brand", help="A brand the user works on (created when new); repeat for more."),
              password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin (for scripts).")):
    """Create an account (or reset its password) and grant it brands. Prompts for the password
    unless --password-stdin or ADGEN_PASSWORD gives it; only a salted scrypt hash is stored."""
    from adgen.accounts import AccountError, add_user
    from adgen.records import open_db
    from adgen.settings import get_settings

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get("ADGEN_PASSWORD"):
        password = os.environ["ADGEN_PASSWORD"]
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with open_db(get_settings()).begin() as s:
            add_user(s, name, password, brand)
    except AccountError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{name}: brands {', '.join(brand)}")


def ui(host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
       port: int = typer.Option(7860, help="Port to listen on.")):
    """Open the advertiser web app: brand kit, campaign builder, review gallery and export."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from adgen.defaults import ensure_defaults
    from adgen.settings import get_settings
    from ui.app import serve

    settings = get_settings()
    # Built (or found) here, at start-up, so no request ever waits for the default models.
    ensure_defaults(settings.models_dir)
    typer.echo(f"adgen web app on http://{host}:{port} (add accounts with 'adgen users add')", err=True)
    serve(settings, host=host, port=port)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.command("ui")(ui)
