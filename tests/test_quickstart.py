"""A reduced quickstart end to end: synthetic mp4 files, a 2 x 2 grid, table and figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mpbench.cli import app

REPO = Path(__file__).resolve().parents[1]

STUDY = """
name = "qs_test"
[base]
backbone = "x3d_xs"
size = "tiny"
dataset = "synth"
data_root = "{root}"
frames = 4
crop = 32
epochs = 2
max_steps = 4
batch_size = 4
device = "cpu"
dataset_options = {{cache = true}}
[grid]
variant = ["baseline", "learnable_tav", "static"]
seeds = {{ min = 2, max = 3, step = 1 }}
[resolve]
metric = "test_shift_top1"
margin = 0.05
[execution]
workers = 2
"""


@pytest.mark.slow
def test_reduced_quickstart_writes_table_and_figures(tmp_path, monkeypatch, mlflow_uri):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "synth"
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "data",
            "synth",
            str(root),
            "--classes",
            "3",
            "--train-clips",
            "24",
            "--val-clips",
            "12",
            "--frames",
            "8",
            "--size",
            "32",
        ],
    )
    assert made.exit_code == 0, made.output
    study = tmp_path / "qs.toml"
    study.write_text(STUDY.format(root=root))
    res = runner.invoke(app, ["quickstart", "--study", str(study), "--results", "out"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out" / "qs_test"
    table = (out / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| x3d_xs")]
    assert [r.split("|")[2].strip() for r in rows] == ["baseline", "learnable_tav", "static"]
    assert all("±" in r for r in rows)  # mean ± std over the 2 seeds
    assert (out / "table.tex").read_text().count("\\toprule") == 2  # the table, the verdicts
    for name in ("ablation", "learning_curves", "attention_function", "attention_strip"):
        for ext in ("png", "pdf"):
            head = (out / f"{name}.{ext}").read_bytes()[:4]
            assert head == (b"\x89PNG" if ext == "png" else b"%PDF"), name
    assert "quickstart done" in res.output and "mlflow ui" in res.output
    _check_results_readme(out)
    assert (root / ".mpbench-cache" / "s37" / "frames.u8").is_file()  # short side 32 x 8/7
    again = runner.invoke(app, ["quickstart", "--study", str(study), "--results", "out"])
    assert again.exit_code == 0, again.output
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from mpbench import tracking as tk

    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("mpbench")
    runs = client.search_runs([exp.experiment_id], f"tags.`{tk.TAG_STUDY}` = 'qs_test'")
    cells = {(r.data.tags[tk.TAG_VARIANT], r.data.tags[tk.TAG_SEED]) for r in runs}
    assert len(cells) == len(runs)  # one run per cell: the second call ran nothing again
    used = pd.read_csv(out / "table.csv").dropna(subset=["verdict"])
    # the sequential design's first look (2 seeds x 3 variants), then 3rd seeds where undecided
    want = {("baseline", "0"), ("baseline", "1")} | {
        (str(r["label"]), str(s)) for _, r in used.iterrows() for s in range(int(r["seeds_used"]))
    }
    if (used["seeds_used"] == 3).any():
        want.add(("baseline", "2"))
    assert cells == want
    assert res.output.count("writing synthetic clips") <= 1  # the data is prepared once


def test_quickstart_study_file_is_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["quickstart"])
    assert res.exit_code == 2
    assert "studies/quickstart.toml does not exist" in res.output


def _check_results_readme(out: Path) -> None:
    """The generated README states the test difference and intervals of table.csv."""
    import pandas as pd

    text = (out / "README.md").read_text()
    csv = pd.read_csv(out / "table.csv")
    row = csv[(csv["split"] == "test") & (csv["label"] == "learnable_tav")].iloc[0]
    assert f"{100 * row['delta']:+.2f} points" in text
    assert f"[{100 * row['delta_low']:+.2f}, {100 * row['delta_high']:+.2f}]" in text
    p = row["p_holm"]
    assert (f"Holm p {p:.3f}" if p == p else "no p value: the paired differences do not") in text
    base = csv[(csv["split"] == "test") & (csv["label"] == "baseline")].iloc[0]
    cell = f"| test | baseline | {base['n']} | {100 * base['mean']:.2f} | {100 * base['std']:.2f} |"
    assert cell in text
    for _, r in csv.dropna(subset=["verdict"]).iterrows():  # the sequential verdicts, in words
        said = f"{r['label']} vs baseline: {r['verdict']} after {int(r['seeds_used'])} seeds"
        assert said in text
        if r["seq_low"] == r["seq_low"]:
            assert f"[{100 * r['seq_low']:+.2f}, {100 * r['seq_high']:+.2f}]" in text
    assert "Sequential design: verdicts on" in text
    # the quickstart rewrote the folder with its own dataset (QUICKSTART_DATA)
    assert (
        "4 synthetic motion classes, 480 train / 96 val / 160 test / 160 test_shift clips" in text
    )
    _check_shift_and_controls(out, text)
    assert "2 to 3 seeds (sequential: a decision after 2, 3) per variant" in text
    assert "Study `" in text
    assert re.search(r"largest val top-1 range over the last 3 epochs of a run \d+\.\d\d", text)


def _check_shift_and_controls(out: Path, text: str) -> None:
    """The README's appearance gaps are appearance_gap.csv's; its certificate is the controls'."""
    import pandas as pd

    from mpbench.certify import minimal_detectable_effect

    gap = pd.read_csv(out / "appearance_gap.csv")
    assert list(gap["label"]) == ["baseline", "learnable_tav", "static"]
    for _, g in gap.iterrows():
        gap_cell = f"{100 * g['gap']:.2f} ± {100 * g['gap_std']:.2f}"
        assert f"| {g['label']} | {g['n']} | {gap_cell} |" in text
    csv = pd.read_csv(out / "table.csv")
    shift = csv[(csv["split"] == "test_shift") & (csv["label"] == "learnable_tav")].iloc[0]
    assert f"learnable_tav - baseline is {100 * shift['delta']:+.2f} points" in text
    base = csv[(csv["split"] == "test") & (csv["label"] == "baseline")].iloc[0]
    mde = minimal_detectable_effect(float(base["std"]), int(base["n"]))
    assert f"minimal detectable effect at {base['n']} seeds: {100 * mde:.2f} points" in text
    assert "static inside" in text or "static ABOVE" in text
    assert "CERTIFIED: the controls" in text
