"""Prompt-layer commands: ``mpbench list variants`` and ``mpbench bench layer``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mpbench.cli._apps import bench_app, command, console, list_app, repeat_progress
from mpbench.config import Device

REFERENCE_DEPARTURES = [
    "departures from the authors' MPII recipe (studies/reference_mpii.toml, docs/layer.md):",
    "  lambda: reference 0.0 (VMPS.PENALTY_WEIGHT) = learnable; learnable_tav has 1",
    "  prompt lr: reference BASE_LR for m and n too = prompt_lr_mult 1.0 (our default)",
    "  prompt weight decay: reference 1e-4 on m and n (param_groups 'single'); ours 0 ('split')",
    "  schedule: reference steps at epochs [0, 11, 14] x [1, 0.1, 0.01] (epoch_steps); ours cosine",
    "  test views: reference 1 clip x 3 crops; ours test_clips 1 x test_crops 1",
]


def variants_table() -> Table:
    """A rich table of every registered variant: its settings and A(D=0), then its description."""
    from rich import box

    from mpbench.variants import list_variants

    columns = ("pn", "slope", "shift", "tav_weight", "granularity", "init", "A(D=0)")
    table = Table(
        title="prompt variants",
        box=box.SIMPLE_HEAD,
        caption_justify="left",
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("name", no_wrap=True, style="bold")
    for col in columns:
        table.add_column("lambda" if col == "tav_weight" else col, no_wrap=True)
    for spec in list_variants():
        cells = spec.settings_text()
        table.add_row(spec.name, *(cells[c] for c in columns))
    notes = [
        "slope: the sigmoid's a (eta or gamma for other pn); shift: b. A(D=0): attention of a "
        "static pixel, sigmoid(-a b), for fixed sigmoids; 'learnt' where it trains."
    ]
    notes += [f"{s.name}: {s.description}" for s in list_variants()]
    notes += REFERENCE_DEPARTURES
    table.caption = "\n".join(notes)
    return table


@command(list_app, "variants")
def list_variants_cmd() -> None:
    """Print the named prompt variants with their settings and static-pixel attention."""
    console.print(variants_table())


@command(bench_app, "layer")
def bench_layer_cmd(
    device: Annotated[Device, typer.Option(help="auto = cuda when present")] = "auto",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile ours")] = False,
    batch: Annotated[int, typer.Option(help="batch size B")] = 8,
    frames: Annotated[int, typer.Option(help="input frames T+1")] = 9,
    size: Annotated[int, typer.Option(help="height = width")] = 224,
    repeats: Annotated[int, typer.Option(help="timed repeats (median)")] = 10,
    warmup: Annotated[int, typer.Option(help="untimed repeats first")] = 2,
    tav_weight: Annotated[float, typer.Option(help="lambda of the TAV term")] = 1.0,
) -> None:
    """Forward+backward time of MotionPrompt vs the reference formulation; ratio last."""
    from mpbench.bench.layer import bench_layer

    with repeat_progress("timing", repeats) as on_repeat:
        result = bench_layer(
            device=device,
            compile=compile,
            batch=batch,
            frames=frames,
            size=size,
            repeats=repeats,
            warmup=warmup,
            tav_weight=tav_weight,
            on_repeat=on_repeat,
        )
    for line in result.lines():
        console.print(line, highlight=False)
