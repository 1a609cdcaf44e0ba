"""Backbone commands: ``mpbench list backbones`` and ``mpbench bench step``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mpbench.cli._apps import bench_app, command, console, list_app, repeat_progress
from mpbench.config import Amp, Device, Size

if TYPE_CHECKING:
    from rich.table import Table

    from mpbench.bench.step import StepTiming
    from mpbench.models.summary import BackboneSummary


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def backbones_table(summaries: list[BackboneSummary]) -> Table:
    """A rich table: name, layout, parameters, GFLOPs and GMACs at the input, the sizes."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, caption_justify="left", title="backbones", pad_edge=False)
    for col in ("name", "layout", "params M", "TxS", "GFLOPs", "GMACs", "tiny", "full"):
        table.add_column(
            col, justify="left" if col in ("name", "layout") else "right", no_wrap=True
        )
    notes = []
    for s in summaries:
        params = None if s.params is None else s.params / 1e6
        table.add_row(
            s.info.name, s.info.layout, _num(params, ".2f"), f"{s.frames}x{s.crop}",
            _num(s.gflops, ".2f"), _num(s.gmacs, ".2f"),
            *(f"{t}x{c}" for t, c in s.info.defaults.values()),
        )  # fmt: skip
        if s.info.options:
            notes.append(
                f"{s.info.name} options (build_model keywords): {', '.join(s.info.options)}"
            )
        if s.error:
            notes.append(s.error)
    table.caption = "\n".join(
        [
            "TxS: frames x crop. GFLOPs: one clip's forward pass of the backbone (torch "
            "FlopCounterMode), 2 FLOPs per multiply-accumulate; pytorchvideo's model zoo quotes "
            "MACs (compare with GMACs). tiny/full: the standard input of each size.",
            *notes,
        ]
    )
    return table


@command(list_app, "backbones")
def list_backbones_cmd(
    size: Annotated[Size, typer.Option(help="which size to count")] = "full",
    frames: Annotated[
        int | None, typer.Option(min=1, help="T frames into the backbone (default: the size's)")
    ] = None,
    crop: Annotated[
        int | None, typer.Option(min=1, help="crop (height = width) (default: the size's)")
    ] = None,
) -> None:
    """Print every registered backbone with its parameters and GFLOPs at one input."""
    from rich.progress import Progress

    from mpbench.models import list_backbones
    from mpbench.models.summary import summarize_backbone

    infos = list_backbones()
    summaries = []
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        for info in progress.track(infos, description="counting"):
            summaries.append(summarize_backbone(info.name, size=size, frames=frames, crop=crop))
    console.print(backbones_table(summaries))


def step_lines(t: StepTiming) -> list[str]:
    """The report of ``bench step``: the setting, both medians, and the overhead last."""
    return [
        f"{t.backbone} ({t.size}) on {t.device}: batch {t.batch} x 3 x {t.frames + 1} x "
        f"{t.crop} x {t.crop} in, T={t.frames} frames into the backbone, amp={t.amp}, "
        f"median of {t.repeats} training steps (SGD, cross-entropy + reg_loss)",
        f"with prompt (learnable_tav): {t.prompt_s * 1e3:.2f} ms/step "
        f"(fastest {t.prompt_min_s * 1e3:.2f})",
        f"without (baseline):          {t.baseline_s * 1e3:.2f} ms/step "
        f"(fastest {t.baseline_min_s * 1e3:.2f})",
        f"overhead {t.overhead:.1%}",
    ]


@command(bench_app, "step")
def bench_step_cmd(
    backbone: Annotated[str, typer.Option(help="registered backbone name")] = "x3d_s",
    device: Annotated[Device, typer.Option(help="auto = cuda when present")] = "auto",
    size: Annotated[
        Size | None, typer.Option(help="full on cuda, tiny on cpu when not given")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="clips per step")] = 8,
    repeats: Annotated[int, typer.Option(min=1, help="timed steps per model (median)")] = 10,
    warmup: Annotated[int, typer.Option(min=0, help="untimed steps first")] = 2,
    amp: Annotated[Amp, typer.Option(help="autocast dtype")] = "none",
) -> None:
    """Training-step time with the prompt layer vs without it (same T frames); overhead last."""
    from mpbench.bench.step import time_training_step

    with repeat_progress(f"timing {backbone}", repeats) as on_repeat:
        timing = time_training_step(
            backbone=backbone,
            device=device,
            size=size,
            batch=batch,
            repeats=repeats,
            warmup=warmup,
            amp=amp,
            on_repeat=on_repeat,
        )
    for line in step_lines(timing):
        console.print(line, highlight=False)
