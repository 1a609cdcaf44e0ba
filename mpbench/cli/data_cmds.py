"""Data commands: ``data synth``, ``data cache``, ``data probe`` and ``list datasets`` (the
data-loading benchmarks are in :mod:`mpbench.cli.bench_data_cmds`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from mpbench.cli._apps import command, console, data_app, list_app
from mpbench.config import Preset

PRESET_NAMES: tuple[str, ...] = get_args(Preset)
LADDER_NAMES = ("noise", "flicker", "shake", "pan", "distractors", "clutter")


def _check_preset(preset: str) -> None:
    """Reject unknown preset names before importing anything heavy."""
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESET_NAMES)}")


def _int_list(text: str, *, option: str) -> list[int]:
    """Parse "0,1,2" into [0, 1, 2] with a clear error."""
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated integers, got {text!r}") from None


@command(data_app, "synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (created).")],
    seed: Annotated[int, typer.Option(help="Dataset seed: same seed, same files.")] = 0,
    preset: Annotated[str, typer.Option(help="easy (CPU quickstart), medium or hard.")] = "easy",
    classes: Annotated[int | None, typer.Option(help="Motion classes.")] = None,
    train_clips: Annotated[int | None, typer.Option(help="Training clips.")] = None,
    val_clips: Annotated[int | None, typer.Option(help="Validation clips.")] = None,
    test_clips: Annotated[int | None, typer.Option(help="Test clips (reported only).")] = None,
    frames: Annotated[int | None, typer.Option(help="Frames per video.")] = None,
    size: Annotated[int | None, typer.Option(help="Frame size in pixels (even).")] = None,
    fps: Annotated[int | None, typer.Option(help="Frame rate of the mp4 files.")] = None,
    ladder: Annotated[
        str | None, typer.Option(help="Nuisance ladder: " + ", ".join(LADDER_NAMES) + ".")
    ] = None,
    level: Annotated[int | None, typer.Option(help="Level 0-3 of --ladder.")] = None,
    force: Annotated[bool, typer.Option(help="Write into a non-empty folder.")] = False,
) -> None:
    """Write the synthetic motion benchmark (train, val, test and the appearance-shifted
    test_shift) as intra-only H.264 mp4 files plus split lists."""
    _check_preset(preset)
    if out.exists() and any(out.iterdir()) and not force:
        raise ValueError(f"{out} is not empty; pass --force to write into it")
    from rich.progress import Progress

    from mpbench.data.synth import preset_spec, write_synth_dataset

    spec = preset_spec(
        preset,
        classes=classes,
        train_clips=train_clips,
        val_clips=val_clips,
        test_clips=test_clips,
        video_frames=frames,
        size=size,
        fps=fps,
        ladder=ladder,
        level=level,
    )
    total = spec.train_clips + spec.val_clips + 2 * spec.test_clips
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("writing clips", total=total)
        write_synth_dataset(
            out, spec=spec, seed=seed, preset=preset, progress=lambda n: bar.advance(task, n)
        )
    console.print(
        f"wrote {spec.train_clips} train + {spec.val_clips} val + {spec.test_clips} test + "
        f"{spec.test_clips} test_shift clips of "
        f"{spec.classes} classes ({', '.join(spec.class_names)}) to {out}"
    )


@command(data_app, "cache")
def cache(
    dataset: Annotated[str, typer.Argument(help="Dataset name (mpbench list datasets).")],
    root: Annotated[Path, typer.Option(help="Dataset root (the videos on disk).")],
    size: Annotated[
        int, typer.Option(help="Short side in pixels the frames are decoded at.", min=8)
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Cache folder; the store is OUT/s{SIZE} (default ROOT/.mpbench-cache)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Decoding processes.", min=1)] = 1,
    option: Annotated[
        list[str] | None,
        typer.Option("--set", help="Reader option KEY=VALUE (repeatable), as in a study file."),
    ] = None,
) -> None:
    """Decode every video of DATASET (train, val and test) once into a memory-mapped store.

    Studies read it with the dataset option ``cache = true`` (at the dataset's short_side).
    A store that is up to date is left alone; a stale one (changed files or settings) is rebuilt.
    """
    from rich.progress import Progress

    from mpbench.config import parse_assignments
    from mpbench.data.catalog import cache_dataset

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("decoding videos", total=None)
        store, reason = cache_dataset(
            dataset,
            root=root,
            short_side=size,
            cache_dir=out,
            options=parse_assignments(option or []),
            workers=workers,
            progress=lambda n: bar.advance(task, n),
            on_build=lambda msg: console.print(msg, highlight=False),
            on_total=lambda n: bar.update(task, total=n),
        )
    _print_cache_summary(store, built=reason is not None)


def _print_cache_summary(store: Any, *, built: bool) -> None:
    """Size, videos, hours of video and GB per hour of a store."""
    what = (
        f"built (decoded {store.header['decoded']}, reused {store.header['reused']})"
        if built
        else "up to date"
    )
    console.print(
        f"{store.path}: {what}, build {store.build_id}\n"
        f"{len(store)} videos ({store.failed} failed, skipped), short side {store.short_side}, "
        f"{store.nbytes / 1e9:.3f} GB, {store.hours:.4f} hours of video, "
        f"{store.gb_per_hour:.2f} GB per hour of video",
        highlight=False,
    )


def _names(text: str, *, option: str, known: tuple[str, ...]) -> list[str]:
    """Parse "a,b" into ["a", "b"], rejecting names outside ``known``."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"{option} must be among {', '.join(known)}; got {bad}")
    return names


ValClipsOpt = Annotated[
    int, typer.Option(help="Validation clips (at most the preset's); more = tighter bound.", min=1)
]
ProbeRootOpt = Annotated[
    Path | None,
    typer.Option(
        help="Probe the decoded files of a dataset written by `mpbench data synth` (fit on "
        "train, score on val + test) instead of rendering the preset."
    ),
]
LadderOpt = Annotated[
    str,
    typer.Option(
        help="Probe every level of these nuisance ladders (comma-separated, or 'all') on the "
        "preset: " + ", ".join(LADDER_NAMES) + "."
    ),
]
ProbesOpt = Annotated[
    str, typer.Option(help="Single-frame probes at every frame index: linear, hog, orient, cnn.")
]
MotionOpt = Annotated[
    str, typer.Option(help="Motion views, one must beat the bound: diff, clip ('' for none).")
]
CnnFramesOpt = Annotated[
    int, typer.Option(help="Frame indices for the CNN probe, spread evenly (0: every one).", min=0)
]


@command(data_app, "probe")
def probe(
    preset: Annotated[str, typer.Option(help="easy, medium or hard.")] = "easy",
    seed: Annotated[int, typer.Option(help="Dataset and training seed.")] = 0,
    train_clips: Annotated[
        int, typer.Option(help="Training clips (at most the preset's).", min=1)
    ] = 1000,
    val_clips: ValClipsOpt = 240,
    classes: Annotated[int | None, typer.Option(help="Motion classes (default: preset).")] = None,
    video_frames: Annotated[
        int | None, typer.Option(help="Frames per video (default: preset).")
    ] = None,
    root: ProbeRootOpt = None,
    ladder: LadderOpt = "",
    probes: ProbesOpt = "linear,hog,orient,cnn",
    cnn_frames: CnnFramesOpt = 0,
    motion: MotionOpt = "diff,clip",
    frames: Annotated[
        int, typer.Option(help="T for the motion views (centre T+1 frames).", min=1)
    ] = 8,
    size: Annotated[int, typer.Option(help="Frames are area-resized to at most this.", min=8)] = 64,
    cnn_size: Annotated[
        int, typer.Option(help="Frame size the CNNs (frame, clip) see.", min=8)
    ] = 32,
    epochs: Annotated[int, typer.Option(help="Training epochs of every CNN.", min=1)] = 8,
    alpha: Annotated[float, typer.Option(help="Family-wise error rate of the verdict.")] = 0.05,
) -> None:
    """Prove the synthetic benchmark motion-only: single-frame probes at EVERY frame index.

    Logistic regressions on appearance statistics (linear), a HOG (hog) and per-plane gradient
    orientations (orient), and a small CNN, at each frame index: the best must stay inside the
    chance bound, Bonferroni-corrected for the probes fitted (and the --ladder levels), while a
    motion view beats it. --root probes decoded files. Exit 0: motion-only; 1: LEAKS; 3:
    INCONCLUSIVE (no motion view beats the bound either)."""
    _check_preset(preset)
    from mpbench.data.probe import FRAME_PROBES, MOTION_VIEWS

    kw = {
        "frame_probes": _names(probes, option="--probes", known=FRAME_PROBES),
        "motion_views": _names(motion, option="--motion", known=MOTION_VIEWS),
        "cnn_frames": cnn_frames or None,
        "cnn_size": cnn_size,
        "frames": frames,
        "epochs": epochs,
        "alpha": alpha,
        "seed": seed,
        "on_step": lambda msg: console.print(f"  {msg}", style="dim", highlight=False),
    }
    if root is not None:
        reports = [("files", 0, _probe_root(root, train_clips, val_clips, kw))]
    else:
        reports = _probe_preset(
            preset, ladder, classes, video_frames, train_clips, val_clips, size, kw
        )
    if len(reports) > 1:
        _print_ladder_summary(reports)
    worst = [r for _, _, r in reports if r.leaks] or [r for _, _, r in reports if not r.motion_ok]
    if worst:
        raise typer.Exit(code=1 if worst[0].leaks else 3)


def _probe_root(root: Path, train_clips: int, val_clips: int, kw: dict[str, Any]) -> Any:
    """Probe the decoded files under ``root`` and print the report."""
    from mpbench.data.catalog import read_splits
    from mpbench.data.probe import probe_files

    classes = len(read_splits("synth", root=root).class_names)
    console.print(
        f"decoded files under {root}: {classes} classes (fit on train, score on val + test)"
    )
    report = probe_files(root, classes=classes, train_clips=train_clips, val_clips=val_clips, **kw)
    _print_probe_report(report, title=f"{root}: accuracy per frame index of the decoded files")
    return report


def _probe_preset(
    preset: str,
    ladder: str,
    classes: int | None,
    video_frames: int | None,
    train_clips: int,
    val_clips: int,
    size: int,
    kw: dict[str, Any],
) -> list[tuple[str, int, Any]]:
    """Probe the rendered preset, or every level of the ladders; print each report."""
    from mpbench.data.probe import probe_ladders, probe_synth
    from mpbench.data.synth import preset_spec

    spec = preset_spec(preset, classes=classes, video_frames=video_frames)
    n_train, n_val = min(train_clips, spec.train_clips), min(val_clips, spec.val_clips)
    console.print(
        f"synth {preset}: {spec.classes} classes, {spec.video_frames} frames, "
        f"{n_train} train / {n_val} val clips (seed {kw['seed']})",
        highlight=False,
    )
    clips = {"train_clips": n_train, "val_clips": n_val, "size": size}
    if not ladder:
        report = probe_synth(spec, **clips, **kw)
        _print_probe_report(report, title=f"synth {preset}: accuracy per frame index")
        return [(preset, 0, report)]
    names = [p.strip() for p in ladder.split(",") if p.strip()]
    alpha = kw.pop("alpha")

    def show(name: str, level: int, report: Any) -> None:
        _print_probe_report(report, title=f"synth {preset}, {name} level {level}")

    return probe_ladders(spec, names, alpha=alpha, on_level=show, **clips, **kw)


def _print_ladder_summary(reports: list[tuple[str, int, Any]]) -> None:
    """One row per ladder level: the best single-frame probe, its bound, the motion views."""
    from rich.table import Table

    table = Table(title="nuisance ladders: best single-frame accuracy vs its corrected bound")
    for name in ("ladder", "level", "best (frame, probe)", "bound", "motion views", "verdict"):
        table.add_column(name)
    for name, level, r in reports:
        acc, index, probe_name = r.best
        verdict = "LEAKS" if r.leaks else ("motion-only" if r.motion_ok else "INCONCLUSIVE")
        views = ", ".join(f"{v} {a:.3f}" for v, a in r.motion_acc.items())
        table.add_row(
            name, str(level), f"{acc:.3f} ({index}, {probe_name})", f"{r.bound:.3f}", views, verdict
        )
    console.print(table)


def _print_probe_report(report: Any, *, title: str) -> None:
    """The per-index table, the motion views, the bounds and the verdict line."""
    from rich.table import Table

    _, best_index, best_probe = report.best
    table = Table(title=title)
    table.add_column("frame", justify="right")
    for name in report.frame_acc:
        table.add_column(name, justify="right")
    for index in range(len(next(iter(report.frame_acc.values())))):
        cells = []
        for name, accs in report.frame_acc.items():
            value = accs[index]
            text = "-" if value is None else f"{value:.3f}"
            if value is not None and value > report.bound:
                text = f"[bold red]{text}[/]"
            elif (index, name) == (best_index, best_probe):
                text = f"[bold]{text}[/]"
            cells.append(text)
        table.add_row(str(index), *cells)
    console.print(table)
    for view, value in report.motion_acc.items():
        console.print(f"motion view {view}: {value:.3f}", highlight=False)
    console.print(
        f"chance {report.chance:.3f}; 95% binomial upper bound of chance for {report.n_val} "
        f"val clips: {report.bound_single:.3f} for one probe, {report.bound:.3f} "
        f"Bonferroni-corrected for the max over {report.fits} probes fitted "
        f"(alpha {report.alpha:g} / {report.fits})",
        highlight=False,
    )
    style = "bold red" if report.leaks or not report.motion_ok else "bold green"
    console.print(report.verdict(), style=style, highlight=False)


@command(list_app, "datasets")
def list_datasets_cmd(
    layout: Annotated[bool, typer.Option(help="Show each dataset's directory layout.")] = True,
) -> None:
    """Registered datasets with their directory layouts and options."""
    from mpbench.data import list_datasets

    for info in list_datasets():
        console.print(f"[bold]{info.name}[/]: {info.description}", highlight=False)
        if layout:
            console.print(info.layout, highlight=False, markup=False, soft_wrap=True)
        if info.options:
            opts = ", ".join(f"{k} ({v})" for k, v in info.options.items())
            console.print(f"  options: {opts}", highlight=False, markup=False, soft_wrap=True)
        console.print()


@command(data_app, "certify")
def certify_cmd(
    preset: Annotated[
        str | None,
        typer.Argument(help="Synth preset (easy, medium, hard), in memory; not with --study."),
    ] = None,
    study: Annotated[
        Path | None,
        typer.Option(help="Take dataset, model and budget from this study's base table instead."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Seeds per control.", min=2)] = 2,
    study_seeds: Annotated[
        int | None,
        typer.Option(help="Seed count the MDE is for (default: the study's, else --seeds).", min=2),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs (small budget).", min=1)
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any trial field, KEY=VALUE (repeatable), e.g. lr=0.003."),
    ] = None,
    run_root: Annotated[
        Path, typer.Option(help="Checkpoint folders of the control trials.")
    ] = Path("runs/certify"),
) -> None:
    """Run the controls (baseline, static, shuffled) at a small budget and print the minimal
    detectable effect: certified when static falls to chance by more than that effect."""
    if (preset is None) == (study is None):
        raise ValueError("give a synth PRESET (easy, medium, hard) or --study STUDY, not both")
    if preset is not None:
        _check_preset(preset)
    from mpbench.certify import certify

    base, n_study = _certify_base(preset, study, set_ or [])
    console.print(
        f"controls on {base.dataset} ({base.data_root or _in_memory(base)}): "
        f"{base.backbone} ({base.size}), {epochs or base.epochs} epochs, {seeds} seeds",
        highlight=False,
    )

    def show(cfg: Any, score: float) -> None:
        console.print(f"  {cfg.variant} seed {cfg.seed}: test top-1 {100 * score:.2f} %")

    cert = certify(
        base,
        seeds=seeds,
        study_seeds=study_seeds or n_study or seeds,
        epochs=epochs,
        run_root=run_root,
        on_trial=show,
    )
    for line in cert.lines():
        console.print(line, highlight=False)
    if not cert.certified:
        raise typer.Exit(code=1)


def _in_memory(base: Any) -> str:
    """How the controls' in-memory synth data are named in the first line."""
    return f"in memory, preset {base.dataset_options.get('preset', 'easy')}"


# The in-memory benchmark `data certify PRESET` trains on without --study: the quickstart's
# model and input at a CPU budget of seconds per trial.
CERTIFY_BASE: dict[str, Any] = {
    "backbone": "x3d_xs",
    "size": "tiny",
    "frames": 8,
    "crop": 32,
    "epochs": 6,
    "batch_size": 16,
    "lr": 3e-3,
    "weight_decay": 0.0,
    "device": "cpu",
    "channels_last": True,
    "dataset_options": {
        "classes": 4,
        "size": 32,
        "train_clips": 160,
        "val_clips": 32,
        "test_clips": 96,
    },
}


def _certify_base(
    preset: str | None, study: Path | None, assignments: list[str]
) -> tuple[Any, int | None]:
    """The base TrialConfig of the controls and the study's seed count (None without one; a
    sequential grid's most seeds)."""
    from mpbench.config import TrialConfig, parse_assignments

    changes = parse_assignments(assignments)
    if study is None:
        fields = {**CERTIFY_BASE, **changes}
        opts = {
            "preset": preset,
            **CERTIFY_BASE["dataset_options"],
            **changes.get("dataset_options", {}),
        }
        return TrialConfig.model_validate({**fields, "dataset_options": opts}), None
    from mpbench.study.spec import local_config, read_study, seeds

    spec = read_study(study, overrides=changes)
    count = spec.schedule.max if spec.schedule is not None else len(seeds(spec))
    return local_config(spec.base, spec.folder), count
