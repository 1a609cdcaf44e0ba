"""`mpbench quickstart`: synthetic data -> the quickstart grid -> table and figures, on a CPU.

Every step is the same code a real study uses: the data are H.264 files decoded by PyAV, the grid
runs in worker processes on the Optuna journal storage, every trial is an MLflow run, and the
table and figures are computed from MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpbench import tracking as T

# The synthetic dataset the quickstart study reads (its base config's data_root): 4 motion classes
# of the easy preset, 64 px, 16 frames. Calibrated so the tiny X3D is well above chance within the
# study's 480 training steps on 2 CPU cores.
QUICKSTART_DATA: dict[str, Any] = {
    "preset": "easy",
    "classes": 4,
    "train_clips": 480,
    "val_clips": 96,
    "video_frames": 16,
    "size": 64,
}


@dataclass
class QuickstartResult:
    """Where the quickstart left its outputs, and how long each stage took."""

    data_root: Path
    table: Path
    figures: list[Path]
    seconds: dict[str, float] = field(default_factory=dict)


def ensure_synth_data(
    root: Path, *, seed: int = 0, progress: Callable[[int, int], None] | None = None
) -> bool:
    """Write the quickstart's synthetic dataset to ``root`` unless it is there; True if written."""
    from mpbench.data.synth import preset_spec, write_synth_dataset

    if (root / "train.txt").is_file() and (root / "val.txt").is_file():
        return False
    knobs = {k: v for k, v in QUICKSTART_DATA.items() if k != "preset"}
    spec = preset_spec(QUICKSTART_DATA["preset"], **knobs)
    total = spec.train_clips + spec.val_clips
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    write_synth_dataset(root, spec=spec, seed=seed, preset=QUICKSTART_DATA["preset"], progress=step)
    return True


def run_quickstart(
    *,
    study_file: Path,
    workers: int | None = None,
    results_dir: Path = Path("results"),
    overrides: dict[str, Any] | None = None,
    on_stage: Callable[[str], None] = print,
    data_progress: Callable[[int, int], None] | None = None,
) -> QuickstartResult:
    """Generate the data if missing, run the study's grid, then write its report and figures."""
    from mpbench.report.build import make_figures, make_report
    from mpbench.study.runner import plan, run_study
    from mpbench.study.spec import expand_grid, load_study

    spec = load_study(study_file, overrides=overrides)
    if spec.grid is None:
        raise ValueError(f"{study_file}: the quickstart runs a [grid] study, this one has none")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    root = Path(spec.base.data_root or "data/quickstart-synth")
    on_stage(f"synthetic data in {root}")
    ensure_synth_data(root, progress=data_progress)
    seconds["data"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = plan(spec, workers=workers)
    on_stage(
        f"grid {spec.name}: {len(expand_grid(spec))} trials with {p.workers} workers "
        f"(storage {p.storage})"
    )
    run = run_study(spec, p)
    if run.interrupted:
        raise KeyboardInterrupt
    seconds["grid"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    experiment = p.experiment or T.DEFAULT_EXPERIMENT
    report = make_report(spec.name, experiment=experiment, results_dir=results_dir)
    figures = make_figures(spec.name, experiment=experiment, results_dir=results_dir, note=on_stage)
    seconds["report"] = time.perf_counter() - t0
    table = next(path for path in report.paths if path.suffix == ".md")
    return QuickstartResult(data_root=root, table=table, figures=figures, seconds=seconds)
