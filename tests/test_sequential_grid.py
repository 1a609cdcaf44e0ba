"""A sequential grid on real storages: decided cells stop early, the rest get the next look's
seeds, a SIGKILLed worker and a rerun leave every cell finished once, and the report carries the
verdicts.

The tiny grid decides on ``tav_loss`` (the TAV regulariser already multiplied by lambda): the
baseline and ``learnable`` (no TAV) log exactly 0.0 for every seed, so their paired differences
are all zero and ``learnable`` is ``equivalent`` at the first look; ``learnable_tav`` pays a TAV
loss > 0 that varies with the seed, so it is never equivalent at a margin of 1e-6 and runs on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd
import pytest
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.report.build import make_report
from mpbench.study import storage as S
from mpbench.study.plan import plan
from mpbench.study.runner import prepare, run_study
from mpbench.study.spec import read_study
from tests.test_study_run import TINY_BASE, assert_exactly_once, study_file, wait_for

SEQUENTIAL = """
[grid]
variant = ["baseline", "learnable", "learnable_tav"]
seeds = { min = 2, max = 4, step = 2 }
[resolve]
metric = "tav_loss"
margin = 1e-6
[execution]
heartbeat_interval = 1
grace_period = 20
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_uri: str) -> None:
    monkeypatch.chdir(tmp_path)


def _complete(study: optuna.Study) -> Counter[str]:
    """COMPLETE counted trials per variant."""
    return Counter(
        S.config_of(t)["variant"]
        for t in study.get_trials()
        if t.state.name == "COMPLETE" and S.is_counted(t)
    )


def _worker(name: str, storage: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "mpbench", "worker", name, "--storage", storage]
    cmd += ["--heartbeat-interval", "1", "--grace-period", "20"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_sequential_grid_stops_decided_cells_survives_sigkill_and_reports_verdicts(
    tmp_path: Path,
) -> None:
    assert "epochs" in TINY_BASE
    path = study_file(tmp_path, SEQUENTIAL, name="seq")
    spec = read_study(path)
    p = plan(spec, workers=1)
    study, _, added = prepare(spec, p)
    assert added == 6  # the first look: 2 seeds of each of the 3 points
    worker = _worker("seq", p.storage)
    # SIGKILL the worker in the middle of a cell of the second look (seed 2 or 3)
    victim = wait_for(
        lambda: next(
            (
                t
                for t in study.get_trials()
                if t.state.name == "RUNNING" and S.config_of(t)["seed"] >= 2
            ),
            None,
        ),
        timeout=1800,
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert study.get_trials()[victim.number].state.name == "RUNNING"  # left behind
    assert _complete(study) == {"baseline": 2, "learnable": 2, "learnable_tav": 2}
    result = run_study(spec, plan(spec, workers=1), progress=False)
    assert result.exit_code == 0, result
    # learnable stopped after 2 seeds; learnable_tav and its baseline went on to 4
    assert _complete(study) == {"baseline": 4, "learnable": 2, "learnable_tav": 4}
    assert_exactly_once(
        study, {t.user_attrs[S.ATTR_CELL] for t in study.get_trials() if S.is_counted(t)}
    )
    summary = result.summary
    assert summary.finished_twice == [] and summary.cells == {"complete": 10, "stopped": 2}
    states = {st.key[2]: st for st in summary.comparisons}
    assert (states["learnable"].verdict, states["learnable"].pairs) == ("equivalent", 2)
    assert states["learnable_tav"].verdict in ("worse", "undecided")
    assert states["learnable_tav"].pairs == 4
    again = run_study(spec, plan(spec, workers=1), progress=False)  # nothing left to decide
    assert again.enqueued == 0 and again.exit_codes == []

    shown = CliRunner().invoke(app, ["status", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "| learnable vs baseline (x3d_xs, synth) | equivalent | 2 |" in shown.output
    assert (
        "comparisons: 2 (looks after 2, 4 seeds, Lan-DeMets O'Brien-Fleming alpha spending, "
        "family-wise alpha 0.05 over 2 comparison(s))"
    ) in shown.output
    tav = states["learnable_tav"]
    assert f"| learnable_tav vs baseline (x3d_xs, synth) | {tav.verdict} | 4 |" in shown.output

    report = make_report("seq", metric="tav_loss", results_dir=tmp_path / "results")
    table = pd.read_csv(tmp_path / "results" / "seq" / "table.csv")
    rows = table[table["metric"] == "tav_loss"].set_index("label")
    assert rows.loc["learnable", "verdict"] == "equivalent"
    assert rows.loc["learnable", "seeds_used"] == 2 and rows.loc["learnable", "n"] == 2
    assert rows.loc["learnable_tav", "verdict"] == tav.verdict
    assert rows.loc["learnable_tav", "seeds_used"] == 4
    assert rows.loc["learnable", "seq_low"] == rows.loc["learnable", "seq_high"] == 0.0
    assert rows.loc["learnable_tav", "seq_high"] > 0  # variant - baseline: more TAV loss
    assert pd.isna(rows.loc["baseline", "verdict"])
    md = (tmp_path / "results" / "seq" / "table.md").read_text()
    assert "Sequential design: verdicts on train TAV loss (tav_loss)" in md
    assert "after 2, 4 seeds" in md
    assert "| learnable vs baseline (x3d_xs, synth) | equivalent | 2 | 0 [0, 0] |" in md
    tex = (tmp_path / "results" / "seq" / "table.tex").read_text()
    assert "% Sequential design" in tex and "equivalent" in tex
    assert report.decisions is not None and len(report.decisions.rows) == 2
