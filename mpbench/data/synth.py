"""The synthetic motion benchmark: classes that differ only by how an actor moves.

Every clip shows one *actor* (a textured shape) on a static textured background. Only motion
tells the classes apart, at every frame index: the appearance of any single frame (actor position,
size, orientation, colour, shape, texture, clutter, background) has one distribution for every
class and every time index. Three things make that so:

- the world is a torus: objects leaving the frame on one side re-enter on the other, so a
  moving actor never drifts towards an edge;
- every clip is a stationary process: the frame-0 state is drawn from the stationary
  distribution (position uniform over the frame, angle uniform, log-scale uniform in a fixed
  range, random phases for circles, oscillations and stop-and-go), and growing/shrinking is a
  sawtooth of the log-scale wrapped in that same range, so any frame index (and any clip cut at
  a random temporal position) looks like frame 0;
- the background is a sum of waves with uniformly random phases, so a panning or shaking camera
  shows the same distribution of backgrounds at every frame.

``mpbench data probe`` (:mod:`mpbench.data.probe`) checks it with single-frame probes at every
frame index. Nuisances (static look-alike clutter, moving distractors, sensor noise, flicker,
camera shake and pan) make the harder presets harder.

Rendering is vectorised numpy over T x box x box per object; each clip has its own random
generator seeded from ``(seed, split, index)``, so the in-memory dataset and the mp4 files
written by :func:`write_synth_dataset` hold the same clips, and one seed gives byte-identical
files. Speed (one thread, ``render_clip`` on the preset defaults, two runs on a shared machine):
easy 115-148 clips/s, medium 36-46, hard 16-19; the previous generator (class-free only at the
middle frame) rendered 100-107, 27-28 and 10.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mpbench.config import Preset

SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2, "test_shift": 3}
# Written into metadata.json. 3: intra-only constant-QP files (ENCODING) and the test_shift
# split; 2: motion-only at every frame index of the renders (torus world, stationary states,
# real test split); 1 (unversioned files): only the middle frame was class-free.
SYNTH_VERSION = 3


@dataclass(frozen=True)
class Look:
    """The appearance distribution of a split (every class and frame index shares it).

    ``test_shift`` draws from SHIFT_LOOK, an appearance never seen in training: saturated actor
    colours with ring textures, a finer and stronger background texture (present even when the
    spec's is flat) and extra static look-alike clutter. Only the appearance changes, never the
    motions, so the split measures what training on one appearance costs on another.
    """

    tint: float = 0.15  # half-range of the actor's colour tint around its luminance
    gap: tuple[float, float] = (0.0, 0.3)  # added to spec.contrast: actor-background gap
    textures: tuple[int, ...] = (0, 1, 2)  # stripes, checker, half-split (3: rings)
    bg_tint: float = 0.1
    bg_waves: float = 0.15  # spatial frequency scale of the background waves
    bg_amp: tuple[float, float] = (0.02, 0.06)  # per-wave amplitude, times bg_texture
    bg_floor: float = 0.0  # background texture at least this (0: the spec's)
    extra_clutter: int = 0


TRAIN_LOOK = Look()
SHIFT_LOOK = Look(
    tint=0.35,
    gap=(0.05, 0.25),
    textures=(3,),
    bg_tint=0.2,
    bg_waves=0.45,
    bg_amp=(0.04, 0.08),
    bg_floor=1.0,
    extra_clutter=2,
)


def split_look(split: str) -> Look:
    """The appearance distribution of ``split``."""
    return SHIFT_LOOK if split == "test_shift" else TRAIN_LOOK


# Motion classes, in the order presets take them; _path turns each into per-frame changes of
# (x, y, theta, logscale) from frame 0.
MOTIONS: tuple[str, ...] = (
    "right",
    "left",
    "up",
    "down",
    "grow",
    "shrink",
    "rotate_cw",
    "rotate_ccw",
    "circle_cw",
    "circle_ccw",
    "oscillate_horizontal",
    "oscillate_vertical",
    "stop_and_go_right",
    "stop_and_go_left",
    "diagonal_up_right",
    "diagonal_down_left",
)


@dataclass(frozen=True)
class SynthSpec:
    """Every knob of the synthetic benchmark (a preset is one of these).

    Args:
        classes: number of motion classes (the first ``classes`` entries of ``MOTIONS``).
        train_clips: clips in the train split (balanced: label = index mod classes).
        val_clips: clips in the val split (early stopping, pruning, searches).
        test_clips: clips in the test split (reported only; rendered from their own seeds),
            and in the ``test_shift`` split (the same motions in an unseen appearance).
        video_frames: frames per video.
        size: frame height = width in pixels (even, for yuv420p).
        fps: frame rate written into the mp4 files (motion is defined per frame).
        actor_radius: (min, max) actor radius as a fraction of ``size``.
        speed: (min, max) actor speed in pixels per frame at size 64 (scaled with size).
        contrast: minimum luminance gap between actor and background, in [0, 1].
        brighter: probability that an object is brighter (not darker) than the background.
        bg_texture: amplitude of the background texture (0 = flat).
        clutter: static look-alike objects (same appearance distribution, never move).
        distractors: moving objects whose random motion is independent of the label.
        noise: standard deviation of Gaussian sensor noise (pixel values in [0, 1]).
        flicker: standard deviation of a per-frame global brightness gain.
        shake: camera shake amplitude in pixels (random per frame).
        pan: (min, max) camera pan speed in pixels per frame (random direction).

    Example:
        >>> spec = preset_spec("easy", classes=4)
        >>> clip, label = render_clip(spec, seed=0, split="train", index=5)
        >>> clip.shape, clip.dtype, label
        ((16, 64, 64, 3), dtype('uint8'), 1)
    """

    classes: int = 6
    train_clips: int = 480
    val_clips: int = 120
    test_clips: int = 120
    video_frames: int = 16
    size: int = 64
    fps: int = 8
    actor_radius: tuple[float, float] = (0.16, 0.22)
    speed: tuple[float, float] = (2.5, 3.5)
    contrast: float = 0.35
    brighter: float = 0.5
    bg_texture: float = 1.0
    clutter: int = 0
    distractors: int = 0
    noise: float = 0.01
    flicker: float = 0.0
    shake: float = 0.0
    pan: tuple[float, float] = (0.0, 0.0)
    motions: tuple[str, ...] = field(default=MOTIONS)

    def __post_init__(self) -> None:
        _check_spec(self)

    @property
    def class_names(self) -> list[str]:
        """The motion names of the classes in label order."""
        return list(self.motions[: self.classes])

    def num_clips(self, split: str) -> int:
        """Number of clips in ``split``."""
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
        counts = {"train": self.train_clips, "val": self.val_clips, "test": self.test_clips}
        return counts.get(split, self.test_clips)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for metadata.json)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _check_spec(spec: SynthSpec) -> None:
    """Validate the knobs with messages that show the bad value."""
    if not 2 <= spec.classes <= len(spec.motions):
        raise ValueError(f"classes must be in [2, {len(spec.motions)}], got {spec.classes}")
    unknown = [m for m in spec.motions if m not in MOTIONS]
    if unknown:
        raise ValueError(f"unknown motions {unknown}; known: {', '.join(MOTIONS)}")
    if spec.size < 16 or spec.size % 2:
        raise ValueError(f"size must be an even number >= 16 (yuv420p), got {spec.size}")
    if spec.video_frames < 2:
        raise ValueError(f"video_frames must be >= 2, got {spec.video_frames}")
    counts = (spec.train_clips, spec.val_clips, spec.test_clips)
    if min(counts) < 1:
        raise ValueError(f"train_clips, val_clips and test_clips must be >= 1, got {counts}")
    if spec.fps < 1:
        raise ValueError(f"fps must be >= 1, got {spec.fps}")
    if not 0.0 <= spec.brighter <= 1.0:
        raise ValueError(f"brighter is a probability in [0, 1], got {spec.brighter}")
    for name in ("noise", "flicker", "shake", "contrast", "bg_texture"):
        if getattr(spec, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(spec, name)}")
    if spec.clutter < 0 or spec.distractors < 0:
        raise ValueError(f"clutter/distractors must be >= 0, got {spec.clutter}/{spec.distractors}")


# The presets knob by knob, side by side: "easy" (the SynthSpec defaults) is the CPU quickstart:
# few classes, a large high-contrast actor, fast motion, no nuisances; "medium" has ten motions
# (rotation and circular paths), clutter, one distractor, noise and shake; "hard" every motion,
# more clutter and distractors, low contrast, small actors and camera pan: for GPUs.
_HARDER: dict[str, tuple[Any, Any]] = {  # knob: (medium, hard)
    "classes": (10, len(MOTIONS)),
    "train_clips": (2000, 8000),
    "val_clips": (500, 1600),
    "test_clips": (500, 1600),
    "video_frames": (24, 32),
    "size": (96, 128),
    "actor_radius": ((0.09, 0.15), (0.06, 0.11)),
    "speed": ((1.5, 3.0), (1.0, 2.5)),
    "contrast": (0.2, 0.1),
    "clutter": (2, 4),
    "distractors": (1, 2),
    "noise": (0.03, 0.05),
    "flicker": (0.03, 0.06),
    "shake": (1.0, 1.5),
    "pan": ((0.0, 0.0), (0.0, 1.0)),
}
PRESETS: dict[Preset, SynthSpec] = {
    "easy": SynthSpec(),
    "medium": SynthSpec(**{knob: medium for knob, (medium, _) in _HARDER.items()}),
    "hard": SynthSpec(**{knob: hard for knob, (_, hard) in _HARDER.items()}),
}


# Nuisance ladders: for each nuisance, the knob values of levels 0 (off), 1, 2 and 3. Scales:
# noise = std of Gaussian sensor noise on pixel values in [0, 1]; flicker = std of the
# per-frame global gain (0.1: about +-10 % brightness); shake = std of the per-frame camera
# offset in pixels; pan = (min, max) camera speed in pixels per frame at 64 px; distractors =
# moving look-alikes of the actor (random walks, 0.7 x its size); clutter = static look-alikes
# together with the background texture amplitude (bg_texture 1: waves of 2-6 % luminance).
# `mpbench data probe --ladder all` proves every level motion-only.
LADDERS: dict[str, tuple[dict[str, Any], ...]] = {
    "noise": tuple({"noise": v} for v in (0.0, 0.05, 0.1, 0.2)),
    "flicker": tuple({"flicker": v} for v in (0.0, 0.05, 0.1, 0.2)),
    "shake": tuple({"shake": v} for v in (0.0, 0.5, 1.0, 2.0)),
    "pan": tuple({"pan": (0.0, v)} for v in (0.0, 0.5, 1.0, 2.0)),
    "distractors": tuple({"distractors": v} for v in (0, 1, 2, 3)),
    "clutter": tuple(
        {"clutter": c, "bg_texture": t} for c, t in ((0, 0.0), (1, 1.0), (2, 2.0), (4, 3.0))
    ),
}


def ladder_knobs(ladder: str, level: int) -> dict[str, Any]:
    """The knob values of ``level`` of nuisance ``ladder`` (an error names the known ones)."""
    if ladder not in LADDERS:
        raise ValueError(
            f"unknown nuisance ladder {ladder!r}; expected one of {', '.join(LADDERS)}"
        )
    levels = LADDERS[ladder]
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < len(levels):
        raise ValueError(
            f"level of ladder {ladder!r} must be an integer in [0, {len(levels) - 1}], "
            f"got {level!r}"
        )
    return dict(levels[level])


def preset_spec(preset: str = "easy", **overrides: Any) -> SynthSpec:
    """The named preset with ``overrides`` applied (None values are ignored); ``ladder`` and
    ``level`` set the knobs of that level of a nuisance ladder (:data:`LADDERS`)."""
    ladder, level = overrides.pop("ladder", None), overrides.pop("level", None)
    if ladder is not None:
        overrides = {**overrides, **ladder_knobs(ladder, 0 if level is None else level)}
    elif level is not None:
        raise ValueError(f"level {level!r} needs a ladder (one of {', '.join(LADDERS)})")
    if preset not in PRESETS:
        raise ValueError(f"unknown synth preset {preset!r}; expected one of {', '.join(PRESETS)}")
    known = set(SynthSpec.__dataclass_fields__)
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown synth option(s) {bad}; known: {', '.join(sorted(known))}")
    changes = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return replace(PRESETS[preset], **{k: v for k, v in changes.items() if v is not None})


# ----------------------------------------------------------------------------------------------
# Rendering

# Every object's log-scale lives in [-LOG_SCALE, LOG_SCALE): uniform and constant for most
# classes, a sawtooth wrapped in that range for grow/shrink (so size alone tells nothing).
LOG_SCALE = 0.3
# The farthest point of any shape from its centre, in radii (the corner of the unit square).
EXTENT = 1.42


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one clip, a pure function of (seed, split, index)."""
    return np.random.default_rng([seed, SPLIT_CODES[split], index])


def _wrap_scale(logscale: np.ndarray) -> np.ndarray:
    """Wrap log-scales into [-LOG_SCALE, LOG_SCALE) (the sawtooth of grow and shrink)."""
    return np.mod(logscale + LOG_SCALE, 2 * LOG_SCALE) - LOG_SCALE


def _path(motion: str, rng: np.random.Generator, spec: SynthSpec, t: np.ndarray) -> np.ndarray:
    """Per-frame (dx, dy, dtheta, dlogscale) relative to frame 0, shape T x 4.

    Periodic motions start at a uniformly random phase, so the clip is a stationary process:
    with the frame-0 state drawn from the stationary distribution, every frame index looks alike.
    ``t`` is the frame index; y grows downwards, so "up" is -y.
    """
    v = rng.uniform(*spec.speed) * spec.size / 64
    out = np.zeros((t.size, 4), dtype=np.float64)
    unit = {
        "right": (1, 0),
        "left": (-1, 0),
        "up": (0, -1),
        "down": (0, 1),
        "diagonal_up_right": (0.7071, -0.7071),
        "diagonal_down_left": (-0.7071, 0.7071),
    }
    sign = -1.0 if motion.endswith(("shrink", "ccw", "left")) else 1.0
    if motion in unit:
        out[:, 0], out[:, 1] = v * t * unit[motion][0], v * t * unit[motion][1]
    elif motion in ("grow", "shrink"):  # wrapped into a sawtooth by the caller
        out[:, 3] = sign * rng.uniform(0.05, 0.08) * t
    elif motion in ("rotate_cw", "rotate_ccw"):
        # image y points down, so a positive angle turns clockwise on screen
        out[:, 2] = sign * np.deg2rad(rng.uniform(12, 22)) * t
    elif motion in ("circle_cw", "circle_ccw"):
        radius, phase = rng.uniform(0.12, 0.18) * spec.size, rng.uniform(0, 2 * np.pi)
        angle = phase + sign * v / radius * t
        out[:, 0] = radius * (np.cos(angle) - np.cos(phase))
        out[:, 1] = radius * (np.sin(angle) - np.sin(phase))
    elif motion.startswith("oscillate"):
        period, phase = rng.uniform(5, 8), rng.uniform(0, 2 * np.pi)
        amp = v * period / (2 * np.pi)
        shift = amp * (np.sin(2 * np.pi * t / period + phase) - np.sin(phase))
        out[:, 0 if motion.endswith("horizontal") else 1] = shift
    elif motion.startswith("stop_and_go"):
        half = int(rng.integers(2, 4))  # moves for `half` frames, rests for `half` frames
        phase = int(rng.integers(0, 2 * half))  # uniform over the period: stationary
        steps = ((np.arange(t.size) + phase) % (2 * half) < half).astype(np.float64)
        out[:, 0] = sign * np.concatenate([[0.0], np.cumsum(steps[:-1])]) * 2 * v
    else:  # pragma: no cover - MOTIONS and this function are kept in step by a test
        raise ValueError(f"motion {motion!r} has no path")
    return out


def _appearance(
    rng: np.random.Generator, spec: SynthSpec, bg_lum: float, look: Look = TRAIN_LOOK
) -> dict[str, Any]:
    """Shape, colour, texture and size of one object: the same distribution for every class."""
    lum_sign = 1.0 if rng.random() < spec.brighter else -1.0
    gap = spec.contrast + rng.uniform(*look.gap)
    lum = np.clip(bg_lum + lum_sign * gap, 0.05, 0.95)
    tint = rng.uniform(-look.tint, look.tint, size=3)
    return {
        "shape": int(rng.integers(0, 4)),  # square, triangle, cross, ellipse
        "colour": np.clip(lum + tint - tint.mean(), 0.0, 1.0),
        "texture": int(rng.choice(look.textures)),
        "freq": rng.uniform(2.0, 4.0),
        "radius": rng.uniform(*spec.actor_radius) * spec.size,
        "aspect": rng.uniform(0.7, 1.0),
    }


def _shape_mask(shape: int, u: np.ndarray, v: np.ndarray, aspect: float) -> np.ndarray:
    """Signed distance-like field in object units (< 0 inside) for the four shapes."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v) / aspect) - 1.0
    if shape == 1:  # triangle pointing along +u
        return np.maximum.reduce([-u - 0.6, u * 0.5 + np.abs(v) / aspect - 0.6])
    if shape == 2:  # asymmetric cross (one long arm)
        arm_u = np.maximum(np.abs(u - 0.2) - 0.9, np.abs(v) - 0.35)
        arm_v = np.maximum(np.abs(u) - 0.35, np.abs(v) / aspect - 0.9)
        return np.minimum(arm_u, arm_v)
    return np.hypot(u, v / aspect) - 1.0


def _texture(kind: int, u: np.ndarray, v: np.ndarray, freq: float) -> np.ndarray:
    """A +-1 pattern in object coordinates (it rotates and scales with the object)."""
    if kind == 0:
        return np.sign(np.sin(np.pi * freq * u))
    if kind == 1:
        return np.sign(np.sin(np.pi * freq * u) * np.sin(np.pi * freq * v))
    if kind == 3:  # rings (test_shift only)
        return np.sign(np.sin(np.pi * freq * np.hypot(u, v)))
    return np.where(u + 0.3 * v > 0, 1.0, -1.0)


def _draw(canvas: np.ndarray, look: dict[str, Any], state: np.ndarray) -> None:
    """Paint one object with per-frame ``state`` (T x 4: x, y, theta, logscale) on the torus.

    The frame is a torus: each frame paints a B x B box around the object's centre whose pixel
    indices wrap around the edges, so an object leaving on the right re-enters on the left and
    the picture depends on the position only modulo the frame size. An object wider than the
    frame is cut at half a frame from its centre (only tiny test sizes get there).
    """
    frames, size = canvas.shape[:2]
    radius = look["radius"] * np.exp(state[:, 3])  # T
    box = min(2 * int(np.ceil(EXTENT * radius.max() + 1.5)) + 2, size)
    corner = np.floor(state[:, :2] - box / 2).astype(np.int64)  # T x 2, unwrapped (x, y)
    px, py = corner[:, :1] + np.arange(box), corner[:, 1:] + np.arange(box)  # T x B each
    dx = (px + 0.5 - state[:, :1]).astype(np.float32)[:, None, :]  # T x 1 x B
    dy = (py + 0.5 - state[:, 1:2]).astype(np.float32)[:, :, None]  # T x B x 1
    cos, sin = (f(state[:, 2]).astype(np.float32)[:, None, None] for f in (np.cos, np.sin))
    r = radius.astype(np.float32)[:, None, None]
    u, v = (cos * dx + sin * dy) / r, (-sin * dx + cos * dy) / r  # T x B x B
    sd = _shape_mask(look["shape"], u, v, look["aspect"])
    alpha = np.clip(0.5 - sd * r, 0.0, 1.0)[..., None]  # ~1 px anti-aliased edge
    tex = 1.0 + 0.18 * _texture(look["texture"], u, v, look["freq"])[..., None]
    colour = np.clip(look["colour"].astype(np.float32) * tex, 0.0, 1.0)
    index = (
        np.arange(frames)[:, None, None],
        np.mod(py, size)[:, :, None],
        np.mod(px, size)[:, None],
    )
    region = canvas[index]  # T x B x B x 3 (a copy: fancy indexing)
    canvas[index] = region * (1.0 - alpha) + alpha * colour


def _background(
    rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray, texture: float, look: Look
) -> tuple[Any, float]:
    """A static low-frequency textured background as a function of the camera offset.

    Each wave has a uniformly random phase, so the background seen at any camera offset (any
    frame of a panning or shaking camera) has one distribution.
    """
    lum = rng.uniform(0.3, 0.7)
    tint = rng.uniform(-look.bg_tint, look.bg_tint, size=3).astype(np.float32)
    waves = rng.normal(size=(3, 2)) * look.bg_waves
    texture = max(texture, look.bg_floor)
    phases, amps = rng.uniform(0, 2 * np.pi, 3), texture * rng.uniform(*look.bg_amp, 3)
    # sin(k.(x + c_t) + p) = sin(k.x) cos(k.c_t + p) + cos(k.x) sin(k.c_t + p): only T x H x W
    # multiply-adds per wave instead of a sine per pixel and frame
    base = [k[0] * xs + k[1] * ys for k in waves]
    sin_b, cos_b = (
        [np.sin(b).astype(np.float32) for b in base],
        [np.cos(b).astype(np.float32) for b in base],
    )

    def paint(cam: np.ndarray) -> np.ndarray:
        val = np.full((cam.shape[0], *xs.shape), lum, dtype=np.float32)
        for a, k, p, sb, cb in zip(amps, waves, phases, sin_b, cos_b, strict=True):
            shift = (cam @ k + p)[:, None, None]
            val += (a * np.cos(shift)).astype(np.float32) * sb
            val += (a * np.sin(shift)).astype(np.float32) * cb
        out = val[..., None] + tint
        return np.clip(out, 0.0, 1.0, out=out)

    return paint, float(lum)


def _camera(rng: np.random.Generator, spec: SynthSpec, t: np.ndarray) -> np.ndarray:
    """Per-frame camera offset (T x 2): a constant pan plus random shake."""
    angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(*spec.pan) * spec.size / 64
    pan = np.stack([np.cos(angle) * speed * t, np.sin(angle) * speed * t], axis=1)
    return pan + rng.normal(scale=spec.shake, size=(t.size, 2))


def _random_state(rng: np.random.Generator, spec: SynthSpec) -> np.ndarray:
    """A frame-0 state (x, y, theta, logscale) from the stationary distribution of the torus."""
    x, y = rng.uniform(0, spec.size, size=2)
    return np.array([x, y, rng.uniform(0, 2 * np.pi), rng.uniform(-LOG_SCALE, LOG_SCALE)])


def render_clip(spec: SynthSpec, *, seed: int, split: str, index: int) -> tuple[np.ndarray, int]:
    """Render clip ``index`` of ``split``: (uint8 frames T x H x W x 3, label)."""
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
    rng, look_of_split = clip_rng(seed, split, index), split_look(split)
    label = index % spec.classes
    t = np.arange(spec.video_frames, dtype=np.float64)
    grid = np.arange(spec.size, dtype=np.float32) + 0.5
    xs, ys = np.meshgrid(grid, grid)
    paint_bg, bg_lum = _background(rng, xs, ys, spec.bg_texture, look_of_split)
    cam = _camera(rng, spec, t)  # world = pixel + cam
    canvas = paint_bg(cam)  # T x H x W x 3 float32
    offset = np.concatenate([cam, np.zeros_like(cam)], axis=1)  # world -> pixel state
    for _ in range(spec.clutter + look_of_split.extra_clutter):
        look = _appearance(rng, spec, bg_lum, look_of_split)
        _draw(canvas, look, np.repeat(_random_state(rng, spec)[None], t.size, axis=0) - offset)
    for _ in range(spec.distractors):
        look = _appearance(rng, spec, bg_lum, look_of_split)
        look["radius"] *= 0.7
        walk = np.cumsum(rng.normal(scale=spec.speed[1] * spec.size / 64, size=(t.size, 2)), 0)
        state = np.repeat(_random_state(rng, spec)[None], t.size, axis=0)
        state[:, :2] += walk - walk[0]
        _draw(canvas, look, state - offset)
    look = _appearance(rng, spec, bg_lum, look_of_split)
    state = _random_state(rng, spec)[None] + _path(spec.motions[label], rng, spec, t)
    state[:, 3] = _wrap_scale(state[:, 3])
    _draw(canvas, look, state - offset)
    canvas *= 1.0 + spec.flicker * rng.standard_normal((t.size, 1, 1, 1), dtype=np.float32)
    noise = rng.standard_normal(canvas.shape, dtype=np.float32)
    noise *= np.float32(spec.noise)
    canvas += noise  # in place: these T x H x W x 3 passes are most of the rendering time
    np.clip(canvas, 0.0, 1.0, out=canvas)
    canvas *= 255.0
    canvas += 0.5
    return canvas.astype(np.uint8), label


def iter_clips(spec: SynthSpec, *, seed: int, split: str) -> Iterator[tuple[int, np.ndarray, int]]:
    """Yield (index, frames, label) for every clip of ``split``."""
    for index in range(spec.num_clips(split)):
        frames, label = render_clip(spec, seed=seed, split=split, index=index)
        yield index, frames, label


# ----------------------------------------------------------------------------------------------
# Writing mp4 files


def _yuv_frame(rgb: np.ndarray, *, pts: int, fps: int) -> Any:
    """An rgb24 array as a yuv420p frame in a freshly allocated buffer, padding zeroed."""
    from fractions import Fraction

    import av

    src = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    out = av.VideoFrame(rgb.shape[1], rgb.shape[0], "yuv420p")
    for src_plane, plane in zip(src.planes, out.planes, strict=True):
        rows = np.frombuffer(src_plane, dtype=np.uint8).reshape(-1, src_plane.line_size)
        buf = np.zeros((plane.height, plane.line_size), dtype=np.uint8)
        buf[:, : plane.width] = rows[: plane.height, : plane.width]
        plane.update(buf)
    out.pts, out.time_base = pts, Fraction(1, fps)
    return out


# How write_synth_dataset encodes (written into metadata.json). Intra-only at a constant QP:
# every frame is a keyframe coded from its own pixels alone, at a quantiser that does not depend
# on other frames, so a decoded frame is a function of its rendered frame only and inherits the
# motion-only property. With inter prediction (P/B frames, CRF rate control) the encoder's
# motion-compensated residuals put the motion direction into single decoded frames (issue 24).
ENCODING: dict[str, Any] = {"codec": "libx264", "pix_fmt": "yuv420p", "intra_only": True, "qp": 12}


def _x264_options(*, intra_only: bool, qp: int) -> dict[str, str]:
    """libx264 options: single-threaded, mbtree off; intra-only constant QP or CRF ``qp``."""
    if not intra_only:
        return {"crf": str(qp), "threads": "1", "x264-params": "mbtree=0"}
    params = "keyint=1:min-keyint=1:scenecut=0:bframes=0:mbtree=0"
    return {"qp": str(qp), "threads": "1", "x264-params": params}


def write_mp4(
    path: Path,
    frames: np.ndarray,
    *,
    fps: int,
    intra_only: bool = ENCODING["intra_only"],
    qp: int = ENCODING["qp"],
) -> None:
    """Encode uint8 frames (T x H x W x 3, even H and W) as H.264 yuv420p, single-threaded.

    ``intra_only`` (the default, see ENCODING) codes every frame as a keyframe at constant QP
    ``qp``; otherwise inter frames at CRF ``qp``. A low value keeps one-pixel motion and
    low-contrast edges visible. The bytes are a pure function of the frames: libx264 runs
    single-threaded with macroblock-tree rate control off (with mbtree on, about 1 clip in 20
    came out different on a second run, even from identical input), every frame gets an
    explicit pts, and each frame is copied into a buffer that PyAV allocates, padding zeroed.
    """
    import av

    height, width = frames.shape[1:3]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(
            "libx264", rate=fps, options=_x264_options(intra_only=intra_only, qp=qp)
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        for pts, array in enumerate(frames):
            for packet in stream.encode(_yuv_frame(array, pts=pts, fps=fps)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _finish(job: Future[None], progress: Callable[[int], None] | None) -> None:
    """Wait for one clip's encode (its error raised here) and count it."""
    job.result()
    if progress is not None:
        progress(1)


def write_synth_dataset(
    out: str | Path,
    *,
    spec: SynthSpec,
    seed: int,
    preset: str = "easy",
    progress: Callable[[int], None] | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    """Write ``spec``'s train, val, test and test_shift clips as mp4 files (encoded as ENCODING
    says) plus split and class files. Clips are rendered in order and encoded by ``workers``
    threads (each encode is single-threaded and PyAV releases the GIL while libx264 runs), so
    the files are the same whatever the thread count.

    Layout: ``out/videos/<class>/<split>_<index:05d>.mp4``, ``out/train.txt``, ``out/val.txt``,
    ``out/test.txt`` and ``out/test_shift.txt`` ("<path relative to out> <label>" per line),
    ``out/classes.txt`` (one class name per line, in label order) and ``out/metadata.json``
    (generator version, preset, knobs, seed, encoding). ``progress`` is called with the number
    of clips written since the last call. Returns the metadata.
    """
    out = Path(out)
    names = spec.class_names
    for name in names:
        (out / "videos" / name).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for split in SPLIT_CODES:
            lines = []
            pending: deque[Future[None]] = deque()
            for index, frames, label in iter_clips(spec, seed=seed, split=split):
                rel = f"videos/{names[label]}/{split}_{index:05d}.mp4"
                pending.append(pool.submit(write_mp4, out / rel, frames, fps=spec.fps))
                lines.append(f"{rel} {label}\n")
                while len(pending) > 2 * workers:  # a few clips in flight, not a whole split
                    _finish(pending.popleft(), progress)
            while pending:
                _finish(pending.popleft(), progress)
            (out / f"{split}.txt").write_text("".join(lines))
    (out / "classes.txt").write_text("".join(f"{n}\n" for n in names))
    meta = {
        "generator": "mpbench data synth",
        "version": SYNTH_VERSION,
        "preset": preset,
        "seed": seed,
        "encoding": ENCODING,
        **spec.to_dict(),
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


class SynthSource:
    """The clips of one split rendered on the fly (the in-memory synthetic dataset).

    Args:
        spec: the knobs.
        seed: dataset seed; clip ``i`` is a pure function of (seed, split, i).
        split: "train", "val", "test" or "test_shift" (disjoint sets of clips).

    Example:
        >>> src = SynthSource(preset_spec("easy"), seed=0, split="val")
        >>> len(src), tuple(src.load(0).shape)
        (120, (16, 64, 64, 3))
    """

    def __init__(self, spec: SynthSpec, *, seed: int, split: str) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
        self.spec, self.seed, self.split = spec, seed, split

    def __len__(self) -> int:
        return self.spec.num_clips(self.split)

    def label(self, index: int) -> int:
        """Class index of clip ``index`` (balanced: index mod classes)."""
        return index % self.spec.classes

    def load(self, index: int) -> Any:
        """Render clip ``index`` as uint8 T x H x W x 3 (a torch tensor)."""
        import torch

        frames, _ = render_clip(self.spec, seed=self.seed, split=self.split, index=index)
        return torch.from_numpy(frames)

    def read(self, index: int, select: Any) -> Any:
        """Render clip ``index`` and keep the frames ``select(n)``."""
        import torch

        frames = self.load(index)
        return frames[torch.as_tensor(list(select(frames.shape[0])), dtype=torch.long)]

    def describe(self, index: int) -> str:
        """A name for clip ``index``."""
        return f"synth:{self.split}/{index}"
