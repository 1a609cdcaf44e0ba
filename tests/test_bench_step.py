"""``mpbench bench step``: the prompted vs baseline training-step timing, side by side."""

from __future__ import annotations

import math
import re
import time
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import mpbench.bench.step as step_mod
from mpbench.bench.step import StepTiming, time_training_step
from mpbench.cli import app
from mpbench.cli.backbone_cmds import step_lines
from mpbench.engine.step import timed
from mpbench.prompt import NoPrompt


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


def test_step_timing_alternates_abba_and_takes_median_and_min(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the fake timer reads which model each step trains (make_step's partial holds it) and answers
    # with that model's next scripted time: p = 0.30, 0.50, 0.20 (median 0.30, fastest 0.20) and
    # b = 0.10, 0.12, 0.14 (median 0.12, fastest 0.10): overhead 0.30 / 0.12 - 1 = 1.5
    script = {"p": iter([0.30, 0.50, 0.20]), "b": iter([0.10, 0.12, 0.14])}
    order: list[str] = []

    def fake_timed(fn: Any) -> float:
        name = "b" if isinstance(fn.args[0].prompt, NoPrompt) else "p"
        order.append(name)
        return next(script[name])

    monkeypatch.setattr(step_mod, "timed", fake_timed)
    t = time_training_step(backbone="x3d_xs", device="cpu", batch=1, repeats=3, warmup=0)
    assert order == ["p", "b", "b", "p", "p", "b"]  # ABBA: drift falls on both
    assert (t.prompt_s, t.prompt_min_s) == (0.30, 0.20)
    assert (t.baseline_s, t.baseline_min_s) == (0.12, 0.10)
    assert t.overhead == pytest.approx(1.5)


def test_timed_is_torch_benchmark_timer_of_one_warm_call() -> None:
    """One timed call after the Timer's two warm-up calls, measured in seconds."""
    calls: list[float] = []

    def nap() -> None:
        calls.append(time.perf_counter())
        time.sleep(0.05)

    seconds = timed(nap)
    assert len(calls) == 3
    assert 0.05 <= seconds < 0.05 + 0.5


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
