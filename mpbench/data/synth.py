"""The synthetic motion benchmark: classes that differ only by how an actor moves.

Every clip shows one *actor* (a textured shape) on a static textured background. Its appearance
(shape, colour, texture, size) is drawn from one distribution shared by every class, and each
motion is symmetric about the video's middle frame (the actor's state at that frame is drawn
class-independently), so a single frame carries no class information: only motion does.
Nuisances (static look-alike clutter, moving distractors, sensor noise, flicker, camera shake
and pan) make the harder presets harder.

Rendering is vectorised numpy over T x H x W; each clip has its own random generator seeded from
``(seed, split, index)``, so the in-memory dataset and the mp4 files written by
:func:`write_synth_dataset` hold the same clips.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

Split = Literal["train", "val", "test"]
SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}
PresetName = Literal["easy", "medium", "hard"]

# Motion classes, in the order presets take them. Each is (dx, dy, dtheta, dlogscale, kind)
# per frame around the middle frame; "kind" selects the path generator below.
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
        val_clips: clips in the val split (also used as the test split).
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
        """Number of clips in ``split`` (test shares the val clips)."""
        return self.train_clips if split == "train" else self.val_clips

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
    if spec.train_clips < 1 or spec.val_clips < 1:
        raise ValueError(
            f"train_clips and val_clips must be >= 1, got {spec.train_clips}, {spec.val_clips}"
        )
    if spec.fps < 1:
        raise ValueError(f"fps must be >= 1, got {spec.fps}")
    if not 0.0 <= spec.brighter <= 1.0:
        raise ValueError(f"brighter is a probability in [0, 1], got {spec.brighter}")
    for name in ("noise", "flicker", "shake", "contrast", "bg_texture"):
        if getattr(spec, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(spec, name)}")
    if spec.clutter < 0 or spec.distractors < 0:
        raise ValueError(f"clutter/distractors must be >= 0, got {spec.clutter}/{spec.distractors}")


PRESETS: dict[str, SynthSpec] = {
    # CPU quickstart: few classes, a large high-contrast actor, fast motion, no nuisances.
    "easy": SynthSpec(),
    # Ten motions (rotation and circular paths), clutter, one distractor, noise and shake.
    "medium": SynthSpec(
        classes=10,
        train_clips=2000,
        val_clips=500,
        video_frames=24,
        size=96,
        actor_radius=(0.09, 0.15),
        speed=(1.5, 3.0),
        contrast=0.2,
        clutter=2,
        distractors=1,
        noise=0.03,
        flicker=0.03,
        shake=1.0,
    ),
    # Every motion, more clutter and distractors, low contrast, small actors, camera pan: for GPUs.
    "hard": SynthSpec(
        classes=len(MOTIONS),
        train_clips=8000,
        val_clips=1600,
        video_frames=32,
        size=128,
        actor_radius=(0.06, 0.11),
        speed=(1.0, 2.5),
        contrast=0.1,
        clutter=4,
        distractors=2,
        noise=0.05,
        flicker=0.06,
        shake=1.5,
        pan=(0.0, 1.0),
    ),
}


def preset_spec(preset: str = "easy", **overrides: Any) -> SynthSpec:
    """The named preset with ``overrides`` applied (None values are ignored)."""
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


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one clip, a pure function of (seed, split, index)."""
    return np.random.default_rng([seed, SPLIT_CODES[split], index])


def _path(motion: str, rng: np.random.Generator, spec: SynthSpec, tau: np.ndarray) -> np.ndarray:
    """Per-frame (dx, dy, dtheta, dlogscale) relative to the middle frame, shape T x 4.

    ``tau`` is the frame index minus the middle frame index; y grows downwards, so "up" is -y.
    """
    v = rng.uniform(*spec.speed) * spec.size / 64
    out = np.zeros((tau.size, 4), dtype=np.float64)
    unit = {
        "right": (1, 0),
        "left": (-1, 0),
        "up": (0, -1),
        "down": (0, 1),
        "diagonal_up_right": (0.7071, -0.7071),
        "diagonal_down_left": (-0.7071, 0.7071),
    }
    if motion in unit:
        out[:, 0], out[:, 1] = v * tau * unit[motion][0], v * tau * unit[motion][1]
    elif motion in ("grow", "shrink"):
        out[:, 3] = (1 if motion == "grow" else -1) * rng.uniform(0.05, 0.08) * tau
    elif motion in ("rotate_cw", "rotate_ccw"):
        # image y points down, so a positive angle turns clockwise on screen
        out[:, 2] = (1 if motion == "rotate_cw" else -1) * np.deg2rad(rng.uniform(12, 22)) * tau
    elif motion in ("circle_cw", "circle_ccw"):
        radius, phase = rng.uniform(0.12, 0.18) * spec.size, rng.uniform(0, 2 * np.pi)
        omega = (1 if motion == "circle_cw" else -1) * v / radius
        out[:, 0] = radius * (np.cos(phase + omega * tau) - np.cos(phase))
        out[:, 1] = radius * (np.sin(phase + omega * tau) - np.sin(phase))
    elif motion.startswith("oscillate"):
        period, phase = rng.uniform(5, 8), rng.uniform(0, 2 * np.pi)
        amp = v * period / (2 * np.pi)
        shift = amp * (np.sin(2 * np.pi * tau / period + phase) - np.sin(phase))
        out[:, 0 if motion.endswith("horizontal") else 1] = shift
    elif motion.startswith("stop_and_go"):
        half = int(rng.integers(2, 4))  # moves for `half` frames, rests for `half` frames
        t0 = int(rng.integers(0, 2 * half))
        steps = ((np.arange(tau.size) + t0) % (2 * half) < half).astype(np.float64)
        pos = np.concatenate([[0.0], np.cumsum(steps[:-1])]) * 2 * v
        mid = tau.size // 2
        out[:, 0] = (1 if motion.endswith("right") else -1) * (pos - pos[mid])
    else:  # pragma: no cover - MOTIONS and this function are kept in step by a test
        raise ValueError(f"motion {motion!r} has no path")
    return out


def _appearance(rng: np.random.Generator, spec: SynthSpec, bg_lum: float) -> dict[str, Any]:
    """Shape, colour, texture and size of one object: the same distribution for every class."""
    lum_sign = 1.0 if rng.random() < spec.brighter else -1.0
    lum = np.clip(bg_lum + lum_sign * rng.uniform(spec.contrast, spec.contrast + 0.3), 0.05, 0.95)
    tint = rng.uniform(-0.15, 0.15, size=3)
    return {
        "shape": int(rng.integers(0, 4)),  # square, triangle, cross, ellipse
        "colour": np.clip(lum + tint - tint.mean(), 0.0, 1.0),
        "texture": int(rng.integers(0, 3)),  # stripes, checker, half-split
        "freq": rng.uniform(2.0, 4.0),
        "radius": rng.uniform(*spec.actor_radius) * spec.size,
        "theta": rng.uniform(0, 2 * np.pi),
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
    return np.where(u + 0.3 * v > 0, 1.0, -1.0)


def _draw(
    canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray, look: dict[str, Any], state: np.ndarray
) -> None:
    """Paint one object with per-frame ``state`` (T x 4: x, y, theta, logscale) onto canvas.

    Only the box the object covers over the whole clip is touched (most pixels are background).
    """
    reach = 1.6 * look["radius"] * float(np.exp(state[:, 3].max())) + 2
    size = canvas.shape[1]
    x0, x1 = (
        int(np.clip(f(state[:, 0]) + d, 0, size))
        for f, d in ((np.min, -reach), (np.max, reach + 1))
    )
    y0, y1 = (
        int(np.clip(f(state[:, 1]) + d, 0, size))
        for f, d in ((np.min, -reach), (np.max, reach + 1))
    )
    if x1 <= x0 or y1 <= y0:
        return
    xs, ys, region = xs[y0:y1, x0:x1], ys[y0:y1, x0:x1], canvas[:, y0:y1, x0:x1]
    cx, cy, th, ls = (state[:, i, None, None].astype(np.float32) for i in range(4))
    radius = look["radius"] * np.exp(ls)
    dx, dy = xs[None] - cx, ys[None] - cy
    cos, sin = np.cos(th), np.sin(th)
    u, v = (cos * dx + sin * dy) / radius, (-sin * dx + cos * dy) / radius
    sd = _shape_mask(look["shape"], u, v, look["aspect"])
    alpha = np.clip(0.5 - sd * radius, 0.0, 1.0)[..., None]  # ~1 px anti-aliased edge
    tex = 1.0 + 0.18 * _texture(look["texture"], u, v, look["freq"])[..., None]
    colour = np.clip(look["colour"].astype(np.float32) * tex, 0.0, 1.0)
    region *= 1.0 - alpha
    region += alpha * colour


def _background(
    rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray, texture: float
) -> tuple[Any, float]:
    """A static low-frequency textured background as a function of the camera offset."""
    lum = rng.uniform(0.3, 0.7)
    tint = rng.uniform(-0.1, 0.1, size=3).astype(np.float32)
    waves = rng.normal(size=(3, 2)) * 0.15
    phases, amps = rng.uniform(0, 2 * np.pi, 3), texture * rng.uniform(0.02, 0.06, 3)
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
        return np.clip(val[..., None] + tint, 0.0, 1.0)

    return paint, float(lum)


def _camera(rng: np.random.Generator, spec: SynthSpec, tau: np.ndarray) -> np.ndarray:
    """Per-frame camera offset (T x 2): a constant pan plus random shake."""
    angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(*spec.pan) * spec.size / 64
    pan = np.stack([np.cos(angle) * speed * tau, np.sin(angle) * speed * tau], axis=1)
    return pan + rng.normal(scale=spec.shake, size=(tau.size, 2))


def _random_state(rng: np.random.Generator, spec: SynthSpec, look: dict[str, Any]) -> np.ndarray:
    """Middle-frame state (x, y, theta, logscale), drawn inside the central half of the frame."""
    x, y = rng.uniform(0.3, 0.7, size=2) * spec.size
    return np.array([x, y, look["theta"], 0.0])


def render_clip(spec: SynthSpec, *, seed: int, split: str, index: int) -> tuple[np.ndarray, int]:
    """Render clip ``index`` of ``split``: (uint8 frames T x H x W x 3, label)."""
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
    rng = clip_rng(seed, split, index)
    label = index % spec.classes
    tau = np.arange(spec.video_frames, dtype=np.float64) - (spec.video_frames - 1) // 2
    grid = np.arange(spec.size, dtype=np.float32) + 0.5
    xs, ys = np.meshgrid(grid, grid)
    paint_bg, bg_lum = _background(rng, xs, ys, spec.bg_texture)
    cam = _camera(rng, spec, tau)  # world = pixel + cam
    canvas = paint_bg(cam)  # T x H x W x 3 float32

    def place(state: np.ndarray) -> np.ndarray:
        """World-frame object state to pixel coordinates."""
        return state - np.concatenate([cam, np.zeros_like(cam)], axis=1)

    for _ in range(spec.clutter):
        look = _appearance(rng, spec, bg_lum)
        state = np.repeat(_random_state(rng, spec, look)[None], tau.size, axis=0)
        state[:, :2] = rng.uniform(0.1, 0.9, size=2) * spec.size
        _draw(canvas, xs, ys, look, place(state))
    for _ in range(spec.distractors):
        look = _appearance(rng, spec, bg_lum)
        look["radius"] *= 0.7
        start = _random_state(rng, spec, look)
        start[:2] = rng.uniform(0.1, 0.9, size=2) * spec.size
        walk = np.cumsum(rng.normal(scale=spec.speed[1] * spec.size / 64, size=(tau.size, 2)), 0)
        state = np.repeat(start[None], tau.size, axis=0)
        state[:, :2] += walk - walk[(tau.size - 1) // 2]
        _draw(canvas, xs, ys, look, place(state))
    look = _appearance(rng, spec, bg_lum)
    state = _random_state(rng, spec, look)[None] + _path(spec.motions[label], rng, spec, tau)
    _draw(canvas, xs, ys, look, place(state))
    gain = 1.0 + spec.flicker * rng.standard_normal((tau.size, 1, 1, 1), dtype=np.float32)
    noise = rng.standard_normal(canvas.shape, dtype=np.float32)
    canvas = canvas * gain + np.float32(spec.noise) * noise
    return (np.clip(canvas, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), label


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


def write_mp4(path: Path, frames: np.ndarray, *, fps: int, crf: int = 12) -> None:
    """Encode uint8 frames (T x H x W x 3, even H and W) as H.264 yuv420p, single-threaded.

    A low CRF keeps one-pixel motion and low-contrast edges visible. The bytes are a pure
    function of the frames: libx264 runs single-threaded with macroblock-tree rate control off
    (with mbtree on, about 1 clip in 20 came out different on a second run, even from identical
    input), every frame gets an explicit pts, and each frame is copied into a buffer that PyAV
    allocates, padding zeroed.
    """
    import av

    height, width = frames.shape[1:3]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(
            "libx264",
            rate=fps,
            options={"crf": str(crf), "threads": "1", "x264-params": "mbtree=0"},
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        for pts, array in enumerate(frames):
            for packet in stream.encode(_yuv_frame(array, pts=pts, fps=fps)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_synth_dataset(
    out: str | Path,
    *,
    spec: SynthSpec,
    seed: int,
    preset: str = "easy",
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write ``spec``'s train and val clips as mp4 files plus split and class files.

    Layout: ``out/videos/<class>/<split>_<index:05d>.mp4``, ``out/train.txt`` and
    ``out/val.txt`` ("<path relative to out> <label>" per line), ``out/classes.txt`` (one class
    name per line, in label order) and ``out/metadata.json`` (preset, knobs, seed). ``progress``
    is called with the number of clips written since the last call. Returns the metadata.
    """
    out = Path(out)
    names = spec.class_names
    for name in names:
        (out / "videos" / name).mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        lines = []
        for index, frames, label in iter_clips(spec, seed=seed, split=split):
            rel = f"videos/{names[label]}/{split}_{index:05d}.mp4"
            write_mp4(out / rel, frames, fps=spec.fps)
            lines.append(f"{rel} {label}\n")
            if progress is not None:
                progress(1)
        (out / f"{split}.txt").write_text("".join(lines))
    (out / "classes.txt").write_text("".join(f"{n}\n" for n in names))
    meta = {"generator": "mpbench data synth", "preset": preset, "seed": seed, **spec.to_dict()}
    (out / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


class SynthSource:
    """The clips of one split rendered on the fly (the in-memory synthetic dataset).

    Args:
        spec: the knobs.
        seed: dataset seed; clip ``i`` is a pure function of (seed, split, i).
        split: "train", "val" or "test" (test renders the val clips).

    Example:
        >>> src = SynthSource(preset_spec("easy"), seed=0, split="val")
        >>> len(src), tuple(src.load(0).shape)
        (120, (16, 64, 64, 3))
    """

    def __init__(self, spec: SynthSpec, *, seed: int, split: str) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
        self.spec, self.seed = spec, seed
        self.split = "val" if split == "test" else split

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

    def describe(self, index: int) -> str:
        """A name for clip ``index``."""
        return f"synth:{self.split}/{index}"
