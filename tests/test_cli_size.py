"""The commands stay thin: no function in mpbench/cli/ is over 60 lines (an AST scan), and the
data-loading benchmark is two commands, each with its own options."""

from __future__ import annotations

import ast
from pathlib import Path

from typer.testing import CliRunner

from mpbench.cli import app

CLI = Path(__file__).resolve().parents[1] / "mpbench" / "cli"
MAX_LINES = 60


def function_lengths(folder: Path) -> dict[str, int]:
    """``file:line name`` -> lines from ``def`` to the function's last line, of every function
    (methods and nested functions included) in the modules of ``folder``."""
    out = {}
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                out[f"{path.name}:{node.lineno} {node.name}"] = node.end_lineno - node.lineno + 1
    return out


def test_no_cli_function_is_over_60_lines() -> None:
    lengths = function_lengths(CLI)
    assert len(lengths) > 50  # the scan saw the commands
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert too_long == {}


def test_the_scan_counts_lines_from_def_to_end(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (tmp_path / "m.py").write_text(f"def long():\n{body}\n\n\ndef short():\n    pass\n")
    assert function_lengths(tmp_path) == {"m.py:1 long": 62, "m.py:65 short": 2}


def test_bench_decoders_and_bench_loader_answer_help() -> None:
    runner = CliRunner()
    for command, option in (("decoders", "--durations"), ("loader", "--batches")):
        result = runner.invoke(app, ["bench", command, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        assert option in result.output
