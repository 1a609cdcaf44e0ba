"""Data commands: ``data synth``, ``data probe``, ``list datasets`` and ``bench data``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mpbench.cli._apps import bench_app, console, data_app, list_app, user_errors

PRESET_NAMES = ("easy", "medium", "hard")


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
        video_frames=frames,
        size=size,
        fps=fps,
    )
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("writing clips", total=spec.train_clips + spec.val_clips)
        write_synth_dataset(
            out, spec=spec, seed=seed, preset=preset, progress=lambda n: bar.advance(task, n)
        )
    console.print(
        f"wrote {spec.train_clips} train + {spec.val_clips} val clips of "
        f"{spec.classes} classes ({', '.join(spec.class_names)}) to {out}"
    )


@data_app.command("probe")
@user_errors
def probe(
    preset: Annotated[str, typer.Option(help="easy, medium or hard.")] = "easy",
    seed: Annotated[int, typer.Option(help="Dataset and training seed.")] = 0,
    frames: Annotated[int, typer.Option(help="T (the clips hold T+1 frames).")] = 8,
    epochs: Annotated[int, typer.Option(help="Training epochs per view.")] = 8,
    views: Annotated[str, typer.Option(help="Comma-separated: frame, diff, clip.")] = "frame,diff",
    train_clips: Annotated[int | None, typer.Option(help="Training clips.")] = None,
    val_clips: Annotated[int | None, typer.Option(help="Validation clips.")] = None,
) -> None:
    """Single-frame control: a tiny CNN on one frame vs on frame differences (vs a 3D CNN)."""
    _check_preset(preset)
    from rich.table import Table

    from mpbench.data.probe import motion_probe
    from mpbench.data.synth import preset_spec

    spec = preset_spec(preset, train_clips=train_clips, val_clips=val_clips)
    chosen = [v.strip() for v in views.split(",") if v.strip()]
    acc = motion_probe(
        spec,
        seed=seed,
        frames=frames,
        views=chosen,
        epochs=epochs,
        on_epoch=lambda v, e, a: console.print(f"{v} epoch {e + 1}: {a:.3f}"),
    )
    table = Table(title=f"synth {preset}: val accuracy after {epochs} epochs")
    table.add_column("view")
    table.add_column("accuracy", justify="right")
    for view, value in acc.items():
        table.add_row(view, f"{value:.3f}")
    console.print(table)
    console.print(f"chance {1 / spec.classes:.3f} ({spec.classes} classes)")


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


@bench_app.command("data")
@user_errors
def bench_data_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset name (mpbench list datasets).")],
    root: Annotated[Path | None, typer.Option(help="Dataset root (none: synth in memory).")] = None,
    frames: Annotated[int, typer.Option(help="T (the clips hold T+1 frames).")] = 8,
    sampling_rate: Annotated[int, typer.Option(help="Stride between sampled frames.")] = 1,
    crop: Annotated[int, typer.Option(help="Crop size in pixels.")] = 64,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 8,
    workers: Annotated[
        str, typer.Option(help="Comma-separated DataLoader worker counts.")
    ] = "0,1,2",
    batches: Annotated[int, typer.Option(help="Timed batches per worker count.")] = 10,
) -> None:
    """Clips per second decoded and transformed, in total and per DataLoader worker."""
    counts = _int_list(workers, option="--workers")
    from rich.table import Table

    from mpbench.bench.data import bench_data

    table = Table(title=f"{dataset} train clips: {frames}+1 frames, {crop}px crop, batch {batch}")
    for col in ("workers", "clips", "seconds", "clips/s", "clips/s per worker", "skipped"):
        table.add_column(col, justify="right")
    rows = bench_data(
        dataset,
        root=root,
        frames=frames,
        sampling_rate=sampling_rate,
        crop=crop,
        batch=batch,
        workers=counts,
        batches=batches,
        on_result=lambda r: console.print(
            f"workers={r['workers']}: {r['clips_per_s']:.1f} clips/s"
        ),
    )
    for r in rows:
        table.add_row(
            str(r["workers"]),
            str(r["clips"]),
            f"{r['seconds']:.2f}",
            f"{r['clips_per_s']:.1f}",
            f"{r['clips_per_s_per_worker']:.1f}",
            str(r["skipped"]),
        )
    console.print(table)
