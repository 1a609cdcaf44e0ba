"""MotionPrompt / NoPrompt: the paper's maths to float precision, gradients, errors."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor
from torch.func import functional_call

from mpbench.prompt import POWER_NORMS, MotionPrompt, NoPrompt, PromptOutput

MEAN, STD = 0.45, 0.225


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - MEAN) / STD


def plain_formula(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, lam: float, bgr: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The paper's maths restated step by step for a BCTHW input (a, b broadcast to B,T,H,W)."""
    pixels = x * STD + MEAN
    r, g, bl = (pixels[:, 2], pixels[:, 1], pixels[:, 0]) if bgr else pixels.unbind(1)
    grey = 0.299 * r + 0.587 * g + 0.114 * bl  # B x T+1 x H x W
    diff = grey[:, 1:] - grey[:, :-1]
    att = 1.0 / (1.0 + torch.exp(-a * (diff - b)))
    prompts = torch.stack([att * x[:, c, 1:] for c in range(3)], dim=1)
    tav = lam * ((att[:, 1:] - att[:, :-1]) ** 2).sum() / att[:, 1:].numel()
    return prompts, att, tav


def paper_ab(m: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return 5.0 / (0.45 * torch.abs(torch.tanh(m)) + 0.1), 0.6 * torch.tanh(n)


# --------------------------------------------------------------------------- values


def test_one_pixel_video_by_hand() -> None:
    # three 1x1 RGB frames in [0, 1]: grey 0.5, 0.6, 0.299 (pure red)
    pixels = torch.tensor([[0.5, 0.6, 1.0], [0.5, 0.6, 0.0], [0.5, 0.6, 0.0]])  # C x T+1
    x = normalise(pixels).view(1, 3, 3, 1, 1)
    layer = MotionPrompt(slope=10.0, shift=0.05, tav_weight=2.0)
    out = layer(x)
    a1 = sig(10.0 * (0.1 - 0.05))  # D_1 = 0.6 - 0.5
    a2 = sig(10.0 * (-0.301 - 0.05))  # D_2 = 0.299 - 0.6
    assert out.attention.shape == (1, 2, 1, 1)
    assert out.attention.flatten().tolist() == pytest.approx([a1, a2], abs=1e-6)
    frame1 = [(0.6 - MEAN) / STD] * 3
    frame2 = [(1.0 - MEAN) / STD, (0.0 - MEAN) / STD, (0.0 - MEAN) / STD]
    expected = [v for c in range(3) for v in (a1 * frame1[c], a2 * frame2[c])]  # C x T
    assert out.prompts.shape == (1, 3, 2, 1, 1)
    assert out.prompts.flatten().tolist() == pytest.approx(expected, abs=1e-6)
    assert float(out.reg_loss) == pytest.approx(2.0 * (a2 - a1) ** 2, abs=1e-6)


@pytest.mark.parametrize("bgr", [False, True])
@pytest.mark.parametrize("lam", [0.0, 1.5])
def test_matches_plain_formula_on_random_input(bgr: bool, lam: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 7, 5)
    layer = MotionPrompt(tav_weight=lam, channel_order="BGR" if bgr else "RGB")
    a, b = paper_ab(layer.m.detach(), layer.n.detach())
    prompts, att, tav = plain_formula(x, a, b, lam, bgr=bgr)
    out = layer(x)
    torch.testing.assert_close(out.prompts, prompts, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.attention, att, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.reg_loss, tav, atol=1e-6, rtol=0)


@pytest.mark.parametrize("granularity", ["frame", "pixel"])
def test_frame_and_pixel_granularity_match_plain_formula(granularity: str) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 3, 5, 4, 6)
    layer = MotionPrompt(granularity=granularity, frames=4, size=(4, 6), tav_weight=1.0)
    expected_shape = (4, 1, 1) if granularity == "frame" else (4, 6)
    assert layer.m.shape == expected_shape and layer.n.shape == expected_shape
    a, b = paper_ab(layer.m.detach(), layer.n.detach())
    prompts, att, tav = plain_formula(x, a, b, 1.0)
    out = layer(x)
    torch.testing.assert_close(out.prompts, prompts, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.attention, att, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.reg_loss, tav, atol=1e-6, rtol=0)
    assert layer.slope == pytest.approx(float(a.mean()), rel=1e-6)
    assert layer.shift == pytest.approx(float(b.mean()), abs=1e-6)


def test_mean_and_per_channel_std() -> None:
    torch.manual_seed(2)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    x = torch.randn(1, 3, 4, 3, 3)
    layer = MotionPrompt(init=(0.3, -0.2), mean=mean, std=std)
    pixels = x * torch.tensor(std).view(1, 3, 1, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1, 1)
    grey = 0.299 * pixels[:, 0] + 0.587 * pixels[:, 1] + 0.114 * pixels[:, 2]
    a, b = paper_ab(torch.tensor(0.3), torch.tensor(-0.2))
    att = torch.sigmoid(a * (grey[:, 1:] - grey[:, :-1] - b))
    torch.testing.assert_close(layer(x).attention, att, atol=1e-6, rtol=0)


def test_explicit_init_gives_the_slope_and_shift_properties() -> None:
    layer = MotionPrompt(init=(1.05, -2.67))
    assert layer.slope == pytest.approx(5 / (0.45 * math.tanh(1.05) + 0.1), rel=1e-6)
    assert layer.shift == pytest.approx(0.6 * math.tanh(-2.67), rel=1e-6)
    assert isinstance(layer.slope, float) and isinstance(layer.shift, float)


def test_paper_init_draws_m_then_n_from_the_global_rng() -> None:
    torch.manual_seed(123)
    layer = MotionPrompt()
    torch.manual_seed(123)
    m = torch.empty(1, 1, 1).normal_(1e-5, 1.0)
    n = torch.empty(1, 1, 1).normal_(1e-5, 1.0)
    assert torch.equal(layer.m.detach(), m) and torch.equal(layer.n.detach(), n)
    a, b = paper_ab(m, n)  # the slope and shift follow the drawn m and n
    assert (layer.slope, layer.shift) == pytest.approx((float(a), float(b)), rel=1e-6)


def test_fixed_values_are_used_as_given() -> None:
    layer = MotionPrompt(slope=9.0909, shift=-0.6)
    assert layer.slope == pytest.approx(9.0909) and layer.shift == pytest.approx(-0.6)
    assert list(layer.parameters()) == []
    assert {"fixed_slope", "fixed_shift"} <= set(layer.state_dict())


# --------------------------------------------------------------------------- layouts, colour


def test_layouts_give_the_same_maths() -> None:
    torch.manual_seed(3)
    x = torch.randn(2, 3, 5, 4, 4)
    one = MotionPrompt(init=(0.5, 0.1), tav_weight=1.0, layout="BCTHW")
    two = MotionPrompt(init=(0.5, 0.1), tav_weight=1.0, layout="BTCHW")
    a, b = one(x), two(x.permute(0, 2, 1, 3, 4))
    assert b.prompts.shape == (2, 4, 3, 4, 4)
    torch.testing.assert_close(b.prompts, a.prompts.permute(0, 2, 1, 3, 4), atol=1e-6, rtol=0)
    torch.testing.assert_close(b.attention, a.attention, atol=1e-6, rtol=0)
    torch.testing.assert_close(b.reg_loss, a.reg_loss, atol=1e-7, rtol=0)


def test_rgb_vs_bgr() -> None:
    torch.manual_seed(4)
    x = torch.randn(1, 3, 4, 5, 5)
    rgb = MotionPrompt(init=(0.5, 0.1), channel_order="RGB")
    bgr = MotionPrompt(init=(0.5, 0.1), channel_order="BGR")
    flipped = x.flip(1)  # the same pixels stored as B, G, R
    torch.testing.assert_close(bgr(flipped).attention, rgb(x).attention, atol=1e-6, rtol=0)
    assert (bgr(x).attention - rgb(x).attention).abs().max() > 1e-3


# --------------------------------------------------------------------------- gradients


def test_gradients_reach_m_and_n_when_learnable() -> None:
    torch.manual_seed(5)
    layer = MotionPrompt(tav_weight=1.0)
    out = layer(torch.randn(2, 3, 4, 6, 6))
    (out.prompts.sum() + out.reg_loss).backward()
    assert layer.m.grad is not None and layer.m.grad.abs().item() > 0
    assert layer.n.grad is not None and layer.n.grad.abs().item() > 0


@pytest.mark.parametrize(
    ("slope", "shift", "learnt"),
    [("learnable", 0.2, {"m"}), (20.0, "learnable", {"n"}), (20.0, 0.2, set())],
)
def test_only_learnable_values_are_parameters(slope: object, shift: object, learnt: set) -> None:
    layer = MotionPrompt(slope=slope, shift=shift)  # type: ignore[arg-type]
    assert {name for name, _ in layer.named_parameters()} == learnt
    out = layer(torch.randn(1, 3, 3, 4, 4))
    if learnt:
        out.prompts.sum().backward()
        assert all(p.grad is not None and p.grad.abs().item() > 0 for p in layer.parameters())
    else:
        assert not out.prompts.requires_grad


def test_fixed_value_unchanged_after_an_optimiser_step() -> None:
    torch.manual_seed(6)
    layer = MotionPrompt(slope=20.0, shift="learnable", tav_weight=1.0)
    before_slope, before_shift = layer.slope, layer.shift
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    out = layer(torch.randn(2, 3, 4, 6, 6))
    (out.prompts.square().mean() + out.reg_loss).backward()
    opt.step()
    assert layer.slope == before_slope == pytest.approx(20.0)
    assert layer.shift != before_shift


def test_gradcheck_float64() -> None:
    torch.manual_seed(7)
    layer = MotionPrompt(init=(0.4, -0.3), tav_weight=0.7).double()
    x = torch.randn(1, 3, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    m = layer.m.detach().clone().requires_grad_(True)
    n = layer.n.detach().clone().requires_grad_(True)

    def fn(x: torch.Tensor, m: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(functional_call(layer, {"m": m, "n": n}, (x,)))

    assert torch.autograd.gradcheck(fn, (x, m, n))


@pytest.mark.parametrize("pn", ["gamma", "maxexp", "sigme", "asinhe"])
def test_gradcheck_float64_other_power_norms(pn: str) -> None:
    torch.manual_seed(8)
    layer = MotionPrompt(pn=pn, init=(0.4, -0.3), tav_weight=0.5).double()
    x = torch.randn(1, 3, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    m = layer.m.detach().clone().requires_grad_(True)
    n = layer.n.detach().clone().requires_grad_(True)

    def fn(x: torch.Tensor, m: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(functional_call(layer, {"m": m, "n": n}, (x,)))

    assert torch.autograd.gradcheck(fn, (x, m, n))


# --------------------------------------------------------------------------- TAV


def test_tav_zero_for_constant_attention() -> None:
    frame = torch.randn(1, 3, 1, 4, 4)
    x = frame.expand(1, 3, 5, 4, 4).clone()  # a still video: D = 0, A constant
    out = MotionPrompt(tav_weight=3.0)(x)
    assert out.reg_loss.requires_grad and float(out.reg_loss.detach()) == 0.0
    assert out.attention.unique().numel() == 1


def test_tav_equals_the_mean_squared_difference() -> None:
    torch.manual_seed(9)
    out = MotionPrompt(tav_weight=2.5)(torch.randn(2, 3, 5, 3, 4))
    att = out.attention.detach()
    expected = 2.5 * ((att[:, 1:] - att[:, :-1]) ** 2).mean()
    torch.testing.assert_close(out.reg_loss.detach(), expected, atol=1e-7, rtol=1e-6)
    assert out.reg_loss.shape == ()


def test_tav_zero_without_gradients_or_weight() -> None:
    x = torch.randn(1, 3, 4, 4, 4)
    with torch.no_grad():
        assert float(MotionPrompt(tav_weight=1.0)(x).reg_loss) == 0.0
    assert float(MotionPrompt(tav_weight=0.0)(x).reg_loss) == 0.0


# --------------------------------------------------------------------------- power norms


def test_power_norm_registry_names() -> None:
    assert POWER_NORMS.names() == ["sigmoid", "gamma", "maxexp", "sigme", "asinhe"]


@pytest.mark.parametrize(
    ("pn", "strength", "formula"),
    [
        ("gamma", lambda m: torch.sigmoid(m), lambda x, g: x.abs() ** g),
        (
            "maxexp",
            lambda m: 1 + 10 * torch.log1p(torch.exp(m)),
            lambda x, e: 1 - (1 - x.abs()) ** e,
        ),
        (
            "sigme",
            lambda m: 10 * torch.log1p(torch.exp(m)),
            lambda x, e: 2 / (1 + torch.exp(-e * x.abs())) - 1,
        ),
        (
            "asinhe",
            lambda m: 10 * torch.log1p(torch.exp(m)),
            lambda x, e: torch.asinh(e * x.abs()) / torch.asinh(e),
        ),
    ],
)
def test_other_power_norms_match_their_formulas(
    pn: str, strength: Callable[[Tensor], Tensor], formula: Callable[[Tensor, Tensor], Tensor]
) -> None:
    torch.manual_seed(10)
    x = torch.rand(2, 3, 4, 5, 5) * 0.8 + 0.1  # pixels away from the clamps
    layer = MotionPrompt(pn=pn, init=(0.3, 0.2))
    pixels = x * STD + MEAN
    grey = 0.299 * pixels[:, 0] + 0.587 * pixels[:, 1] + 0.114 * pixels[:, 2]
    shifted = grey[:, 1:] - grey[:, :-1] - 0.6 * math.tanh(0.2)
    expected = formula(shifted, strength(torch.tensor(0.3)))
    torch.testing.assert_close(layer(x).attention, expected, atol=1e-6, rtol=1e-5)
    assert layer.slope == pytest.approx(float(strength(torch.tensor(0.3))), rel=1e-6)


@pytest.mark.parametrize("pn", ["gamma", "maxexp", "sigme", "asinhe"])
def test_other_power_norms_have_finite_gradients_on_a_still_video(pn: str) -> None:
    x = torch.randn(1, 3, 1, 4, 4).expand(1, 3, 4, 4, 4).clone()  # D = 0 everywhere
    layer = MotionPrompt(pn=pn, shift=0.0, tav_weight=1.0)
    out = layer(x)
    (out.prompts.sum() + out.reg_loss).backward()
    assert torch.isfinite(layer.m.grad).all()


@pytest.mark.parametrize("pn", ["gamma", "maxexp", "sigme", "asinhe"])
def test_gradcheck_float64_on_a_still_video(pn: str) -> None:
    # D = 0 everywhere: the |x| kink (and gamma's log|x|) must give exact, finite gradients
    torch.manual_seed(14)
    layer = MotionPrompt(pn=pn, shift=0.0, init=(0.4, 0.0), tav_weight=0.5).double()
    frame = torch.randn(1, 3, 1, 2, 2, dtype=torch.float64)
    x = frame.expand(1, 3, 3, 2, 2).clone().requires_grad_(True)
    m = layer.m.detach().clone().requires_grad_(True)

    def fn(x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = functional_call(layer, {"m": m}, (x,))
        return out.prompts, out.attention

    assert torch.autograd.gradcheck(fn, (x, m))


@pytest.mark.parametrize("pn", ["maxexp", "sigme", "asinhe"])
def test_static_pixels_get_zero_attention_whatever_the_strength(pn: str) -> None:
    x = torch.randn(1, 3, 1, 4, 4).expand(1, 3, 4, 4, 4).clone()  # D = 0 everywhere
    layer = MotionPrompt(pn=pn, shift=0.0, init=(0.7, 0.0))
    out = layer(x)
    assert float(out.attention.detach().abs().max()) == 0.0
    out.prompts.sum().backward()
    assert float(layer.m.grad) == 0.0  # f(0) = 0 for every eta: no gradient, but a finite one


@pytest.mark.parametrize("pn", ["gamma", "maxexp", "sigme", "asinhe"])
@pytest.mark.parametrize("m", [-3.0, 0.0, 3.0])
def test_other_power_norms_map_abs_diff_into_unit_interval(pn: str, m: float) -> None:
    diff = torch.arange(-100, 101) / 100.0  # -1 to 1 with an exact 0 in the middle
    layer = MotionPrompt(pn=pn, shift=0.0, init=(m, 0.0))
    att = layer.pn.apply(diff, layer.slope_tensor().detach().flatten())
    assert float(att.min()) >= 0.0 and float(att.max()) <= 1.0
    torch.testing.assert_close(att, att.flip(0), atol=1e-6, rtol=0)  # sign-free: f(-x) = f(x)
    half = att[100:]  # |x| from 0 to 1
    assert bool((half[1:] >= half[:-1]).all())  # monotone in |x|
    if pn != "gamma":  # gamma clamps |x| >= 1e-6
        assert float(half[0]) == 0.0
    if pn != "sigme":  # concave with f(1) = 1 (SigmE tops out at 2 sigmoid(eta) - 1 < 1)
        assert bool((half >= diff[100:] - 1e-6).all())  # boosts small differences


def test_asinhe_is_normalised_and_clamped_at_one() -> None:
    eta = torch.tensor(17.0)
    x = torch.tensor([0.0, 0.5, -0.5, 1.0, -1.0, 1.4, -1.6])
    att = POWER_NORMS.get("asinhe").apply(x, eta)
    half = math.asinh(8.5) / math.asinh(17.0)  # 0.80, the same for both signs
    assert att[:3].tolist() == pytest.approx([0.0, half, half], abs=1e-6)
    assert att[3:].tolist() == pytest.approx([1.0] * 4, abs=1e-6)


def test_maxexp_eta_is_at_least_one() -> None:
    for m in (-30.0, -5.0, 0.0, 2.0):
        eta = MotionPrompt(pn="maxexp", shift=0.0, init=(m, 0.0)).slope
        assert eta >= 1.0 and eta == pytest.approx(1.0 + 10.0 * math.log1p(math.exp(m)))
    assert MotionPrompt(pn="maxexp", slope=1.0, shift=0.0).slope == 1.0  # identity |x|
    with pytest.raises(
        ValueError, match=r"fixed slope 0.5 for pn='maxexp' \(eta\) is outside \[1, inf\)"
    ):
        MotionPrompt(pn="maxexp", slope=0.5)


def test_fixed_strength_of_other_power_norms() -> None:
    layer = MotionPrompt(pn="gamma", slope=0.5, shift=0.0)
    assert layer.slope == 0.5
    x = torch.randn(1, 3, 3, 2, 2)
    pixels = x * STD + MEAN
    grey = 0.299 * pixels[:, 0] + 0.587 * pixels[:, 1] + 0.114 * pixels[:, 2]
    expected = (grey[:, 1:] - grey[:, :-1]).abs().clamp_min(1e-6) ** 0.5
    torch.testing.assert_close(layer(x).attention, expected, atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------- dtypes, compile


def test_autocast_bfloat16() -> None:
    torch.manual_seed(11)
    x = torch.randn(1, 3, 4, 8, 8)
    layer = MotionPrompt(init=(0.5, 0.1), tav_weight=1.0)
    ref = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = layer(x.bfloat16())
        full = layer(x)  # float32 input under autocast stays float32 and exact
    assert half.prompts.dtype == torch.bfloat16 and half.attention.dtype == torch.float32
    torch.testing.assert_close(half.prompts.float(), ref.prompts, atol=0.05, rtol=0.02)
    torch.testing.assert_close(full.attention, ref.attention, atol=1e-6, rtol=0)
    (half.prompts.float().sum() + half.reg_loss).backward()
    assert torch.isfinite(layer.m.grad).all()


def test_float16_input() -> None:
    x = torch.randn(1, 3, 3, 4, 4)
    layer = MotionPrompt(init=(0.5, 0.1))
    out = layer(x.half())
    assert out.prompts.dtype == torch.float16
    torch.testing.assert_close(out.prompts.float(), layer(x).prompts, atol=0.02, rtol=0.01)


def test_torch_compile_matches_eager() -> None:
    torch.manual_seed(12)
    x = torch.randn(1, 3, 4, 6, 6)
    layer = MotionPrompt(init=(0.5, 0.1), tav_weight=1.0, layout="BCTHW")
    eager = layer(x)
    compiled = torch.compile(layer)(x)
    torch.testing.assert_close(compiled.prompts, eager.prompts, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(compiled.reg_loss, eager.reg_loss, atol=1e-7, rtol=1e-6)
    (compiled.prompts.sum() + compiled.reg_loss).backward()
    grad_compiled = layer.m.grad.clone()
    layer.m.grad = None
    (eager.prompts.sum() + eager.reg_loss).backward()
    torch.testing.assert_close(grad_compiled, layer.m.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    torch.manual_seed(13)
    x = torch.randn(2, 3, 5, 8, 8)
    layer = MotionPrompt(init=(0.5, 0.1), tav_weight=1.0)
    cpu = layer(x)
    gpu = layer.cuda()(x.cuda())
    torch.testing.assert_close(gpu.prompts.cpu(), cpu.prompts, atol=1e-5, rtol=1e-5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        half = layer(x.cuda().bfloat16())
    assert half.prompts.dtype == torch.bfloat16


# --------------------------------------------------------------------------- NoPrompt


@pytest.mark.parametrize("layout", ["BCTHW", "BTCHW"])
def test_no_prompt_drops_the_first_frame(layout: str) -> None:
    x = torch.randn(2, 3, 5, 4, 4)
    if layout == "BTCHW":
        x = x.permute(0, 2, 1, 3, 4)
    out = NoPrompt(layout=layout)(x)  # type: ignore[arg-type]
    assert isinstance(out, PromptOutput) and out.attention is None
    expected = x[:, :, 1:] if layout == "BCTHW" else x[:, 1:]
    assert torch.equal(out.prompts, expected)
    assert out.reg_loss.shape == () and float(out.reg_loss) == 0.0
    assert list(NoPrompt().parameters()) == []


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("shape", "kwargs", "match"),
    [
        ((3, 5, 4, 4), {}, r"expected a rank-5 video BCTHW = B x 3 x T\+1 x H x W; got rank 4"),
        ((1, 4, 5, 4, 4), {}, r"expected 3 colour channels at axis 1 .*got 4 in shape \(1, 4, 5"),
        ((1, 3, 5, 4, 4), {"layout": "BTCHW"}, r"expected 3 colour channels at axis 2 .*got 5"),
        ((1, 3, 1, 4, 4), {}, r"expected at least 2 frames at axis 2 .*got 1 in shape"),
        ((1, 2, 3, 4, 4), {"layout": "BTCHW", "tav_weight": 1.0}, r"at least 3 frames.*got 2"),
        ((1, 3, 4, 4, 4), {"granularity": "frame", "frames": 4}, r"frames=4 .*got 4 frames"),
        ((1, 3, 4, 4, 4), {"granularity": "pixel", "size": (4, 5)}, r"\(4, 5\); got \(4, 4\)"),
    ],
)
def test_bad_input_errors(shape: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MotionPrompt(**kwargs)(torch.zeros(shape))


def test_bad_input_errors_no_prompt() -> None:
    with pytest.raises(ValueError, match=r"expected at least 2 frames at axis 1 .*got 1"):
        NoPrompt(layout="BTCHW")(torch.zeros(1, 1, 3, 4, 4))
    with pytest.raises(TypeError, match=r"expected a torch.Tensor video .*got list"):
        NoPrompt()([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"slope": 9.0}, r"fixed slope 9.0 for pn='sigmoid' \(a\) is outside \[9.0909, 50\]"),
        ({"slope": 50.5}, r"outside \[9.0909, 50\]"),
        ({"pn": "gamma", "slope": 0.0}, r"fixed slope 0.0 for pn='gamma' \(gamma\).*\(0, 1\]"),
        ({"pn": "sigme", "slope": -1.0}, r"outside \(0, inf\)"),
        ({"shift": 0.7}, r"fixed shift 0.7 is outside \[-0.6, 0.6\]"),
        ({"shift": float("nan")}, r"fixed shift nan is outside \[-0.6, 0.6\]"),
        ({"slope": "fixed"}, r"slope must be 'learnable' or a number; got 'fixed'"),
        ({"shift": True}, r"shift must be 'learnable' or a number; got True"),
        ({"pn": "sigmod"}, r"unknown power normalisation 'sigmod'. Did you mean 'sigmoid'"),
        ({"layout": "BHWCT"}, r"layout must be one of BCTHW, BTCHW; got 'BHWCT'"),
        ({"channel_order": "BRG"}, r"channel_order must be one of RGB, BGR; got 'BRG'"),
        ({"granularity": "clip"}, r"granularity must be one of scalar, frame, pixel; got 'clip'"),
        ({"granularity": "frame"}, r"granularity='frame' needs frames=T .*got frames=None"),
        ({"granularity": "pixel", "size": (4,)}, r"needs size=\(H, W\).*got size=\(4,\)"),
        (
            {"init": "zeros"},
            r"init must be 'paper' or a pair of finite floats \(m, n\); got 'zeros'",
        ),
        ({"init": (1.0, math.inf)}, r"init must be 'paper' or a pair.*got \(1.0, inf\)"),
        ({"tav_weight": -0.1}, r"tav_weight \(lambda\) must be a finite number >= 0; got -0.1"),
        ({"std": 0.0}, r"std must be > 0; got 0.0"),
        (
            {"mean": (0.4, 0.5)},
            r"mean must be a finite number or 3 finite numbers; got \(0.4, 0.5\)",
        ),
    ],
)
def test_bad_option_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MotionPrompt(**kwargs)


def test_no_prompt_bad_layout() -> None:
    with pytest.raises(ValueError, match=r"layout must be one of BCTHW, BTCHW; got 'TCHW'"):
        NoPrompt(layout="TCHW")  # type: ignore[arg-type]
