"""``mpbench weights fetch``: download published weights ahead of a run (e.g. of a cluster)."""

from __future__ import annotations

from typing import Annotated

import typer

from mpbench.cli._apps import app, command, console, err_console

weights_app = typer.Typer(
    help="Published backbone weights in the local caches.", no_args_is_help=True
)
app.add_typer(weights_app, name="weights")


@command(weights_app, "fetch")
def fetch_cmd(
    backbones: Annotated[list[str], typer.Argument(help="backbone names (mpbench list backbones)")],
    progress: Annotated[bool, typer.Option(help="show a download bar")] = True,
) -> None:
    """Download the published weights of BACKBONES into the torch hub / Hugging Face caches
    where a `pretrained = true` trial finds them (a file already there is kept)."""
    from mpbench.models import get_backbone
    from mpbench.models.fetch import ensure_checkpoint

    infos = [get_backbone(name).info for name in backbones]  # every name checked first
    for info in infos:
        try:
            path = ensure_checkpoint(info, progress=progress)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            err_console.print(f"error: {info.name}: {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from exc
        console.print(f"{info.name}: {path}", highlight=False, soft_wrap=True)
