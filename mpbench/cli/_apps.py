"""The Typer apps that the command modules attach to, and the user-error wrapper.

Only typer and rich are imported here: heavy libraries are imported inside command bodies.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="mpbench",
    help="Ablations and searches of the video motion prompt layer (Chen et al., ACML 2024).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
list_app = typer.Typer(
    help="List registered variants, backbones and datasets.", no_args_is_help=True
)
bench_app = typer.Typer(help="Benchmarks that print side-by-side ratios.", no_args_is_help=True)
data_app = typer.Typer(help="Generate and inspect datasets.", no_args_is_help=True)
app.add_typer(list_app, name="list")
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")


@contextlib.contextmanager
def repeat_progress(label: str, repeats: int) -> Iterator[Callable[[], None]]:
    """A transient bar of ``repeats`` timed repeats (shown on a terminal only); yields the
    callback that advances it by one repeat."""
    from rich.progress import Progress

    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(label, total=repeats)
        yield lambda: progress.advance(task)


USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, FileNotFoundError)


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn bad input (ValueError, TypeError, FileNotFoundError) into a message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            from rich.markup import escape

            from mpbench._secrets import mask_url

            err_console.print(
                f"[bold red]error:[/] {escape(mask_url(str(exc)))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(code=2) from exc

    return wrapper


def command(
    typer_app: typer.Typer, name: str | None = None, **options: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Register the function as a command of ``typer_app`` (``name`` and ``options`` as
    ``Typer.command`` takes them) whose bad input is a message and exit code 2
    (:func:`user_errors`): every command is declared with it."""

    def deco(fn: Callable[P, R]) -> Callable[P, R]:
        wrapped = user_errors(fn)
        typer_app.command(name, **options)(wrapped)
        return wrapped

    return deco
