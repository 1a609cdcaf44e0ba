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

from mpbench import tracking as tk
from mpbench._conventions import BASELINE
from mpbench._secrets import mask_url

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

    from mpbench.data.synth import ENCODING, SPLIT_CODES, SYNTH_VERSION

    meta_path = root / "metadata.json"
    if not all((root / f"{s}.txt").is_file() for s in SPLIT_CODES):
        return False
    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text())
    expected = {"version": SYNTH_VERSION, "seed": seed, "encoding": ENCODING, **spec.to_dict()}
    return all(meta.get(k) == v for k, v in expected.items())


@dataclass
class QuickstartResult:
    """Where the quickstart left its outputs, how long each stage took, and what it found."""

    data_root: Path
    table: Path
    figures: list[Path]
    seconds: dict[str, float] = field(default_factory=dict)
    summary: Any = None  # the report's stats table (table.csv as a DataFrame)
    history: Any = None  # per-epoch val_top1 of every run (long form)
    gap: Any = None  # the report's appearance gap per variant (test - test_shift)
    decisions: Any = None  # a sequential grid's verdicts (report.decisions.Decisions)
    scores: dict[str, list[float]] = field(default_factory=dict)  # test top-1 per seed
    study: Any = None  # the StudySpec that ran
    study_file: Path | None = None
    workers: int = 0
    warnings: tuple[str, ...] = ()  # the report's decoding warnings (README section)


def ensure_synth_data(
    root: Path, *, seed: int = 0, progress: Callable[[int, int], None] | None = None
) -> bool:
    """Write the quickstart's synthetic dataset to ``root`` unless it is there; True if written.

    A folder written by another mpbench version or with other knobs is rewritten: its clips
    would silently differ from the ones the committed results came from.
    """
    import shutil

    from mpbench.data.synth import SPLIT_CODES, write_synth_dataset

    spec = quickstart_spec()
    if _is_current(root, spec, seed):
        return False
    if root.exists():
        for name in ("videos", "metadata.json", *(f"{s}.txt" for s in SPLIT_CODES)):
            path = root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    total = sum(spec.num_clips(split) for split in SPLIT_CODES)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    write_synth_dataset(root, spec=spec, seed=seed, preset=QUICKSTART_DATA["preset"], progress=step)
    return True


class QuickstartFailed(RuntimeError):
    """Some trials of the quickstart's grid failed (exit code 1)."""


def data_root(spec: Any) -> Path:
    """The study's data folder (relative paths in a study file start at its project folder)."""
    return spec.local_path(spec.base.data_root or "data/quickstart-synth")


def ensure_cache(spec: Any, *, progress: Callable[[int, int], None] | None = None) -> bool:
    """Build the decoded-clip cache of the study's data when its base config asks for one
    (dataset option ``cache``) and it is missing or stale; True if built."""
    from mpbench.data.catalog import cache_dataset, decode_short_side

    base = spec.base
    opts = dict(base.dataset_options)
    cache = opts.pop("cache", False)
    if cache is False or base.data_root is None:
        return False
    total, done = 0, 0

    def on_total(n: int) -> None:
        nonlocal total
        total = n

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    _, reason = cache_dataset(
        base.dataset,
        root=spec.local_path(base.data_root),
        short_side=decode_short_side(opts.pop("short_side", None), base.crop),
        cache_dir=None if cache is True else cache,
        options=opts,
        progress=step,
        on_total=on_total,
        on_build=lambda msg: None,
    )
    return reason is not None


Bar = Callable[[str], Callable[[int, int], None]]  # a stage's text -> its (done, total) callback


def prepare_data(spec: Any, *, bar: Bar | None = None) -> Path:
    """Write the study's synthetic data, then its decoded-clip cache, where missing or stale;
    ``bar`` opens a progress callback per stage. Returns the data folder."""
    root = data_root(spec)
    ensure_synth_data(
        root, progress=None if bar is None else bar(f"writing synthetic clips to {root}")
    )
    ensure_cache(
        spec, progress=None if bar is None else bar("decoding them once into the clip cache")
    )
    return root


def run_quickstart(
    *,
    study_file: Path,
    workers: int | None = None,
    results_dir: Path = Path("results"),
    overrides: dict[str, Any] | None = None,
    on_stage: Callable[[str], None] = print,
    prepare: Callable[[Any], Path] = prepare_data,
) -> QuickstartResult:
    """Prepare the data once (``prepare(spec)``: :func:`prepare_data` by default), run the
    study's grid, then write its report and figures."""
    from mpbench.report.build import make_figures, make_report
    from mpbench.study.plan import plan
    from mpbench.study.runner import run_study
    from mpbench.study.spec import expand_grid, read_study

    spec = read_study(study_file, overrides=overrides)
    if spec.grid is None:
        raise ValueError(f"{study_file}: the quickstart runs a [grid] study, this one has none")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    on_stage(f"synthetic data in {data_root(spec)}")
    root = prepare(spec)
    seconds["data"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = plan(spec, workers=workers)
    on_stage(
        f"grid {spec.name}: {len(expand_grid(spec))} trials with {p.workers} workers "
        f"(storage {mask_url(p.storage)})"
    )
    run = run_study(spec, p)
    if run.interrupted:
        raise KeyboardInterrupt
    if run.outage is not None:
        raise QuickstartFailed(f"the quickstart's grid was stopped by an outage: {run.outage}")
    if run.exit_code != 0:
        raise QuickstartFailed(
            f"{len(run.summary.failed)} quickstart trial(s) failed, so there is no answer to "
            "report: "
            f"`mpbench status {study_file}` lists them with their errors; rerun with "
            f"`mpbench grid {study_file} --retry-failed`"
        )
    seconds["grid"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    experiment = p.experiment or tk.DEFAULT_EXPERIMENT
    report = make_report(spec.name, experiment=experiment, results_dir=results_dir)
    figures = make_figures(spec.name, experiment=experiment, results_dir=results_dir, note=on_stage)
    history = _val_history(spec.name, experiment=experiment, results_dir=results_dir)
    scores = _test_scores(spec.name, experiment=experiment, results_dir=results_dir)
    seconds["report"] = time.perf_counter() - t0
    table = next(path for path in report.paths if path.suffix == ".md")
    return QuickstartResult(
        data_root=root,
        table=table,
        figures=figures,
        seconds=seconds,
        summary=report.summary,
        history=history,
        gap=report.gap,
        decisions=report.decisions,
        scores=scores,
        study=spec,
        study_file=study_file,
        workers=p.workers,
        warnings=report.warnings,
    )


def _val_history(study: str, *, experiment: str, results_dir: Path) -> Any:
    """val_top1 per epoch of every run of ``study`` (the report's cached runs and history)."""
    from mpbench.report.load import default_cache_dir, load_history, load_runs

    cache = default_cache_dir(study, results_dir=results_dir)
    runs = load_runs(study, experiment=experiment, cache_dir=cache)
    return load_history(runs, metrics=[tk.M_VAL_TOP1], cache_dir=cache)


def _test_scores(study: str, *, experiment: str, results_dir: Path) -> dict[str, list[float]]:
    """Test top-1 per seed of each variant (the runs the table averages)."""
    from mpbench.report.load import default_cache_dir, latest_runs, load_runs

    cache = default_cache_dir(study, results_dir=results_dir)
    runs = load_runs(study, experiment=experiment, cache_dir=cache)
    column = f"metric.{tk.M_TEST_TOP1}"
    ok = latest_runs(runs, column=column, keys=["variant"]).sort_values(["variant", "seed"])
    return {str(v): [float(x) for x in g[column]] for v, g in ok.groupby("variant", sort=False)}


def certificate(result: QuickstartResult) -> Any:
    """The controls' certificate of the quickstart's own cells (static vs baseline, its MDE)."""
    import json

    from mpbench.certify import Certificate

    data = json.loads((result.data_root / "metadata.json").read_text(encoding="utf-8"))
    seeds = len(result.scores.get(BASELINE, [])) or 2
    return Certificate(dict(result.scores), data["classes"], data["test_clips"], seeds=seeds)


def shift_lines(result: QuickstartResult, variant: str) -> list[str]:
    """The test_shift comparison and the appearance gap per variant, as README lines."""
    summary, gap = result.summary, result.gap
    rows = summary[(summary["split"] == "test_shift") & (summary["label"] == variant)]
    if rows.empty or gap is None or gap.empty:
        return ["No run logged the test_shift split."]
    r = rows.iloc[0]
    lines = [
        f"On test_shift (same motions, an appearance never seen in training) {variant} - "
        f"baseline is {100 * r['delta']:+.2f} points (95 % paired t interval "
        f"[{100 * r['delta_low']:+.2f}, {100 * r['delta_high']:+.2f}], Holm p {r['p_holm']:.3f}).",
        "",
        "| variant | seeds | appearance gap (test - test_shift) points | 95 % t interval |",
        "|---|---|---|---|",
    ]
    for _, g in gap.iterrows():
        lines.append(
            f"| {g['label']} | {int(g['n'])} | {100 * g['gap']:.2f} ± {100 * g['gap_std']:.2f} | "
            f"[{100 * g['gap_low']:.2f}, {100 * g['gap_high']:.2f}] |"
        )
    return lines


# What the quickstart has to show to answer its question (issue 11): every cell's seed std at
# most STD_TARGET points, and the learnable - baseline test difference either significant after
# Holm or known to +-HALF_WIDTH_TARGET points; training flat (val top-1 range over the last
# FLAT_EPOCHS epochs of every run at most FLAT_TARGET points).
STD_TARGET = 5.0
HALF_WIDTH_TARGET = 5.0
FLAT_EPOCHS = 3
FLAT_TARGET = 3.0


@dataclass(frozen=True)
class Decided:
    """One comparison of a sequential grid as the report decided it (points of top-1)."""

    variant: str
    verdict: str
    seeds: int
    delta: float
    low: float  # the repeated (sequentially adjusted) 95 % interval of the difference
    high: float

    def sentence(self, most: int) -> str:
        """``variant`` vs baseline: the verdict, the seeds it took and the interval."""
        most_note = " (the most the design runs)" if self.seeds >= most else ""
        seeds = f"{self.seeds} seeds{most_note}"
        if self.delta != self.delta:
            return f"{self.variant} vs baseline: {self.verdict} after {seeds}"
        return (
            f"{self.variant} vs baseline: {self.verdict} after {seeds}, difference "
            f"{self.delta:+.2f} points (repeated 95 % interval [{self.low:+.2f}, {self.high:+.2f}])"
        )


def decided_rows(decisions: Any) -> tuple[Decided, ...]:
    """The report's sequential verdicts (:class:`mpbench.report.decisions.Decisions`) in points."""
    if decisions is None:
        return ()
    return tuple(
        Decided(
            str(r["label"]),
            str(r["verdict"]),
            int(r["seeds_used"]),
            100 * float(r["delta_seq"]),
            100 * float(r["seq_low"]),
            100 * float(r["seq_high"]),
        )
        for _, r in decisions.rows.iterrows()
    )


@dataclass(frozen=True)
class Answer:
    """The quickstart's headline comparison, in percentage points of top-1.

    ``cells`` rows: (split, variant, seeds, mean, std, boot_low, boot_high). ``delta*`` and the
    p values compare ``variant`` with the baseline on the test split, paired over seeds.
    """

    variant: str
    cells: list[tuple[str, str, int, float, float, float, float]]
    delta: float
    delta_low: float
    delta_high: float
    p_t: float
    p_holm: float
    seeds_needed: float
    flat_range: float  # largest val top-1 range over the last FLAT_EPOCHS epochs of any run
    decided: tuple[Decided, ...] = ()  # a sequential grid's verdicts, the headline variant first
    design: str = ""  # the sequential design in words (the report's sentence)
    most_seeds: int = 0  # the design's largest seed count

    @property
    def max_std(self) -> float:
        """The largest seed std of any cell."""
        return max(c[4] for c in self.cells)

    @property
    def half_width(self) -> float:
        """Half the width of the difference's 95 % interval."""
        return (self.delta_high - self.delta_low) / 2

    @property
    def significant(self) -> bool:
        """Holm-adjusted paired t-test p < 0.05."""
        return self.p_holm < 0.05

    @property
    def resolved(self) -> bool:
        """Significant, or the difference known to within +-HALF_WIDTH_TARGET points."""
        return self.significant or self.half_width <= HALF_WIDTH_TARGET

    def verdict(self) -> str:
        """One paragraph that states the answer as the numbers give it."""
        p = (
            f"paired t-test p {self.p_t:.3f}, Holm p {self.p_holm:.3f}"
            if self.p_t == self.p_t
            else "no p value: the paired differences do not vary"
        )
        d = (
            f"{self.delta:+.2f} points (95 % paired t interval [{self.delta_low:+.2f}, "
            f"{self.delta_high:+.2f}], {p})"
        )
        if self.significant:
            head = f"{self.variant} and baseline differ on the test split: {d}."
        elif self.resolved:
            head = (
                f"no significant difference between {self.variant} and baseline on the test "
                f"split: {d}; the interval rules out differences larger than "
                f"{max(abs(self.delta_low), abs(self.delta_high)):.2f} points."
            )
        else:
            head = (
                f"not resolved: the test difference {self.variant} - baseline is {d}; the "
                f"interval is wider than +-{HALF_WIDTH_TARGET:g} points, and "
                f"{self.seeds_needed:.0f} seeds would be needed to detect a difference of that "
                "size."
            )
        checks = [
            f"largest seed std of a cell {self.max_std:.2f} points "
            f"({'within' if self.max_std <= STD_TARGET else 'above'} the "
            f"{STD_TARGET:g}-point target)",
            f"largest val top-1 range over the last {FLAT_EPOCHS} epochs of a run "
            f"{self.flat_range:.2f} points "
            f"({'flat' if self.flat_range <= FLAT_TARGET else 'still moving'}: "
            f"target {FLAT_TARGET:g})",
        ]
        text = f"{head[0].upper()}{head[1:]} Checks: {'; '.join(checks)}."
        if not self.decided:
            return text
        rows = "; ".join(d.sentence(self.most_seeds) for d in self.decided)
        return f"Sequential verdicts: {rows}. {self.design} Fixed-seed analysis: {text}"


def quickstart_answer(
    summary: Any, history: Any, *, variant: str = "learnable", decisions: Any = None
) -> Answer:
    """The :class:`Answer` from the report's stats table, the runs' val history and, for a
    sequential grid, the report's decisions (the headline ``variant`` first)."""
    import numpy as np

    cells = [
        (
            str(r["split"]),
            str(r["label"]),
            int(r["n"]),
            100 * float(r["mean"]),
            100 * float(r["std"]),
            100 * float(r["boot_low"]),
            100 * float(r["boot_high"]),
        )
        for _, r in summary.iterrows()
        if r["split"] in ("val", "test", "test_shift")
    ]
    rows = summary[(summary["split"] == "test") & (summary["label"] == variant)]
    if rows.empty:
        raise ValueError(f"the quickstart's report has no test row for variant {variant!r}")
    row = rows.iloc[0]
    ranges = [
        100 * float(np.ptp(run.sort_values("step")["value"].to_numpy()[-FLAT_EPOCHS:]))
        for _, run in history[history["metric"] == tk.M_VAL_TOP1].groupby("run_id")
    ]
    return Answer(
        variant=variant,
        cells=cells,
        delta=100 * float(row["delta"]),
        delta_low=100 * float(row["delta_low"]),
        delta_high=100 * float(row["delta_high"]),
        p_t=float(row["p_t"]),
        p_holm=float(row["p_holm"]),
        seeds_needed=float(row["seeds_needed"]),
        flat_range=max(ranges) if ranges else float("nan"),
        decided=tuple(sorted(decided_rows(decisions), key=lambda d: d.variant != variant)),
        design="" if decisions is None else decisions.design,
        most_seeds=max(decisions.looks) if decisions is not None else 0,
    )


def machine_line() -> str:
    """CPU cores, memory, accelerator and torch version of this machine, in words."""
    import os
    import platform

    import torch

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{os.cpu_count()} CPU cores ({platform.machine()}), {mem:.0f} GB memory, {gpu}; "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def seed_words(spec: Any) -> str:
    """How many seeds the study runs, in words: ``4 seeds``, or ``3 to 6 seeds (sequential:
    a decision after 3, 4, 5, 6)`` for a sequential grid."""
    schedule = spec.schedule
    if schedule is None:
        return f"{len(spec.grid.seeds or [spec.base.seed])} seeds"
    looks = ", ".join(map(str, schedule.looks))
    return f"{schedule.min} to {schedule.max} seeds (sequential: a decision after {looks})"


def results_readme(result: QuickstartResult, *, wall: float, answer: Answer) -> str:
    """results/<study>/README.md: how the results were made and what they say."""
    import datetime
    import json
    import os

    spec = result.study
    base = spec.base
    data = json.loads((result.data_root / "metadata.json").read_text(encoding="utf-8"))
    seeds = seed_words(spec)
    steps = (data["train_clips"] // base.batch_size) * base.epochs
    if base.max_steps is not None:
        steps = min(steps, base.max_steps)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    lines = [
        f"# {spec.name.capitalize()} results",
        "",
        "Written by `mpbench quickstart` (the README's first command): every number below comes "
        "from this run's MLflow runs through the same report code as `mpbench report`.",
        "",
        f"- Made on {datetime.date.today().isoformat()} on {machine_line()}; "
        f"{result.workers} worker processes.",
        f"- Wall time {wall:.0f} s ({stages}); load average over the last 15 minutes "
        f"{os.getloadavg()[2]:.1f} at the end (other work on the machine slows the run).",
        f"- Study `{result.study_file}`" + (f": {spec.description}." if spec.description else "."),
        f"- Data (`{_shown(result.data_root)}`): {data['classes']} synthetic motion classes, "
        f"{data['train_clips']} train / {data['val_clips']} val / {data['test_clips']} test "
        f"/ {data['test_clips']} test_shift clips of {data['video_frames']} frames at "
        f"{data['size']} px (H.264 files); chance "
        f"{100 / data['classes']:.0f} %.",
        f"- Training: {base.backbone} ({base.size}), {base.frames}+1 frames at {base.crop} px, "
        f"{steps} steps of batch {base.batch_size} (lr {base.lr:g}, {base.epochs} epochs), "
        f"{seeds} per variant.",
        "",
        "## The answer",
        "",
        answer.verdict(),
        "",
        "| split | variant | seeds | top-1 % mean | std | 95 % bootstrap CI |",
        "|---|---|---|---|---|---|",
        *(
            f"| {sp} | {v} | {n} | {m:.2f} | {sd:.2f} | [{lo:.2f}, {hi:.2f}] |"
            for sp, v, n, m, sd, lo, hi in answer.cells
        ),
        "",
        "## The appearance shift",
        "",
        *shift_lines(result, answer.variant),
        "",
        "## Controls: what this benchmark can detect",
        "",
        "`static` sees one frame repeated (motion destroyed): on a motion-only benchmark it must "
        "fall to chance. The minimal detectable effect is computed from the baseline's seed "
        "spread at this seed count (mpbench/certify.py; `mpbench data certify --study "
        f"{result.study_file}` runs the controls, `shuffled` included, on their own).",
        "",
        *(f"- {line}" for line in certificate(result).lines()),
        "",
        "## Files",
        "",
        "- `table.md`, `table.tex`, `table.csv` (`mpbench report`): val and test top-1, mean ± std "
        "over seeds; `table.csv` holds the full statistics per split (t and bootstrap intervals, "
        "paired differences with their interval, paired t and Wilcoxon p, Holm, seeds needed, "
        "costs).",
        "- `aggregate.md`, `aggregate.csv`: interquartile mean and probability of improvement with "
        "stratified bootstrap intervals.",
        "- `appearance_gap.md`, `appearance_gap.csv`: test minus test_shift per variant.",
        "- Figures (`mpbench figures`, PNG and PDF): "
        + ", ".join(sorted({f"`{p.stem}`" for p in result.figures})),
        "",
    ]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it lies inside it."""
    import os

    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else Path(rel).as_posix()


def write_results_readme(result: QuickstartResult, *, wall: float) -> tuple[Path, Answer]:
    """Write results/<study>/README.md next to the table; returns its path and the answer."""
    axis = result.study.grid.axes.get("variant", [])
    variants = [v for v in axis if isinstance(v, str) and v != BASELINE] or ["learnable"]
    answer = quickstart_answer(
        result.summary, result.history, variant=variants[0], decisions=result.decisions
    )
    path = result.table.parent / "README.md"
    from mpbench.report.decoding import readme_section

    text = readme_section(results_readme(result, wall=wall, answer=answer), list(result.warnings))
    path.write_text(text, encoding="utf-8")
    return path, answer
