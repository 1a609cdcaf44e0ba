"""The video motion prompt layer of Chen et al. (ACML 2024) and its no-prompt baseline.

The maths (the authors' ``timesformer/models/vmps.py``), for a clip of T+1 normalised frames:

1. grey ``g = 0.299 R + 0.587 G + 0.114 B`` of the un-normalised frames ``x * std + mean``;
2. frame differences ``D_t = g_{t+1} - g_t`` (T maps);
3. attention ``A_t = f(D_t)``; the paper's ``f`` is a sigmoid with slope ``a`` and shift ``b``,
   ``A = sigmoid(a (D - b))``, learnt through unconstrained ``m, n``:
   ``a = 5 / (0.45 |tanh m| + 0.1)`` (in [9.0909, 50]) and ``b = 0.6 tanh n`` (in [-0.6, 0.6]);
4. prompts ``P_t = A_t * x_norm_{t+1}`` (broadcast over the colour channels);
5. temporal attention variation ``L_tav = lambda * mean_{b,t,h,w} (A_{t+1} - A_t)^2``, computed
   only while gradients are enabled (as the reference does).

Speed: the mean cancels in ``D`` and the std folds into the grey weights, so the un-normalisation
costs nothing; the grey image is one batched matrix-vector product over the channel axis, the
attention one ``addcmul`` and one ``torch.sigmoid``, and the prompts one broadcast multiply. The
prompts and the TAV share one autograd node whose backward sums over the channels without a
full-size temporary and adds the TAV gradient in place (see ``_PromptsAndTav``); nothing loops
over frames. The attention is computed in float32 for half-precision inputs (grey differences lose
too much in bf16/fp16); the prompts keep the input dtype. ``mpbench bench layer`` times it against
the reference formulation.

Other power normalisations (Koniusz et al., "A Deeper Look at Power Normalizations", CVPR 2018),
in ``POWER_NORMS``; ``slope`` sets their strength, ``shift`` is subtracted from ``D`` first
(``x = D - b``, use ``shift=0.0`` for the pure forms):

=========  ==============================  ===========================  ====================
name       f(x)                            learnable strength from m    fixed strength range
=========  ==============================  ===========================  ====================
sigmoid    sigmoid(a x)                    a = 5 / (0.45|tanh m| + 0.1)  [9.0909, 50]
gamma      |x|^gamma                       gamma = sigmoid(m)           (0, 1]
maxexp     1 - (1 - |x|)^eta               eta = 1 + 10 softplus(m)     [1, inf)
sigme      2 / (1 + exp(-eta |x|)) - 1     eta = 10 softplus(m)         (0, inf)
asinhe     asinh(eta |x|) / asinh(eta)     eta = 10 softplus(m)         (0, inf)
=========  ==============================  ===========================  ====================

All but the sigmoid act on ``|x|`` and map ``|x|`` in [0, 1] into [0, 1] (D is in [-1, 1], so
with ``shift = 0`` so is x), rising with ``|x|`` whatever the sign: a static pixel gets 0
(Gamma: ``1e-6^gamma``, from its clamp), a full change 1 (SigmE: ``2 sigmoid(eta) - 1``). AsinhE is
``arcsinh(eta |x|)`` of Koniusz et al. divided by its value at ``|x| = 1``, which makes it such
a map (without the division its range, up to ``asinh(eta)``, grows with eta, and with the sign
kept it would flip darkening pixels); ``|x|`` is clamped to ``<= 1`` there so that a
learnt shift cannot push it past 1. MaxExp needs ``eta >= 1``: below 1, ``1 - (1 - |x|)^eta`` is
convex and shrinks small differences instead of boosting them, so its learnt eta is
``1 + 10 softplus(m)`` and a fixed one must be at least 1 (eta = 1 is the identity ``|x|``).

The factor 10 puts eta at about 3-13 for ``m ~ N(0, 1)`` (4-14 for MaxExp), the scale of
``a |D|`` in the paper's sigmoid. ``|x|`` is clamped to ``>= 1e-6`` in gamma and ``1 - |x|`` to
``>= 1e-6`` in maxexp so that the gradient with respect to the strength stays finite where
``D = 0`` (static pixels: ``d/dgamma |x|^gamma = |x|^gamma log|x|``). AsinhE needs no clamp at
``D = 0``: ``asinh`` is smooth, ``|x|`` has subgradient 0 at 0 (torch's convention), and
``d/deta`` of ``asinh(eta |x|) / asinh(eta)`` is 0 there; eta is clamped to ``>= 1e-6`` so that
an underflowing softplus cannot give 0 / 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mpbench import _pixels
from mpbench._ranges import (
    STRENGTH_RANGES,
    StrengthRange,
    check_shift,
    check_slope,
    shift_of,
    slope_of,
)
from mpbench._registry import Registry
from mpbench.config import ChannelOrder, Granularity, Layout

LAYOUTS: tuple[str, ...] = ("BCTHW", "BTCHW")
CHANNEL_ORDERS: tuple[str, ...] = ("RGB", "BGR")
GRANULARITIES: tuple[str, ...] = ("scalar", "frame", "pixel")
GREY_WEIGHTS: dict[str, float] = dict(zip("RGB", _pixels.GREY_WEIGHTS, strict=True))
PAPER_INIT_MEAN = 1e-5
PAPER_INIT_STD = 1.0
ETA_SCALE = 10.0
_EPS = 1e-6


class PromptOutput(NamedTuple):
    """What a prompt module returns.

    Args:
        prompts: the frames the backbone sees, in the input layout, T frames.
        attention: B x T x H x W attention maps, or ``None`` for the no-prompt baseline.
        reg_loss: 0-dim tensor to add to the task loss (the weighted TAV, or zero).

    Example:
        >>> out = PromptOutput(torch.zeros(1, 3, 2, 4, 4), None, torch.zeros(()))
        >>> out.prompts.shape[2]
        2
    """

    prompts: Tensor
    attention: Tensor | None
    reg_loss: Tensor


# --------------------------------------------------------------------------- power norms


@dataclass(frozen=True)
class PowerNorm:
    """One power normalisation: ``apply(x, strength)`` and the map from ``m`` to its strength.

    Args:
        name: registry name.
        formula: f(x) as text, for tables and errors.
        strength_from_m: learnable parametrisation, unconstrained ``m`` -> strength.
        apply: ``(x, strength) -> attention`` with ``x = D - shift``.

    Its fixed strengths are ``mpbench._ranges.STRENGTH_RANGES[name]`` (:attr:`range`).

    Example:
        >>> POWER_NORMS.get("gamma").check_strength(0.5)
        0.5
    """

    name: str
    formula: str
    strength_from_m: Callable[[Tensor], Tensor]
    apply: Callable[[Tensor, Tensor], Tensor]

    @property
    def range(self) -> StrengthRange:
        """The fixed strengths this normalisation accepts."""
        return STRENGTH_RANGES[self.name]

    @property
    def symbol(self) -> str:
        """Name of the strength parameter ("a", "gamma", "eta")."""
        return self.range.symbol

    def range_text(self) -> str:
        """The fixed-strength range as interval text, e.g. ``[9.0909, 50]``."""
        return self.range.text()

    def check_strength(self, value: float) -> float:
        """``value`` as a float when it lies in the fixed-strength range, else a ValueError."""
        return check_slope(self.name, value)


POWER_NORMS: Registry[PowerNorm] = Registry("power normalisation")


def paper_slope(m: Tensor) -> Tensor:
    """The paper's bounded slope ``a = 5 / (0.45 |tanh m| + 0.1)``, in [9.0909, 50]."""
    return slope_of(torch.tanh(m).abs())


def paper_shift(n: Tensor) -> Tensor:
    """The paper's bounded shift ``b = 0.6 tanh n``, in [-0.6, 0.6]."""
    return shift_of(torch.tanh(n))


def _eta(m: Tensor) -> Tensor:
    """Strength ``eta = 10 softplus(m)`` of SigmE and AsinhE, in (0, inf)."""
    return ETA_SCALE * F.softplus(m)


def _eta_at_least_one(m: Tensor) -> Tensor:
    """Strength ``eta = 1 + 10 softplus(m)`` of MaxExp, in [1, inf) where it normalises."""
    return 1.0 + ETA_SCALE * F.softplus(m)


def _asinhe(x: Tensor, eta: Tensor) -> Tensor:
    """AsinhE normalised to [0, 1]: ``asinh(eta min(|x|, 1)) / asinh(eta)``."""
    eta = eta.clamp_min(_EPS)
    return torch.asinh(eta * x.abs().clamp_max(1.0)) / torch.asinh(eta)


POWER_NORMS.add(
    "sigmoid",
    PowerNorm(
        name="sigmoid",
        formula="1 / (1 + exp(-a x))",
        strength_from_m=paper_slope,
        apply=lambda x, a: torch.sigmoid(a * x),
    ),
)
POWER_NORMS.add(
    "gamma",
    PowerNorm(
        name="gamma",
        formula="|x|^gamma",
        strength_from_m=torch.sigmoid,
        apply=lambda x, g: x.abs().clamp_min(_EPS).pow(g),
    ),
)
POWER_NORMS.add(
    "maxexp",
    PowerNorm(
        name="maxexp",
        formula="1 - (1 - |x|)^eta",
        strength_from_m=_eta_at_least_one,
        apply=lambda x, eta: 1.0 - (1.0 - x.abs()).clamp_min(_EPS).pow(eta),
    ),
)
POWER_NORMS.add(
    "sigme",
    PowerNorm(
        name="sigme",
        formula="2 / (1 + exp(-eta |x|)) - 1",
        strength_from_m=_eta,
        apply=lambda x, eta: 2.0 * torch.sigmoid(eta * x.abs()) - 1.0,
    ),
)
POWER_NORMS.add(
    "asinhe",
    PowerNorm(
        name="asinhe",
        formula="asinh(eta |x|) / asinh(eta)",
        strength_from_m=_eta,
        apply=_asinhe,
    ),
)


# --------------------------------------------------------------------------- validation


def _check_choice(kind: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{kind} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _per_channel(kind: str, value: float | Sequence[float]) -> tuple[float, float, float]:
    vals = [value] * 3 if isinstance(value, int | float) else list(value)
    if len(vals) != 3 or not all(isinstance(v, int | float) and math.isfinite(v) for v in vals):
        raise ValueError(f"{kind} must be a finite number or 3 finite numbers; got {value!r}")
    return (float(vals[0]), float(vals[1]), float(vals[2]))


def _check_init(init: object) -> tuple[float, float] | None:
    """None for the paper's random init, else the explicit (m, n)."""
    if init == "paper":
        return None
    ok = isinstance(init, tuple | list) and len(init) == 2
    if ok and all(isinstance(v, int | float) and math.isfinite(v) for v in init):  # type: ignore[union-attr]
        return (float(init[0]), float(init[1]))  # type: ignore[index]
    raise ValueError(f"init must be 'paper' or a pair of finite floats (m, n); got {init!r}")


def _param_shape(granularity: str, frames: int | None, size: tuple[int, int] | None) -> tuple:
    """Shape of m, n that broadcasts against attention maps B x T x H x W."""
    if granularity == "scalar":
        return (1, 1, 1)
    if granularity == "frame":
        if not (isinstance(frames, int) and frames >= 1):
            raise ValueError(
                f"granularity='frame' needs frames=T (a positive int, the number of attention "
                f"maps = input frames - 1); got frames={frames!r}"
            )
        return (frames, 1, 1)
    ok = isinstance(size, tuple | list) and len(size) == 2
    if not (ok and all(isinstance(s, int) and s >= 1 for s in size)):  # type: ignore[union-attr]
        raise ValueError(
            f"granularity='pixel' needs size=(H, W), two positive ints; got size={size!r}"
        )
    return (int(size[0]), int(size[1]))  # type: ignore[index]


def check_video(x: Tensor, *, layout: str, min_frames: int = 2) -> None:
    """ValueError unless ``x`` is a rank-5 video with 3 channels and ``min_frames`` frames."""
    expected = (
        f"{layout} = B x 3 x T+1 x H x W"
        if layout == "BCTHW"
        else f"{layout} = B x T+1 x 3 x H x W"
    )
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor video ({expected}); got {type(x).__name__}")
    if x.dim() != 5:
        raise ValueError(
            f"expected a rank-5 video {expected}; got rank {x.dim()}, shape {tuple(x.shape)}"
        )
    c_axis, t_axis = (1, 2) if layout == "BCTHW" else (2, 1)
    if x.shape[c_axis] != 3:
        raise ValueError(
            f"expected 3 colour channels at axis {c_axis} ({expected}); "
            f"got {x.shape[c_axis]} in shape {tuple(x.shape)}"
        )
    if x.shape[t_axis] < min_frames:
        raise ValueError(
            f"expected at least {min_frames} frames at axis {t_axis} ({expected}); "
            f"got {x.shape[t_axis]} in shape {tuple(x.shape)}"
        )


def _first_frame_dropped(x: Tensor, layout: str) -> Tensor:
    return x[:, :, 1:] if layout == "BCTHW" else x[:, 1:]


# --------------------------------------------------------------------------- the layer


class MotionPrompt(nn.Module):
    """Video motion prompt layer: attention from frame differences times the later frames.

    Args:
        pn: power normalisation, a name in ``POWER_NORMS`` ("sigmoid" is the paper's).
        slope: "learnable" or a fixed strength in natural units (the sigmoid's ``a`` in
            [9.0909, 50]; gamma's exponent in (0, 1]; MaxExp's eta >= 1; eta > 0 for the others).
        shift: "learnable" or a fixed ``b`` in [-0.6, 0.6], subtracted from D.
        init: "paper" (m, n ~ N(1e-5, 1) from torch's global RNG, m drawn first) or an explicit
            ``(m, n)`` pair, used for the learnable ones.
        granularity: "scalar" (one m, n, the paper), "frame" (one pair per attention map, needs
            ``frames``) or "pixel" (H x W maps, needs ``size``).
        frames: T, the number of attention maps (the input has T + 1 frames).
        size: (H, W) for the pixel granularity.
        tav_weight: lambda >= 0 of the temporal attention variation regulariser.
        layout: "BCTHW" (pytorchvideo) or "BTCHW" (transformers).
        mean: normalisation mean, one value or one per channel (it cancels in D).
        std: normalisation std, one value or one per channel (> 0).
        channel_order: "RGB" or "BGR" (channel 0 is blue).

    Example:
        >>> layer = MotionPrompt(init=(1.05, -2.67), tav_weight=1.0)
        >>> out = layer(torch.randn(2, 3, 9, 8, 8))
        >>> tuple(out.prompts.shape), tuple(out.attention.shape)
        ((2, 3, 8, 8, 8), (2, 8, 8, 8))
    """

    def __init__(
        self,
        *,
        pn: str = "sigmoid",
        slope: Literal["learnable"] | float = "learnable",
        shift: Literal["learnable"] | float = "learnable",
        init: Literal["paper"] | tuple[float, float] = "paper",
        granularity: Granularity = "scalar",
        frames: int | None = None,
        size: tuple[int, int] | None = None,
        tav_weight: float = 0.0,
        layout: Layout = "BCTHW",
        mean: float | Sequence[float] = _pixels.MEAN,
        std: float | Sequence[float] = _pixels.STD,
        channel_order: ChannelOrder = "RGB",
    ) -> None:
        super().__init__()
        self.pn = POWER_NORMS.get(pn)
        self.layout = _check_choice("layout", layout, LAYOUTS)
        self.channel_order = _check_choice("channel_order", channel_order, CHANNEL_ORDERS)
        self.granularity = _check_choice("granularity", granularity, GRANULARITIES)
        if not (
            isinstance(tav_weight, int | float) and math.isfinite(tav_weight) and tav_weight >= 0
        ):
            raise ValueError(
                f"tav_weight (lambda) must be a finite number >= 0; got {tav_weight!r}"
            )
        self.tav_weight = float(tav_weight)
        self.mean = _per_channel("mean", mean)
        self.std = _per_channel("std", std)
        if min(self.std) <= 0:
            raise ValueError(f"std must be > 0; got {std!r}")
        shape = _param_shape(self.granularity, frames, size)
        self.frames = frames if self.granularity == "frame" else None
        self.size = tuple(size) if self.granularity == "pixel" and size is not None else None
        explicit = _check_init(init)
        self.learn_slope = self._add_value("slope", slope, shape, explicit, 0)
        self.learn_shift = self._add_value("shift", shift, shape, explicit, 1)
        # grey weights with the std folded in: D = sum_c w_c std_c (x_c,t+1 - x_c,t); mean cancels
        folded = [GREY_WEIGHTS[c] * s for c, s in zip(self.channel_order, self.std, strict=True)]
        self.register_buffer("grey_coef", torch.tensor(folded), persistent=False)

    def _add_value(
        self, which: str, value: object, shape: tuple, explicit: tuple | None, index: int
    ) -> bool:
        """Register ``m``/``n`` (learnable) or the fixed ``fixed_slope``/``fixed_shift`` buffer."""
        if value == "learnable":
            if explicit is None:
                raw = torch.empty(shape).normal_(PAPER_INIT_MEAN, PAPER_INIT_STD)
            else:
                raw = torch.full(shape, explicit[index])
            self.register_parameter("m" if index == 0 else "n", nn.Parameter(raw))
            return True
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{which} must be 'learnable' or a number; got {value!r}")
        fixed = self.pn.check_strength(value) if index == 0 else check_shift(value)
        self.register_buffer(f"fixed_{which}", torch.full(shape, fixed))
        return False

    def slope_tensor(self) -> Tensor:
        """Current strength (``a`` for the sigmoid) in the granularity's shape."""
        return self.pn.strength_from_m(self.m) if self.learn_slope else self.fixed_slope

    def shift_tensor(self) -> Tensor:
        """Current shift ``b`` in the granularity's shape."""
        return paper_shift(self.n) if self.learn_shift else self.fixed_shift

    @property
    def slope(self) -> float:
        """Current slope/strength as a float (the mean over frames or pixels)."""
        return float(self.slope_tensor().detach().mean())

    @property
    def shift(self) -> float:
        """Current shift as a float (the mean over frames or pixels)."""
        return float(self.shift_tensor().detach().mean())

    def attention(self, x: Tensor) -> Tensor:
        """Attention maps B x T x H x W of a checked T+1-frame video (float32 for half inputs)."""
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        grey = _grey(work, self.grey_coef.to(work.dtype), self._c_axis)  # B x T+1 x H x W
        diff = grey[:, 1:] - grey[:, :-1]  # B x T x H x W; the mean term cancels here
        strength, shift = self.slope_tensor(), self.shift_tensor()
        if self.pn.name == "sigmoid":  # a (D - b) = a D - a b in one fused op
            return torch.sigmoid(torch.addcmul(-(strength * shift), strength, diff))
        return self.pn.apply(diff - shift, strength)

    def forward(self, x: Tensor) -> PromptOutput:
        """Prompts (input layout, T frames), attention B x T x H x W and the weighted TAV."""
        self._check(x)
        att = self.attention(x)
        later = _first_frame_dropped(x, self.layout)  # x_norm_{t+1}, T frames
        tav = self.tav_weight if torch.is_grad_enabled() else 0.0  # as the reference does
        prompts, reg = _PromptsAndTav.apply(att, later, self._c_axis, tav)
        return PromptOutput(prompts, att, reg)

    @property
    def _c_axis(self) -> int:
        return 1 if self.layout == "BCTHW" else 2

    def _check(self, x: Tensor) -> None:
        check_video(x, layout=self.layout, min_frames=3 if self.tav_weight > 0 else 2)
        t_axis = 2 if self.layout == "BCTHW" else 1
        if self.frames is not None and x.shape[t_axis] != self.frames + 1:
            raise ValueError(
                f"granularity='frame' was built for frames={self.frames} (input T+1 = "
                f"{self.frames + 1} frames); got {x.shape[t_axis]} frames in shape {tuple(x.shape)}"
            )
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            raise ValueError(
                f"granularity='pixel' was built for size (H, W) = {self.size}; "
                f"got {tuple(x.shape[-2:])} in shape {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        slope = "learnable" if self.learn_slope else f"{self.slope:.4g}"
        shift = "learnable" if self.learn_shift else f"{self.shift:.4g}"
        return (
            f"pn={self.pn.name}, slope={slope}, shift={shift}, granularity={self.granularity}, "
            f"tav_weight={self.tav_weight:g}, layout={self.layout}, "
            f"channel_order={self.channel_order}"
        )


def _grey(x: Tensor, coef: Tensor, c_axis: int) -> Tensor:
    """Weighted channel sum ``sum_c coef_c x_c`` over ``c_axis`` (1 or 2): B x T+1 x H x W."""
    # one batched matrix-vector product reads x once; autocast would round it to half precision
    with torch.autocast(x.device.type, enabled=False):
        grey = torch.matmul(coef, x.flatten(c_axis + 1))
    return grey.view(x.shape[0], -1, x.shape[-2], x.shape[-1])


class _PromptsAndTav(torch.autograd.Function):
    """Prompts ``att.unsqueeze(c) * frames`` and ``tav * mean((A_{t+1} - A_t)^2)`` in one node.

    The hand-written backward sums ``grad * frames`` over the channels with three ``addcmul``s
    instead of a full-size temporary, and adds the TAV gradient in place instead of through two
    slice backwards (each a zero-filled attention-size tensor).
    """

    @staticmethod
    def forward(
        ctx: Any, att: Tensor, frames: Tensor, c_axis: int, tav: float
    ) -> tuple[Tensor, Tensor]:
        ctx.c_axis, ctx.tav = c_axis, tav
        ctx.save_for_backward(att, frames)
        prompts = att.to(frames.dtype).unsqueeze(c_axis) * frames
        # mean over (b, t, h, w) of (A_{t+1} - A_t)^2
        if tav > 0:
            return prompts, tav * F.mse_loss(att[:, 1:], att[:, :-1])
        reg = att.new_zeros(())
        ctx.mark_non_differentiable(reg)
        return prompts, reg

    @staticmethod
    def backward(
        ctx: Any, grad: Tensor, grad_reg: Tensor
    ) -> tuple[Tensor | None, Tensor | None, None, None]:
        att, frames = ctx.saved_tensors
        g_att = g_frames = None
        if ctx.needs_input_grad[0]:
            (g0, g1, g2), (f0, f1, f2) = grad.unbind(ctx.c_axis), frames.unbind(ctx.c_axis)
            g_att = torch.addcmul(torch.addcmul(g0 * f0, g1, f1), g2, f2).to(att.dtype)
            if ctx.tav > 0:
                # d/dA_t of mean((A_{t+1} - A_t)^2) = 2 / N ((A_t - A_{t-1}) - (A_{t+1} - A_t))
                step = att[:, 1:] - att[:, :-1]
                step.mul_(grad_reg * (2.0 * ctx.tav / step.numel()))
                g_att[:, 1:] += step
                g_att[:, :-1] -= step
        if ctx.needs_input_grad[1]:
            g_frames = att.to(grad.dtype).unsqueeze(ctx.c_axis) * grad
        return g_att, g_frames, None, None


class NoPrompt(nn.Module):
    """The no-prompt baseline: drops the first frame so the backbone sees the same T frames.

    Args:
        layout: "BCTHW" (pytorchvideo) or "BTCHW" (transformers).

    Example:
        >>> out = NoPrompt()(torch.randn(1, 3, 9, 4, 4))
        >>> tuple(out.prompts.shape), out.attention
        ((1, 3, 8, 4, 4), None)
    """

    def __init__(self, *, layout: Layout = "BCTHW") -> None:
        super().__init__()
        self.layout = _check_choice("layout", layout, LAYOUTS)

    def forward(self, x: Tensor) -> PromptOutput:
        """Frames 2..T+1 of ``x`` (a view), no attention, a zero reg_loss."""
        check_video(x, layout=self.layout)
        return PromptOutput(
            _first_frame_dropped(x, self.layout), None, torch.zeros((), device=x.device)
        )

    def extra_repr(self) -> str:
        return f"layout={self.layout}"


CONTROLS: tuple[str, ...] = ("static", "shuffled")


class ControlPrompt(NoPrompt):
    """A control with a known effect: the backbone sees frames 2..T+1 with the motion destroyed.

    ``static``: the middle one of those T frames repeated T times (no motion at all: on a
    motion-only benchmark the model must fall to chance). ``shuffled``: the T frames in a random
    order drawn per clip and per forward (the set of frames kept, their order lost: measures how
    much of the task needs order).

    Example:
        >>> x = torch.arange(5.0).view(1, 1, 5, 1, 1).expand(2, 3, 5, 2, 2)
        >>> ControlPrompt("static")(x).prompts[0, 0, :, 0, 0].tolist()
        [3.0, 3.0, 3.0, 3.0]
    """

    def __init__(self, control: str, *, layout: Layout = "BCTHW") -> None:
        super().__init__(layout=layout)
        self.control = _check_choice("control", control, CONTROLS)

    def forward(self, x: Tensor) -> PromptOutput:
        """The T later frames of ``x`` with their motion destroyed, no attention, zero loss."""
        later = super().forward(x).prompts
        t_axis = 2 if self.layout == "BCTHW" else 1
        frames = later.shape[t_axis]
        if self.control == "static":
            order = torch.full((later.shape[0], frames), frames // 2, device=x.device)
        else:
            order = torch.rand(later.shape[0], frames, device=x.device).argsort(1)
        shape = [later.shape[0]] + [1] * (later.ndim - 1)
        shape[t_axis] = frames
        index = order.view(shape).expand_as(later)
        return PromptOutput(later.gather(t_axis, index), None, torch.zeros((), device=x.device))

    def extra_repr(self) -> str:
        return f"control={self.control}, layout={self.layout}"


__all__ = [
    "CONTROLS",
    "ControlPrompt",
    "POWER_NORMS",
    "MotionPrompt",
    "NoPrompt",
    "PowerNorm",
    "PromptOutput",
    "check_video",
    "paper_shift",
    "paper_slope",
]
