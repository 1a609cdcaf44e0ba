"""Data commands: ``data synth``, ``data cache``, ``data probe`` and ``list datasets`` (the
data-loading benchmarks are in :mod:`mpbench.cli.bench_data_cmds`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from mpbench.cli._apps import console, data_app, list_app, user_errors
from mpbench.config import Preset

PRESET_NAMES: tuple[str, ...] = get_args(Preset)


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


@data_app.command("synth")
@user_errors
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
    force: Annotated[bool, typer.Option(help="Write into a non-empty folder.")] = False,
) -> None:
    """Write the synthetic motion benchmark as H.264 mp4 files plus split lists."""
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
    )
    total = spec.train_clips + spec.val_clips + spec.test_clips
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("writing clips", total=total)
        write_synth_dataset(
            out, spec=spec, seed=seed, preset=preset, progress=lambda n: bar.advance(task, n)
        )
    console.print(
        f"wrote {spec.train_clips} train + {spec.val_clips} val + {spec.test_clips} test clips of "
        f"{spec.classes} classes ({', '.join(spec.class_names)}) to {out}"
    )


@data_app.command("cache")
@user_errors
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
CnnFramesOpt = Annotated[
    int, typer.Option(help="Frame indices for the CNN probe, spread evenly (0: every one).", min=0)
]


@data_app.command("probe")
@user_errors
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
    probes: Annotated[
        str, typer.Option(help="Single-frame probes at every frame index: linear, cnn.")
    ] = "linear,cnn",
    cnn_frames: CnnFramesOpt = 0,
    motion: Annotated[
        str, typer.Option(help="Motion views, one must beat the bound: diff, clip ('' for none).")
    ] = "diff,clip",
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

    A linear model on appearance statistics and a small CNN on the RGB frame are fitted at each
    frame index; the best of them must stay inside the binomial upper bound of chance,
    Bonferroni-corrected for the number of probes fitted, while frame differences or a tiny 3D
    CNN on the clip (the positive control) must beat it. Exit code 0: motion-only; 1: a single
    frame LEAKS the class; 3: INCONCLUSIVE (single frames are at chance, but no motion view beats
    the bound either).
    """
    _check_preset(preset)
    from mpbench.data.probe import FRAME_PROBES, MOTION_VIEWS, probe_synth
    from mpbench.data.synth import preset_spec

    chosen = _names(probes, option="--probes", known=FRAME_PROBES)
    views = _names(motion, option="--motion", known=MOTION_VIEWS)

    spec = preset_spec(preset, classes=classes, video_frames=video_frames)
    n_train, n_val = min(train_clips, spec.train_clips), min(val_clips, spec.val_clips)
    console.print(
        f"synth {preset}: {spec.classes} classes, {spec.video_frames} frames, "
        f"{n_train} train / {n_val} val clips (seed {seed})",
        highlight=False,
    )
    report = probe_synth(
        spec, seed=seed, train_clips=n_train, val_clips=n_val, size=size, frame_probes=chosen,
        motion_views=views, cnn_frames=cnn_frames or None, cnn_size=cnn_size, frames=frames,
        epochs=epochs, alpha=alpha,
        on_step=lambda msg: console.print(f"  {msg}", style="dim", highlight=False),
    )  # fmt: skip
    _print_probe_report(report, title=f"synth {preset}: accuracy per frame index")
    if report.leaks or not report.motion_ok:
        raise typer.Exit(code=1 if report.leaks else 3)


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


@list_app.command("datasets")
@user_errors
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
