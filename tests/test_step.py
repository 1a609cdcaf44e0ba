"""The one training step: the trial's, ``mpbench bench step``'s and the dry run's cost probe."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mpbench.bench.step import make_step
from mpbench.config import TrialConfig
from mpbench.engine.build import autocast_factory
from mpbench.engine.step import grad_scaler, train_step
from mpbench.models import build_model
from mpbench.study.dryrun import estimate, probe_seconds_per_step

ARGS = {"variant": "learnable_tav", "num_classes": 4, "frames": 4, "crop": 32}


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("x3d_xs", **ARGS).train()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 5, 32, 32, generator=gen), torch.tensor([0, 3])


def test_bench_step_and_engine_step_give_the_same_losses() -> None:
    x, y = _batch()
    reference = _model()
    out = reference(x)  # the same forward in train mode, with gradients (TAV needs them)
    want = torch.stack([F.cross_entropy(out.logits, y), out.reg_loss]).detach()
    bench = make_step(_model(), x, y, amp="none")
    engine_model = _model()
    opt = torch.optim.SGD(engine_model.parameters(), lr=1e-3, momentum=0.9)
    cpu = torch.device("cpu")
    kwargs = {"scaler": grad_scaler("none", cpu), "autocast": autocast_factory("none", cpu)}
    first = bench()
    assert torch.allclose(first, want, atol=1e-6) and first[1] > 0  # TAV counted
    assert torch.equal(train_step(engine_model, x, y, optimizer=opt, **kwargs), first)
    assert torch.equal(train_step(engine_model, x, y, optimizer=opt, **kwargs), bench())


def _tiny(**kw: object) -> TrialConfig:
    base = dict(
        backbone="x3d_xs", size="tiny", frames=4, crop=32, batch_size=2, device="cpu",
        dataset="synth", dataset_options={"classes": 4, "train_clips": 8, "val_clips": 4},
    )  # fmt: skip
    return TrialConfig(**{**base, **kw})


@pytest.mark.parametrize(("amp", "dtype"), [("bf16", torch.bfloat16), ("none", torch.float32)])
def test_the_cost_probe_runs_under_the_configs_amp(monkeypatch, amp: str, dtype) -> None:
    from mpbench.engine import build

    seen: list[torch.dtype] = []
    real = build.build_model_for

    def recorded(*args: object, **kwargs: object) -> torch.nn.Module:
        model = real(*args, **kwargs)
        head = model.backbone.net.get_submodule(model.info.classifier)  # before the fp32 pool
        head.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
        return model

    monkeypatch.setattr(build, "build_model_for", recorded)
    assert probe_seconds_per_step(_tiny(amp=amp), steps=1) > 0
    assert seen == [dtype] * 3  # the Timer's two warm-up calls and the timed step


def test_an_fp16_study_is_not_probed_on_a_machine_without_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    total, per_step, notes = estimate([_tiny(amp="fp16", max_steps=4)], steps=1)
    assert total is None and per_step == {}
    assert notes == [
        "x3d_xs/tiny T=4 crop=32 batch=2 amp=fp16: not probed here "
        "(amp 'fp16' needs CUDA; use amp 'bf16' or 'none' on CPU)"
    ]
