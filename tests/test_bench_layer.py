"""``mpbench bench layer`` at a tiny size: ours agrees with the reference formulation."""

from __future__ import annotations

import re

import pytest
import torch
from typer.testing import CliRunner

from mpbench.bench.layer import ReferencePrompt, bench_layer
from mpbench.cli import app
from mpbench.prompt import MotionPrompt


def test_bench_layer_tiny() -> None:
    calls: list[int] = []
    result = bench_layer(
        device="cpu",
        batch=1,
        frames=4,
        size=8,
        repeats=3,
        warmup=1,
        on_repeat=lambda: calls.append(1),
    )
    assert isinstance(result.speedup, float) and result.speedup > 0
    assert result.max_abs_diff <= 1e-5 and result.grad_rel_diff <= 1e-4
    assert result.shape == (1, 3, 4, 8, 8) and len(calls) == 3
    assert result.lines()[-1] == f"speedup {result.speedup:.2f}x"


def test_reference_matches_motion_prompt() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6, 6)
    ref = ReferencePrompt(m=0.7, n=-0.4, tav_weight=1.3)(x)
    ours = MotionPrompt(init=(0.7, -0.4), tav_weight=1.3)(x)
    torch.testing.assert_close(ours.prompts, ref.prompts, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.reg_loss, ref.reg_loss, atol=1e-6, rtol=0)


def test_bench_layer_command_prints_the_ratio_last() -> None:
    args = ["bench", "layer", "--device", "cpu", "--batch", "1", "--frames", "3", "--size", "8"]
    result = CliRunner().invoke(app, [*args, "--repeats", "2", "--warmup", "0"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert re.fullmatch(r"speedup \d+\.\d\dx", lines[-1])
    assert any(line.startswith("reference (eager)") for line in lines)
    assert any(line.startswith("ours (eager)") for line in lines)
    diff = re.search(r"max abs diff (\S+) \(outputs\)", result.output)
    assert diff is not None and float(diff.group(1)) <= 1e-5


def test_bench_layer_errors() -> None:
    result = CliRunner().invoke(app, ["bench", "layer", "--frames", "2", "--size", "8"])
    assert result.exit_code == 2
    assert "frames must be an int >= 3; got 2" in result.output
    with pytest.raises(ValueError, match=r"repeats must be an int >= 1; got 0"):
        bench_layer(device="cpu", repeats=0)
    with pytest.raises(ValueError, match=r"device must be auto, cpu or cuda; got 'tpu'"):
        bench_layer(device="tpu", size=8)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a GPU")
def test_bench_layer_cuda_without_gpu() -> None:
    result = CliRunner().invoke(app, ["bench", "layer", "--device", "cuda", "--size", "8"])
    assert result.exit_code == 2
    assert "device 'cuda' requested but torch.cuda.is_available() is False" in result.output


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bench_layer_cuda() -> None:
    result = bench_layer(device="cuda", batch=2, frames=5, size=32, repeats=3, warmup=1)
    assert result.device.startswith("cuda") and result.max_abs_diff <= 1e-5
