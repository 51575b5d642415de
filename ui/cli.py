"""The web app's commands: `adgen users add / passwd / remove` (accounts) and `adgen ui` (the server).

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
    from adgen.accounts import add_user

    _change(add_user, name, _password(password_stdin), brand)
    typer.echo(f"{name}: brands {', '.join(brand)}")


@users_app.command("passwd")
def users_passwd(name: str = typer.Argument(..., help="Sign-in name of an existing user."),
                 password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin (for scripts).")):
    """Set a new password. Every web app session of the user ends within a few seconds."""
    from adgen.accounts import set_password

    _change(set_password, name, _password(password_stdin))
    typer.echo(f"{name}: password changed; their sessions are ended")


@users_app.command("remove")
def users_remove(name: str = typer.Argument(..., help="Sign-in name of the user to remove.")):
    """Remove an account and its brand grants (brands, campaigns and reviews stay). Their web app
    sessions end within a few seconds."""
    from adgen.accounts import remove_user

    _change(remove_user, name)
    typer.echo(f"{name}: removed")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get("ADGEN_PASSWORD"):
        return os.environ["ADGEN_PASSWORD"]
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _change(fn, *args) -> None:
    """Run one account change in a transaction; an AccountError is one line and exit 2."""
    from adgen.accounts import AccountError
    from adgen.records import open_db
    from adgen.settings import get_settings

    try:
        with open_db(get_settings()).begin() as s:
            fn(s, *args)
    except AccountError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


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
