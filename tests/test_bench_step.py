"""``mpbench bench step``: the prompted vs baseline training-step timing, side by side."""

from __future__ import annotations

import math
import re

import pytest
import torch
from typer.testing import CliRunner

from mpbench.bench.step import StepTiming, time_training_step
from mpbench.cli import app
from mpbench.cli.backbone_cmds import step_lines


def test_time_training_step_tiny_on_cpu() -> None:
    calls = []
    t = time_training_step(
        backbone="x3d_xs",
        device="cpu",
        batch=2,
        repeats=3,
        warmup=1,
        on_repeat=lambda: calls.append(1),
    )
    assert (t.backbone, t.device, t.size, t.frames, t.crop, t.batch) == (
        "x3d_xs",
        "cpu",
        "tiny",
        8,
        64,
        2,
    )
    assert t.prompt_s > 0 and t.baseline_s > 0 and math.isfinite(t.overhead)
    assert len(calls) == 3
    assert t.prompt_min_s <= t.prompt_s and t.baseline_min_s <= t.baseline_s


def test_overhead_and_report_lines() -> None:
    t = StepTiming("x3d_s", "cuda", "full", 8, 13, 160, "bf16", 0.1021, 0.1000, 10, 0.1, 0.09)
    assert t.overhead == pytest.approx(0.021)
    lines = step_lines(t)
    assert lines[-1] == "overhead 2.1%"
    assert "8 x 3 x 14 x 160 x 160 in, T=13 frames" in lines[0]
    assert lines[1].endswith("102.10 ms/step (fastest 100.00)")
    assert lines[2].endswith("100.00 ms/step (fastest 90.00)")


def test_bench_step_cli_prints_the_overhead_last() -> None:
    args = ["bench", "step", "--backbone", "timesformer", "--device", "cpu", "--batch", "2"]
    result = CliRunner().invoke(app, [*args, "--repeats", "2", "--warmup", "0"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert re.fullmatch(r"overhead -?\d+\.\d%", lines[-1])
    assert "timesformer (tiny) on cpu" in result.output


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--backbone", "x3d_q"], "unknown backbone 'x3d_q'"),
        (["--backbone", "x3d_xs", "--device", "cuda"], "torch.cuda.is_available() is False"),
    ],
)
def test_bench_step_cli_errors(args: list[str], match: str) -> None:
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    result = CliRunner().invoke(app, ["bench", "step", *args, "--repeats", "1"])
    assert result.exit_code == 2
    assert match in " ".join(result.output.split())
