"""What every command of the `adgen` command line shares: the consoles, the one-line error for bad
input (exit status 2), the service context from the environment and the progress bars.
"""

import functools
import os

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# adgen draws its own progress; the libraries' own bars and notices only clutter the terminal.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

console = Console(stderr=True)
out = Console()


def user_errors(fn):
    """Turn the library's input errors into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from adgen.adapters import AdapterError
        from adgen.export import ExportError
        from adgen.jobs import RunnerBusy
        from adgen.models import ModelError
        from adgen.records import SchemaError
        from adgen.results import ResultsError
        from adgen.review import ReviewError
        from adgen.spec import SpecError

        try:
            return fn(*args, **kwargs)
        except (SpecError, ModelError, ReviewError, ExportError, AdapterError, LookupError, SchemaError,
                ResultsError, RunnerBusy) as e:
            console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def context():
    from adgen.context import Context
    from adgen.settings import get_settings

    return Context(get_settings())


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Rows under a header row as plain, aligned columns on stdout: never wrapped or cut, so a
    script can read the ids."""
    header, *body = rows
    table = Table(*header, box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in table.columns:
        column.no_wrap = True
    for row in body:
        table.add_row(*(Text(cell) for cell in row))
    Console(width=10_000, highlight=False).print(table)


def progress(transient: bool = False) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=transient)


def quiet_model_loading() -> None:
    """Commands that load models draw their own progress; diffusers' loading bar only clutters it."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()


def model_progress(bar: Progress):
    tasks = {}

    def update(label: str, done: int, total: int):
        key = label.split(" (")[0]
        if key not in tasks:
            tasks[key] = bar.add_task(f"building {key}", total=total)
        bar.update(tasks[key], completed=done, description=f"building {label}")

    return update


