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
# of the easy preset written at 32 px (the study's crop, so decoding stays cheap), a flat
# background, no sensor noise and a large, fast actor. Calibration (studies/quickstart.toml has
# the numbers): with the easy preset's textured background and noise the tiny X3D stayed at chance
# for 480 steps of batch 8; with these knobs it converges within 240 steps of batch 32.
QUICKSTART_DATA: dict[str, Any] = {
    "preset": "easy",
    "classes": 4,
    "train_clips": 480,
    "val_clips": 96,
    "test_clips": 160,
    "video_frames": 16,
    "size": 32,
    "bg_texture": 0.0,
    "noise": 0.0,
    "actor_radius": (0.2, 0.28),
    "speed": (4.0, 5.0),
}


def quickstart_spec() -> Any:
    """The SynthSpec of the quickstart's dataset."""
    from mpbench.data.synth import preset_spec

    knobs = {k: v for k, v in QUICKSTART_DATA.items() if k != "preset"}
    return preset_spec(QUICKSTART_DATA["preset"], **knobs)


def _is_current(root: Path, spec: Any, seed: int) -> bool:
    """Whether ``root`` holds exactly the dataset that ``spec`` and ``seed`` write."""
    import json

    from mpbench.data.synth import SYNTH_VERSION

    meta_path = root / "metadata.json"
    if not all((root / f).is_file() for f in ("train.txt", "val.txt", "test.txt")):
        return False
    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text())
    expected = {"version": SYNTH_VERSION, "seed": seed, **spec.to_dict()}
    return all(meta.get(k) == v for k, v in expected.items())


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
    """Write the quickstart's synthetic dataset to ``root`` unless it is there; True if written.

    A folder written by another mpbench version or with other knobs is rewritten: its clips
    would silently differ from the ones the committed results came from.
    """
    import shutil

    from mpbench.data.synth import write_synth_dataset

    spec = quickstart_spec()
    if _is_current(root, spec, seed):
        return False
    if root.exists():
        for name in ("videos", "train.txt", "val.txt", "test.txt", "metadata.json"):
            path = root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    total = spec.train_clips + spec.val_clips + spec.test_clips
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
