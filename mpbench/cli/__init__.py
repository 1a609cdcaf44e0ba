"""The ``mpbench`` command line: one module per command group, joined onto one Typer app."""

from __future__ import annotations

from mpbench.cli import (  # noqa: F401  (each module registers its commands on import)
    backbone_cmds,
    bench_data_cmds,
    data_cmds,
    plan_cmd,
    prompt_cmds,
    quickstart_cmd,
    report_cmds,
    study_cmds,
    train_cmds,
    ui_cmds,
    weights_cmds,
)
from mpbench.cli._apps import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
