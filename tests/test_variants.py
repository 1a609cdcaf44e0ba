"""Named prompt variants: every one builds and runs; overrides validate; the list command."""

from __future__ import annotations

import math
import subprocess
import sys

import pydantic
import pytest
import torch
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.prompt import POWER_NORMS, MotionPrompt, NoPrompt
from mpbench.variants import _STRENGTH_RANGES, VariantSpec, get_variant, list_variants

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
        "baseline", "fixed", "learnable", "learnable_tav", "fixed_tav", "slope_only",
        "shift_only", "pn_gamma", "pn_maxexp", "pn_sigme", "pn_asinhe",
    }  # fmt: skip
    assert expected <= set(VARIANT_NAMES)
    assert VARIANT_NAMES[0] == "baseline"


def test_variant_settings() -> None:
    assert get_variant("learnable").tav_weight == 0.0
    assert get_variant("learnable_tav").tav_weight == 1.0
    fixed = get_variant("fixed").build()
    assert list(fixed.parameters()) == []
    assert fixed.slope == pytest.approx(5 / (0.45 * math.tanh(1.05) + 0.1), abs=1e-4)
    assert fixed.shift == pytest.approx(0.6 * math.tanh(-2.67), abs=1e-4)
    assert {n for n, _ in get_variant("slope_only").build().named_parameters()} == {"m"}
    assert {n for n, _ in get_variant("shift_only").build().named_parameters()} == {"n"}
    assert get_variant("fixed_tav").build().tav_weight == 1.0
    gamma = get_variant("pn_gamma").build()
    assert gamma.pn.name == "gamma" and gamma.shift == 0.0


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
    with pytest.raises(ValueError, match=r"'x': fixed slope 60.0 for pn='sigmoid' is outside"):
        VariantSpec(name="x", slope=60.0)
    with pytest.raises(
        ValueError, match=r"'x': fixed slope 2.0 for pn='gamma' is outside \(0, 1\]"
    ):
        VariantSpec(name="x", pn="gamma", slope=2.0)
    with pytest.raises(ValueError, match=r"'x': fixed shift -0.7 is outside \[-0.6, 0.6\]"):
        VariantSpec(name="x", shift=-0.7)
    with pytest.raises(ValueError, match=r"Input should be 'sigmoid'"):
        VariantSpec(name="x", pn="relu")  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError, match=r"frozen"):
        get_variant("fixed").tav_weight = 2.0  # type: ignore[misc]


def test_unknown_variant_lists_close_matches() -> None:
    with pytest.raises(ValueError, match=r"unknown variant 'lernable'. Did you mean 'learnable'"):
        get_variant("lernable")


def test_power_norm_names_and_ranges_mirror_the_layer() -> None:
    assert list(_STRENGTH_RANGES) == POWER_NORMS.names()
    for name, (low, high, low_open, high_open) in _STRENGTH_RANGES.items():
        pn = POWER_NORMS.get(name)
        assert (pn.low, pn.high, pn.low_open, pn.high_open) == (low, high, low_open, high_open)
    assert VariantSpec.model_fields["pn"].annotation.__args__ == tuple(POWER_NORMS.names())


def test_variants_module_does_not_import_torch() -> None:
    code = "import sys, mpbench.variants; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_list_variants_command() -> None:
    result = CliRunner().invoke(app, ["list", "variants"])
    assert result.exit_code == 0, result.output
    for name in VARIANT_NAMES:
        assert name in result.output
    assert "11.0665" in result.output and "-0.5943" in result.output
    assert "learnable_tav: the paper's layer" in result.output
