"""Data commands: ``data synth``, ``data cache``, ``data probe``, ``list datasets`` and
``bench data``."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

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


@data_app.command("probe")
@user_errors
def probe(
    preset: Annotated[str, typer.Option(help="easy, medium or hard.")] = "easy",
    seed: Annotated[int, typer.Option(help="Dataset and training seed.")] = 0,
    train_clips: Annotated[
        int, typer.Option(help="Training clips (at most the preset's).", min=1)
    ] = 1000,
    val_clips: Annotated[
        int,
        typer.Option(help="Validation clips (at most the preset's); more = tighter bound.", min=1),
    ] = 240,
    classes: Annotated[int | None, typer.Option(help="Motion classes (default: preset).")] = None,
    video_frames: Annotated[
        int | None, typer.Option(help="Frames per video (default: preset).")
    ] = None,
    probes: Annotated[
        str, typer.Option(help="Single-frame probes at every frame index: linear, cnn.")
    ] = "linear,cnn",
    cnn_frames: Annotated[
        int,
        typer.Option(help="Frame indices for the CNN probe, spread evenly (0: every one).", min=0),
    ] = 0,
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
        spec,
        seed=seed,
        train_clips=n_train,
        val_clips=n_val,
        size=size,
        frame_probes=chosen,
        motion_views=views,
        cnn_frames=cnn_frames or None,
        cnn_size=cnn_size,
        frames=frames,
        epochs=epochs,
        alpha=alpha,
        on_step=lambda msg: console.print(f"  {msg}", style="dim", highlight=False),
    )
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


class BenchDevice(StrEnum):
    """Where ``bench data`` compares the data rate with a training step."""

    cpu = "cpu"
    cuda = "cuda"


def _reject(mode: str, **given: Any) -> None:
    """Raise when options of the other mode were given (their value is not None)."""
    bad = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
    if bad:
        raise ValueError(f"{', '.join(bad)} cannot be used {mode}")


@bench_app.command("data")
@user_errors
def bench_data_cmd(
    dataset: Annotated[
        str | None,
        typer.Option(help="Measure this dataset's DataLoader instead (mpbench list datasets)."),
    ] = None,
    root: Annotated[
        Path | None, typer.Option(help="--dataset: its root (none: synth in memory).")
    ] = None,
    folder: Annotated[
        Path | None, typer.Option(help="Also compare the decoders on the videos in this folder.")
    ] = None,
    durations: Annotated[
        str | None,
        typer.Option(
            help="Test videos' seconds, comma-separated (default 10,60,300; none with --folder)."
        ),
    ] = None,
    height: Annotated[int, typer.Option(help="Test videos' height (16:9 H.264).", min=16)] = 720,
    xvid: Annotated[
        bool, typer.Option(help="Also a 320x240 XviD AVI as long as the shortest video.")
    ] = True,
    videos_dir: Annotated[
        Path, typer.Option(help="Where the test videos are written once and reused.")
    ] = Path("~/.cache/mpbench/bench-videos"),
    decoders: Annotated[
        str,
        typer.Option(help="Comma-separated: full, seek, pytorchvideo, torchcodec, decord, cache."),
    ] = "full,seek,pytorchvideo,torchcodec,decord,cache",
    frames: Annotated[int, typer.Option(help="T (the clips hold T+1 frames).", min=1)] = 8,
    sampling_rate: Annotated[
        int | None,
        typer.Option(help="Stride between sampled frames (default 4; 1 with --dataset).", min=1),
    ] = None,
    size: Annotated[int, typer.Option(help="Short side the frames are decoded at.", min=8)] = 256,
    workers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated worker counts: processes timed at once (default 1; "
            "0,1,2 DataLoader workers with --dataset)."
        ),
    ] = None,
    clips: Annotated[
        int, typer.Option(help="Timed clips per worker (after a warm-up).", min=1)
    ] = 20,
    full_clips: Annotated[int, typer.Option(help="Timed clips per worker of full.", min=1)] = 2,
    full_limit_gb: Annotated[
        float, typer.Option(help="Skip full where its estimated memory per worker is above.")
    ] = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of the clip starts.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write all rows here.")] = None,
    device: Annotated[
        BenchDevice, typer.Option(help="cuda: also time a training step and compare rates.")
    ] = BenchDevice.cpu,
    backbone: Annotated[str, typer.Option(help="--device cuda: the backbone stepped.")] = "x3d_s",
    batch: Annotated[
        int, typer.Option(help="Clips per batch (--dataset) or step (cuda).", min=1)
    ] = 8,
    crop: Annotated[int | None, typer.Option(help="--dataset: crop size (default 64).")] = None,
    batches: Annotated[
        int | None, typer.Option(help="--dataset: timed batches per worker count (default 10).")
    ] = None,
) -> None:
    """Compare clip decoders side by side on test videos: clips/s and peak memory per worker,
    and the ratios of the decoding targets last. With --dataset: a dataset's DataLoader rate."""
    if dataset is not None:
        _reject(
            "with --dataset",
            folder=folder,
            durations=durations,
            json=json_out,
            device=None if device == BenchDevice.cpu else device,
        )
        _bench_dataset(
            dataset,
            root=root,
            frames=frames,
            sampling_rate=sampling_rate or 1,
            crop=crop or 64,
            batch=batch,
            workers=workers or "0,1,2",
            batches=batches or 10,
        )
        return
    _reject("without --dataset", root=root, crop=crop, batches=batches)
    from mpbench.bench import data as D
    from mpbench.bench.decoders import DECODERS

    if device == BenchDevice.cuda:
        from mpbench._device import resolve_device

        resolve_device("cuda")
    clip = D.ClipSettings(
        frames=frames,
        sampling_rate=sampling_rate or 4,
        short_side=size,
        clips=clips,
        full_clips=full_clips,
        seed=seed,
    )
    files = D.folder_videos(folder) if folder is not None else []
    if durations is None:
        durations = "" if folder is not None else ",".join(map(str, D.DEFAULT_DURATIONS))
    videos = D.bench_videos(_int_list(durations, option="--durations"), height=height, xvid=xvid)
    if not videos and not files:
        raise ValueError("nothing to measure: give --durations or --folder")
    _bench_decoders(
        videos,
        files,
        clip=clip,
        videos_dir=videos_dir.expanduser(),
        decoders=_names(decoders, option="--decoders", known=DECODERS),
        workers=_int_list(workers or "1", option="--workers"),
        full_limit_gb=full_limit_gb,
        json_out=json_out,
        step=(backbone, batch) if device == BenchDevice.cuda else None,
    )


def _bench_decoders(
    videos: list[Any],
    files: list[Path],
    *,
    clip: Any,
    videos_dir: Path,
    decoders: list[str],
    workers: list[int],
    full_limit_gb: float,
    json_out: Path | None,
    step: tuple[str, int] | None,
) -> None:
    """Write and probe the videos, compare the decoders, print tables and the ratios last."""
    import dataclasses
    import os
    import tempfile

    from mpbench.bench import data as D

    load_start = os.getloadavg()
    console.print(
        f"load average (1, 5, 15 min): {_load(load_start)} on {os.cpu_count()} CPUs",
        highlight=False,
    )
    probes = _write_videos(D, videos, files, videos_dir=videos_dir, size=clip.short_side)
    videos_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=videos_dir, prefix=".stores-") as store_dir:
        result = _measure(
            D,
            probes,
            store_dir=store_dir,
            decoders=decoders,
            workers=workers,
            clip=clip,
            full_limit_gb=full_limit_gb,
        )
    for probe in probes:
        table, notes = _decoder_table(probe, result, clip)
        console.print(table)
        for note in notes:
            console.print(f"  {note}", highlight=False, soft_wrap=True)
    gpu = None if step is None else _gpu_rows(D, result.rows, backbone=step[0], batch=step[1])
    ratios = D.decoder_ratios(result.rows, workers=workers[0])
    load_end = os.getloadavg()
    console.print(f"load average at the end: {_load(load_end)}", highlight=False)
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                {
                    "settings": {
                        **dataclasses.asdict(clip),
                        "workers": workers,
                        "full_limit_gb": full_limit_gb,
                        "decoders": decoders,
                    },
                    "load_average": {"start": load_start, "end": load_end},
                    "rows": result.rows,
                    "cache_builds": result.builds,
                    "gpu": gpu,
                    "ratios": ratios,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        console.print(f"rows written to {json_out}", highlight=False)
    _print_ratios(ratios, workers=workers[0])


def _load(avg: tuple[float, float, float]) -> str:
    return ", ".join(f"{a:.2f}" for a in avg)


def _write_videos(D: Any, videos: list, files: list, *, videos_dir: Path, size: int) -> list:
    """Write the missing test videos under a progress bar; probe every video."""
    from rich.progress import Progress

    missing = sum(v.frames for v in videos if not (videos_dir / v.name).exists())
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"writing test videos into {videos_dir}", total=missing)
        return D.prepare_videos(
            videos,
            files,
            videos_dir=videos_dir,
            short_side=size,
            progress=lambda n: bar.advance(task, n),
        )


def _measure(D: Any, probes: list, **kwargs: Any) -> Any:
    """Run the comparison under a progress bar (one step per row)."""
    from rich.progress import Progress

    total = len(probes) * len(kwargs["decoders"]) * len(kwargs["workers"])
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("measuring", total=total)
        return D.compare_decoders(
            probes,
            on_row=lambda row: bar.advance(task),
            on_start=lambda s: bar.update(task, description=s),
            **kwargs,
        )


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _ms(value: float | None) -> str:
    """Milliseconds with three significant digits or so (cache reads take microseconds)."""
    return "-" if value is None else f"{value:.3f}" if value < 1 else f"{value:.1f}"


def _decoder_table(probe: Any, result: Any, clip: Any) -> tuple[Any, list[str]]:
    """One video's rows (rate, ms/clip and peak RSS per worker) and the notes below it: why a
    row has no numbers, and the cache's build time."""
    from rich.markup import escape
    from rich.table import Table

    name = Path(probe.path).name
    table = Table(
        title=f"{name}: {probe.kind} {probe.width}x{probe.height}, {probe.seconds:g} s, "
        f"{probe.frames} frames; clips of {clip.frames}+1 frames every {clip.sampling_rate} "
        f"at {probe.out_width}x{probe.out_height}",
        caption_justify="left",
    )
    for col in ("decoder", "workers", "clips/s/worker", "ms/clip", "peak RSS MB/worker",
                "RSS MB before decoding", "status"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("decoder", "status") else "right")
    notes = []
    for r in (r for r in result.rows if r["video"] == name):
        ok = r["status"] == "ok"
        if not ok:
            notes.append(escape(f"{r['decoder']} x {r['workers']} {r['status']}: {r['reason']}"))
        table.add_row(
            r["decoder"], str(r["workers"]), _num(r.get("clips_per_s_per_worker"), ".2f"),
            _ms(r.get("ms_per_clip")), _num(r.get("peak_rss_mb"), ".0f"),
            _num(r.get("start_rss_mb"), ".0f"), f"ok, {r['clips']} timed" if ok else r["status"],
        )  # fmt: skip
    notes += [
        f"cache: store built once in {b['seconds']:.1f} s ({b['bytes'] / 1e6:.1f} MB), "
        "not counted in its rate"
        for b in result.builds
        if b["video"] == name
    ]
    return table, notes


def _gpu_rows(D: Any, rows: list, *, backbone: str, batch: int) -> list[dict[str, Any]]:
    """Time the training step on CUDA and print the data rates beside it."""
    from rich.table import Table

    from mpbench.bench.step import time_training_step

    with console.status(f"timing a training step of {backbone} on cuda"):
        timing = time_training_step(backbone=backbone, device="cuda", batch=batch)
    step_rate = batch / timing.prompt_s
    gpu = D.data_vs_step(rows, step_clips_per_s=step_rate)
    console.print(
        f"data rate vs training step: {backbone} with the prompt layer ({timing.size} size, "
        f"{timing.frames}+1 frames at {timing.crop}x{timing.crop}, batch {batch}, amp "
        f"{timing.amp}) on cuda takes {timing.prompt_s * 1e3:.1f} ms/step = {step_rate:.1f} "
        "clips/s; the GPU waits where the workers deliver fewer",
        highlight=False,
        soft_wrap=True,
    )
    table = Table()
    for col in ("video", "decoder", "workers", "data clips/s", "step clips/s", "GPU",
                "workers needed"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("video", "decoder", "GPU") else "right")
    for g in gpu:
        table.add_row(
            g["video"],
            g["decoder"],
            str(g["workers"]),
            f"{g['data_clips_per_s']:.1f}",
            f"{g['step_clips_per_s']:.1f}",
            "waits for data" if g["gpu_waits"] else "busy",
            str(g["workers_needed"]),
        )
    console.print(table)
    return gpu


def _print_ratios(ratios: list[dict[str, Any]], *, workers: int) -> None:
    """The targets' ratios, each with its target and PASS/MISS (printed last)."""
    if not ratios:
        console.print("ratios: none (they are taken on the H.264 test videos)")
        return
    console.print(f"[bold]ratios against the targets ({workers} worker{'s' * (workers > 1)}):[/]")
    styles = {"PASS": "bold green", "MISS": "bold red", "n/a": "yellow"}
    for r in ratios:
        if r["value"] is None:
            value = f"n/a ({r['reason']})"
        else:
            value = f"{r['value']:.2f}" + ("x" if r["unit"] == "x" else f" {r['unit']}")
        console.print(
            f"  {r['label']}: {value}, target {r['target']} "
            f"[{styles[r['verdict']]}]{r['verdict']}[/]",
            highlight=False,
            soft_wrap=True,
        )


def _bench_dataset(
    dataset: str,
    *,
    root: Path | None,
    frames: int,
    sampling_rate: int,
    crop: int,
    batch: int,
    workers: str,
    batches: int,
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
