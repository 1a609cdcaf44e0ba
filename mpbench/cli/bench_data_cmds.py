"""Data-loading benchmarks: ``bench decoders`` (the clip decoders side by side on test videos)
and ``bench loader`` (a dataset's DataLoader rate). They were one command, ``bench data``,
switched by ``--dataset``; each now has only its own options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from mpbench.cli._apps import bench_app, command, console
from mpbench.cli.data_cmds import _int_list, _names

DECODER_NAMES = "full,seek,pytorchvideo,torchcodec,decord,cache"


FolderOpt = Annotated[
    Path | None, typer.Option(help="Also compare the decoders on the videos in this folder.")
]
DurationsOpt = Annotated[
    str | None,
    typer.Option(
        help="Test videos' seconds, comma-separated (default 10,60,300; none with --folder)."
    ),
]
XvidOpt = Annotated[
    bool, typer.Option(help="Also a 320x240 XviD AVI as long as the shortest video.")
]
VideosDirOpt = Annotated[
    Path, typer.Option(help="Where the test videos are written once and reused.")
]
WorkersOpt = Annotated[
    str, typer.Option(help="Comma-separated worker counts: processes timed at once.")
]
FullLimitOpt = Annotated[
    float, typer.Option(help="Skip full where its estimated memory per worker is above.")
]
DeviceOpt = Annotated[
    Literal["cpu", "cuda"], typer.Option(help="cuda: also time a training step, compare rates.")
]


@command(bench_app, "decoders")
def bench_decoders_cmd(
    folder: FolderOpt = None,
    durations: DurationsOpt = None,
    height: Annotated[int, typer.Option(help="Test videos' height (16:9 H.264).", min=16)] = 720,
    xvid: XvidOpt = True,
    videos_dir: VideosDirOpt = Path("~/.cache/mpbench/bench-videos"),
    decoders: Annotated[str, typer.Option(help=f"Comma-separated: {DECODER_NAMES}.")] = (
        DECODER_NAMES
    ),
    frames: Annotated[int, typer.Option(help="T (the clips hold T+1 frames).", min=1)] = 8,
    sampling_rate: Annotated[int, typer.Option(help="Stride between sampled frames.", min=1)] = 4,
    size: Annotated[int, typer.Option(help="Short side the frames are decoded at.", min=8)] = 256,
    workers: WorkersOpt = "1",
    clips: Annotated[
        int, typer.Option(help="Timed clips per worker (after a warm-up).", min=1)
    ] = 20,
    full_clips: Annotated[int, typer.Option(help="Timed clips per worker of full.", min=1)] = 2,
    full_limit_gb: FullLimitOpt = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of the clip starts.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write all rows here.")] = None,
    device: DeviceOpt = "cpu",
    backbone: Annotated[str, typer.Option(help="--device cuda: the backbone stepped.")] = "x3d_s",
    batch: Annotated[int, typer.Option(help="--device cuda: clips per step.", min=1)] = 8,
) -> None:
    """Compare clip decoders side by side on test videos: clips/s and peak memory per worker,
    and the ratios of the decoding targets last."""
    from mpbench.bench import data as D
    from mpbench.bench.decoders import DECODERS

    request = D.DecoderRequest(
        durations=None if durations is None else _int_list(durations, option="--durations"),
        folder=folder,
        height=height,
        xvid=xvid,
        videos_dir=videos_dir,
        decoders=_names(decoders, option="--decoders", known=DECODERS),
        workers=_int_list(workers, option="--workers"),
        clip=D.ClipSettings(
            frames=frames,
            sampling_rate=sampling_rate,
            short_side=size,
            clips=clips,
            full_clips=full_clips,
            seed=seed,
        ),
        full_limit_gb=full_limit_gb,
        device=device,
        backbone=backbone,
        batch=batch,
        json_out=json_out,
    )
    with _stages() as (stage, advance):
        bench = D.bench_decoders(request, on_stage=stage, on_advance=advance)
    print_decoder_bench(bench)


def _stages() -> Any:
    """A rich progress bar as the (on_stage, on_advance) pair of the library call."""
    import contextlib

    from rich.progress import Progress

    @contextlib.contextmanager
    def bar() -> Any:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("starting", total=None)

            def stage(description: str, total: int | None) -> None:
                if total is None:
                    progress.update(task, description=description)
                else:
                    progress.reset(task, description=description, total=total)

            yield stage, lambda n: progress.advance(task, n)

    return bar()


def print_decoder_bench(bench: Any) -> None:
    """The decoder comparison: load averages, one table per video, the GPU rows, ratios last."""
    import os

    console.print(
        f"load average (1, 5, 15 min): {_load(bench.load_start)} on {os.cpu_count()} CPUs",
        highlight=False,
    )
    for probe in bench.probes:
        table, notes = _decoder_table(probe, bench.result, bench.request.clip)
        console.print(table)
        for note in notes:
            console.print(f"  {note}", highlight=False, soft_wrap=True)
    if bench.step is not None:
        _print_gpu(bench)
    console.print(f"load average at the end: {_load(bench.load_end)}", highlight=False)
    if bench.request.json_out is not None:
        console.print(f"rows written to {bench.request.json_out}", highlight=False)
    _print_ratios(bench.ratios, workers=bench.request.workers[0])


def _load(avg: tuple[float, float, float]) -> str:
    return ", ".join(f"{a:.2f}" for a in avg)


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


def _print_gpu(bench: Any) -> None:
    """The training step's rate on CUDA and the data rates beside it."""
    from rich.table import Table

    timing, req = bench.step, bench.request
    step_rate = req.batch / timing.prompt_s
    console.print(
        f"data rate vs training step: {req.backbone} with the prompt layer ({timing.size} size, "
        f"{timing.frames}+1 frames at {timing.crop}x{timing.crop}, batch {req.batch}, amp "
        f"{timing.amp}) on cuda takes {timing.prompt_s * 1e3:.1f} ms/step = {step_rate:.1f} "
        "clips/s; the GPU waits where the workers deliver fewer, for the data wait share of "
        "its loop that a trial with those workers logs (data_wait_share)",
        highlight=False,
        soft_wrap=True,
    )
    table = Table()
    for col in ("video", "decoder", "workers", "data clips/s", "step clips/s", "GPU",
                "data wait share", "workers needed"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("video", "decoder", "GPU") else "right")
    for g in bench.gpu:
        table.add_row(
            g["video"], g["decoder"], str(g["workers"]), f"{g['data_clips_per_s']:.1f}",
            f"{g['step_clips_per_s']:.1f}", "waits for data" if g["gpu_waits"] else "busy",
            f"{g['data_wait_share']:.2f}", str(g["workers_needed"]),
        )  # fmt: skip
    console.print(table)


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


@command(bench_app, "loader")
def bench_loader_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset name (mpbench list datasets).")],
    root: Annotated[Path | None, typer.Option(help="Its root (none: synth in memory).")] = None,
    frames: Annotated[int, typer.Option(help="T (the clips hold T+1 frames).", min=1)] = 8,
    sampling_rate: Annotated[int, typer.Option(help="Stride between sampled frames.", min=1)] = 1,
    crop: Annotated[int, typer.Option(help="Crop size.", min=8)] = 64,
    batch: Annotated[int, typer.Option(help="Clips per batch.", min=1)] = 8,
    workers: Annotated[
        str, typer.Option(help="Comma-separated DataLoader worker counts (0: main process).")
    ] = "0,1,2",
    batches: Annotated[int, typer.Option(help="Timed batches per worker count.", min=1)] = 10,
) -> None:
    """A dataset's DataLoader rate: train clips per second decoded and transformed, in total
    and per worker, for each worker count (the loader a trial with these options builds)."""
    from rich.table import Table

    from mpbench.bench.data import bench_data
    from mpbench.config import TrialConfig

    counts = _int_list(workers, option="--workers")
    config = TrialConfig(
        dataset=dataset, data_root=None if root is None else str(root), frames=frames,
        sampling_rate=sampling_rate, crop=crop, batch_size=batch,
    )  # fmt: skip
    rows = bench_data(
        config, workers=counts, batches=batches,
        on_result=lambda r: console.print(f"workers={r['workers']}: {r['clips_per_s']:.1f} clips/s",
                                          highlight=False),
    )  # fmt: skip
    table = Table(title=f"{dataset} train clips: {frames}+1 frames, {crop}px crop, batch {batch}")
    for col in ("workers", "clips", "seconds", "clips/s", "clips/s per worker", "skipped"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["workers"]), str(r["clips"]), f"{r['seconds']:.2f}", f"{r['clips_per_s']:.1f}",
            f"{r['clips_per_s_per_worker']:.1f}", str(r["skipped"]),
        )  # fmt: skip
    console.print(table)
