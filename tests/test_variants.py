"""Named prompt variants: every one builds and runs; overrides validate; the list command."""

from __future__ import annotations

import functools
import itertools
import subprocess
import sys
from collections.abc import Callable
from typing import NamedTuple

import pydantic
import pytest
import torch
from typer.testing import CliRunner

from mpbench._ranges import STRENGTH_RANGES
from mpbench.cli import app
from mpbench.prompt import POWER_NORMS, MotionPrompt, NoPrompt, paper_shift, paper_slope
from mpbench.variants import (
    PUBLISHED_MN,
    VariantSpec,
    get_variant,
    list_variants,
    paper_slope_shift,
    sigmoid_attention,
)

VARIANT_NAMES = [v.name for v in list_variants()]


@pytest.mark.parametrize("name", VARIANT_NAMES)
@pytest.mark.parametrize("layout", ["BCTHW", "BTCHW"])
def test_every_variant_builds_and_runs(name: str, layout: str) -> None:
    spec = get_variant(name)
    layer = spec.build(layout=layout, frames=4, size=(5, 6))  # type: ignore[arg-type]
    x = torch.randn(2, 3, 5, 5, 6)  # T + 1 = 5 frames
    if layout == "BTCHW":
        x = x.permute(0, 2, 1, 3, 4)
    out = layer(x)
    assert out.prompts.shape == ((2, 3, 4, 5, 6) if layout == "BCTHW" else (2, 4, 3, 5, 6))
    assert torch.isfinite(out.prompts).all() and out.reg_loss.shape == ()
    if spec.prompt:
        assert isinstance(layer, MotionPrompt) and out.attention.shape == (2, 4, 5, 6)
        if any(p.requires_grad for p in layer.parameters()):
            (out.prompts.sum() + out.reg_loss).backward()
            assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    else:
        assert isinstance(layer, NoPrompt) and out.attention is None


def test_registry_contents() -> None:
    expected = {
        "baseline", "fixed", "fixed_finegym", "fixed_hmdb51", "fixed_mpii",
        "learnable", "learnable_tav", "slope_only", "shift_only", "pn_gamma", "pn_maxexp",
        "pn_sigme", "pn_asinhe",
    }  # fmt: skip
    assert expected <= set(VARIANT_NAMES)
    assert "fixed_tav" not in VARIANT_NAMES  # its TAV term was a constant: it trained as `fixed`
    # the project page: "For UCF-Crime, we use the learned slope and shift from MPII Cooking 2"
    assert "fixed_ucfcrime" not in VARIANT_NAMES
    assert VARIANT_NAMES[0] == "baseline"


def test_variant_settings() -> None:
    assert get_variant("learnable").tav_weight == 0.0
    assert get_variant("learnable_tav").tav_weight == 1.0
    fixed = get_variant("fixed").build()
    assert list(fixed.parameters()) == []
    assert (fixed.slope, fixed.shift) == pytest.approx((30.0, 0.1))
    slope_only, shift_only = get_variant("slope_only").build(), get_variant("shift_only").build()
    assert {n for n, _ in slope_only.named_parameters()} == {"m"}
    assert {n for n, _ in shift_only.named_parameters()} == {"n"}
    assert slope_only.shift == pytest.approx(0.1) and shift_only.slope == pytest.approx(30.0)
    gamma = get_variant("pn_gamma").build()
    assert gamma.pn.name == "gamma" and gamma.shift == 0.0


def test_the_papers_slope_and_shift_constants() -> None:
    """a = 5 / (0.45 |tanh m| + 0.1) in [5 / 0.55, 50] and b = 0.6 tanh n, written once."""
    from mpbench import _ranges as R

    assert (R.SLOPE_SCALE, R.SLOPE_GAIN, R.SLOPE_FLOOR, R.SHIFT_LIMIT) == (5.0, 0.45, 0.1, 0.6)
    assert pytest.approx((9.090909, 50.0)) == (R.SLOPE_LOW, R.SLOPE_HIGH)
    assert paper_slope_shift(1.05, -2.67) == pytest.approx((11.066529, -0.594272), abs=1e-6)
    assert paper_slope_shift(0.0, 0.0) == (50.0, 0.0)
    a = paper_slope(torch.tensor([0.0, 1.05, 30.0], dtype=torch.float64))
    expected = torch.tensor([50.0, 11.066529, 5 / 0.55], dtype=torch.float64)
    torch.testing.assert_close(a, expected, atol=1e-6, rtol=0)
    b = paper_shift(torch.tensor([-2.67, 30.0], dtype=torch.float64))
    torch.testing.assert_close(
        b, torch.tensor([-0.594272, 0.6], dtype=torch.float64), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("key", sorted(PUBLISHED_MN))
def test_published_fixed_variants_use_the_learnt_m_n(key: str) -> None:
    m, n = PUBLISHED_MN[key]
    spec = get_variant(f"fixed_{key}")
    assert (spec.slope, spec.shift) == paper_slope_shift(m, n)  # computed, not typed in
    learnt = MotionPrompt(init=(m, n)).double()  # the layer that ended at (m, n)
    frozen = spec.build().double()
    x = torch.randn(1, 3, 4, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(frozen(x).prompts, learnt(x).prompts, atol=1e-6, rtol=0)


def test_published_values_on_the_project_page() -> None:
    assert PUBLISHED_MN == {
        "finegym": (1.05, -2.67),
        "hmdb51": (0.2646, -0.6615),
        "mpii": (0.257, 0.053),
    }


def _attention_of_a_grey_step(layer: torch.nn.Module, step: float) -> float:
    """Attention of a 1-pixel grey video whose grey level rises by ``step`` between frames."""
    grey = torch.tensor([0.4, 0.4 + step])
    x = ((grey - 0.45) / 0.225).view(1, 1, 2, 1, 1).expand(1, 3, 2, 1, 1)
    with torch.no_grad():
        return float(layer(x).attention.flatten()[0])


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_static_attention_matches_the_layer(name: str) -> None:
    spec = get_variant(name)
    static = spec.static_attention()
    if spec.prompt and spec.pn == "sigmoid" and not spec.learns_attention:
        assert static == pytest.approx(_attention_of_a_grey_step(spec.build(), 0.0), abs=1e-6)
    else:
        assert static is None


def test_fixed_attends_static_pixels_off_motion_on() -> None:
    layer = get_variant("fixed").build()
    assert get_variant("fixed").static_attention() == pytest.approx(0.047426, abs=1e-6)
    assert _attention_of_a_grey_step(layer, 0.0) < 0.1  # static pixels suppressed
    assert _attention_of_a_grey_step(layer, 0.02) == pytest.approx(0.0832, abs=1e-4)  # noise
    assert _attention_of_a_grey_step(layer, 0.2) == pytest.approx(0.9526, abs=1e-4)  # passes
    assert _attention_of_a_grey_step(layer, -0.2) < 0.01  # darkening: the signed sigmoid


def test_published_static_attention() -> None:
    static = {k: get_variant(f"fixed_{k}").static_attention() for k in PUBLISHED_MN}
    assert static == pytest.approx(
        {"finegym": 0.998609, "hmdb51": 0.999676, "mpii": 0.321871},
        abs=1e-6,
    )
    assert sigmoid_attention(0.1, slope=30.0, shift=0.1) == 0.5
    assert sigmoid_attention(-1000.0, slope=50.0, shift=0.6) == 0.0  # no overflow
    assert sigmoid_attention(1000.0, slope=50.0, shift=-0.6) == 1.0


# --------------------------------------------------------------------------- no two alike


class TrainingSignature(NamedTuple):
    """What decides how a variant trains: its parameters, its output, whether its TAV pulls."""

    params: dict[str, tuple[int, ...]]
    prompts: torch.Tensor
    reg_has_gradient: bool


def _reg_gradients(layer: torch.nn.Module, reg_loss: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of ``reg_loss`` w.r.t. the layer's parameters (zeros where it has none)."""
    params = list(layer.parameters())
    if not params or not reg_loss.requires_grad:
        return [torch.zeros_like(p) for p in params]
    grads = torch.autograd.grad(reg_loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def _moving_video() -> torch.Tensor:
    """A normalised B x 3 x T+1 x H x W clip of random pixels (it moves everywhere)."""
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(2, 3, 5, 5, 6, generator=generator) - 0.45) / 0.225


@functools.cache
def training_signature(name: str) -> TrainingSignature:
    """The signature of the registered variant ``name``, built with init seed 0."""
    torch.manual_seed(0)
    layer = get_variant(name).build(frames=4, size=(5, 6))
    out = layer(_moving_video())
    grads = _reg_gradients(layer, out.reg_loss)
    return TrainingSignature(
        params={n: tuple(p.shape) for n, p in layer.named_parameters()},
        prompts=out.prompts.detach(),
        reg_has_gradient=any(bool(g.abs().max() > 0) for g in grads),
    )


@pytest.mark.parametrize(("one", "two"), list(itertools.combinations(VARIANT_NAMES, 2)))
def test_no_two_variants_train_identically(one: str, two: str) -> None:
    a, b = training_signature(one), training_signature(two)
    params_differ = a.params != b.params
    output_differs = a.prompts.shape != b.prompts.shape or not torch.allclose(
        a.prompts, b.prompts, atol=1e-4, rtol=0
    )
    tav_differs = a.reg_has_gradient != b.reg_has_gradient
    assert params_differ or output_differs or tav_differs, (
        f"{one!r} and {two!r} have the same parameters {a.params}, the same prompts on the same "
        f"input and init seed, and the same TAV pull ({a.reg_has_gradient}): they train alike"
    )


@pytest.mark.parametrize("name", [v.name for v in list_variants() if v.tav_weight > 0])
def test_tav_variants_have_a_tav_gradient(name: str) -> None:
    torch.manual_seed(0)
    layer = get_variant(name).build(frames=4, size=(5, 6))
    out = layer(_moving_video())
    assert float(out.reg_loss.detach()) > 0
    grads = _reg_gradients(layer, out.reg_loss)
    assert grads and all(bool(g.abs().max() > 0) for g in grads)


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_no_variant_weights_a_constant_tav(name: str) -> None:
    spec = get_variant(name)
    assert spec.tav_weight == 0 or training_signature(name).reg_has_gradient


@pytest.mark.parametrize(
    "settings",
    [{"slope": 20.0, "shift": 0.1}, {"slope": 20.0, "shift": 0.1, "granularity": "pixel"}],
)
def test_fixed_attention_refuses_a_tav_weight(settings: dict) -> None:
    match = (
        r"variant 'x': tav_weight=1.0 needs a learnable slope or shift: with both fixed the "
        r"attention depends on no parameter, so the TAV term is a constant without gradient"
    )
    with pytest.raises(ValueError, match=match):
        VariantSpec(name="x", tav_weight=1.0, **settings)
    with pytest.raises(ValueError, match=r"variant 'fixed': tav_weight=0.5 needs a learnable"):
        get_variant("fixed").with_overrides(tav_weight=0.5)
    assert VariantSpec(name="x", slope=20.0, tav_weight=1.0).tav_weight == 1.0  # shift learnt


def test_removed_fixed_tav_gets_the_unknown_name_error() -> None:
    with pytest.raises(
        ValueError, match=r"unknown variant 'fixed_tav'. Did you mean 'fixed', .*Known: baseline"
    ):
        get_variant("fixed_tav")


# --------------------------------------------------------------------------- build, overrides


def test_build_passes_layer_options() -> None:
    layer = get_variant("learnable").build(
        layout="BTCHW", mean=(0.4, 0.4, 0.4), std=0.5, channel_order="BGR"
    )
    assert (layer.layout, layer.channel_order, layer.std) == ("BTCHW", "BGR", (0.5, 0.5, 0.5))
    assert get_variant("baseline").build(layout="BTCHW").layout == "BTCHW"


def test_granularity_variants_need_frames_and_size() -> None:
    with pytest.raises(ValueError, match=r"granularity='frame' needs frames=T"):
        get_variant("learnable_frame").build()
    with pytest.raises(ValueError, match=r"granularity='pixel' needs size=\(H, W\)"):
        get_variant("learnable_pixel").build()


def test_with_overrides() -> None:
    spec = get_variant("learnable_tav").with_overrides(tav_weight=0.5, init_m=1.05, init_n=-2.67)
    assert spec.tav_weight == 0.5 and spec.init == (1.05, -2.67)
    assert get_variant("learnable_tav").tav_weight == 1.0  # the registry entry is untouched
    layer = spec.build()
    assert layer.slope == pytest.approx(11.0665, abs=1e-4) and layer.tav_weight == 0.5
    assert get_variant("slope_only").with_overrides(init_m=0.3).init == (0.3, 0.0)
    assert spec.with_overrides(init_n=0.1).init == (1.05, 0.1)
    assert get_variant("baseline").with_overrides(tav_weight=0.0).tav_weight == 0.0


def test_with_overrides_errors() -> None:
    with pytest.raises(ValueError, match=r"greater than or equal to 0"):
        get_variant("learnable").with_overrides(tav_weight=-1.0)
    with pytest.raises(ValueError, match=r"learns shift from the paper's random init: give init_n"):
        get_variant("learnable").with_overrides(init_m=0.5)
    with pytest.raises(ValueError, match=r"'baseline' has no prompt, so tav_weight must be 0"):
        get_variant("baseline").with_overrides(tav_weight=1.0)
    with pytest.raises(ValueError, match=r"'baseline' has no prompt, so it takes no init"):
        get_variant("baseline").with_overrides(init_m=1.0, init_n=1.0)


def test_spec_validation_errors() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"Extra inputs are not permitted"):
        VariantSpec(name="x", colour=1)  # type: ignore[call-arg]
    with pytest.raises(
        ValueError, match=r"'x': fixed slope 60.0 for pn='sigmoid' \(a\) is outside"
    ):
        VariantSpec(name="x", slope=60.0)
    with pytest.raises(
        ValueError, match=r"'x': fixed slope 2.0 for pn='gamma' \(gamma\) is outside \(0, 1\]"
    ):
        VariantSpec(name="x", pn="gamma", slope=2.0)
    with pytest.raises(
        ValueError, match=r"'x': fixed slope 0.9 for pn='maxexp' \(eta\) is outside \[1, inf\)"
    ):
        VariantSpec(name="x", pn="maxexp", slope=0.9, shift=0.0)
    assert VariantSpec(name="x", pn="maxexp", slope=1.0, shift=0.0).slope == 1.0
    with pytest.raises(ValueError, match=r"'x': fixed shift -0.7 is outside \[-0.6, 0.6\]"):
        VariantSpec(name="x", shift=-0.7)
    with pytest.raises(ValueError, match=r"Input should be 'sigmoid'"):
        VariantSpec(name="x", pn="relu")  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError, match=r"frozen"):
        get_variant("fixed").tav_weight = 2.0  # type: ignore[misc]


def test_unknown_variant_lists_close_matches() -> None:
    with pytest.raises(ValueError, match=r"unknown variant 'lernable'. Did you mean 'learnable'"):
        get_variant("lernable")


def test_power_norm_names_match_the_layer() -> None:
    assert list(STRENGTH_RANGES) == POWER_NORMS.names()
    assert VariantSpec.model_fields["pn"].annotation.__args__ == tuple(POWER_NORMS.names())


# (pn, fixed strength, accepted): the edges of each range, from the parametrisations:
# sigmoid a = 5 / (0.45 |tanh m| + 0.1) in [5 / 0.55 = 9.0909, 50]; gamma = sigmoid(m) in (0, 1];
# maxexp eta = 1 + 10 softplus(m) in [1, inf); sigme/asinhe eta = 10 softplus(m) in (0, inf)
STRENGTH_EDGES = [
    ("sigmoid", 9.0909, True),
    ("sigmoid", 9.09, False),
    ("sigmoid", 50.0, True),
    ("sigmoid", 50.01, False),
    ("gamma", 0.0, False),
    ("gamma", 1e-3, True),
    ("gamma", 1.0, True),
    ("gamma", 1.001, False),
    ("maxexp", 0.999, False),
    ("maxexp", 1.0, True),
    ("maxexp", 1e6, True),
    ("sigme", 0.0, False),
    ("sigme", 1e-3, True),
    ("asinhe", -1.0, False),
    ("asinhe", 1e6, True),
]


def _accepts(build: Callable[[], object]) -> bool:
    """Whether ``build()`` returns rather than raising a ValueError."""
    try:
        build()
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("pn", "slope", "accepted"), STRENGTH_EDGES)
def test_variant_and_layer_accept_the_same_fixed_strengths(
    pn: str, slope: float, accepted: bool
) -> None:
    spec = _accepts(lambda: VariantSpec(name="x", pn=pn, slope=slope, shift=0.0))  # type: ignore[arg-type]
    layer = _accepts(lambda: MotionPrompt(pn=pn, slope=slope, shift=0.0))
    assert (spec, layer) == (accepted, accepted)


@pytest.mark.parametrize(("shift", "accepted"), [(-0.6, True), (0.6, True), (0.601, False)])
def test_variant_and_layer_accept_the_same_fixed_shifts(shift: float, accepted: bool) -> None:
    spec = _accepts(lambda: VariantSpec(name="x", slope=30.0, shift=shift))
    layer = _accepts(lambda: MotionPrompt(slope=30.0, shift=shift))
    assert (spec, layer) == (accepted, accepted)


def test_variants_module_does_not_import_torch() -> None:
    code = "import sys, mpbench.variants; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_list_variants_command() -> None:
    result = CliRunner().invoke(app, ["list", "variants"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for name in VARIANT_NAMES:
        assert name in result.output
    assert "learnable_tav: the paper's layer" in result.output
    assert "lambda: reference 0.0 (VMPS.PENALTY_WEIGHT)" in result.output
    assert "schedule: reference steps at epochs [0, 11, 14]" in result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines() if line.strip()}
    assert "A(D=0)" in rows["name"]
    # name pn slope shift lambda granularity init A(D=0)
    assert rows["fixed"][2:4] + rows["fixed"][-1:] == ["30", "0.1", "0.04743"]
    assert rows["fixed_finegym"][2:4] + rows["fixed_finegym"][-1:] == [
        "11.0665", "-0.594272", "0.9986"
    ]  # fmt: skip
    assert rows["fixed_mpii"][-1] == "0.3219"
    for name in ("learnable", "learnable_tav", "slope_only", "shift_only", "pn_asinhe"):
        assert rows[name][-1] == "learnt"
    assert rows["baseline"][-1] == "-"
