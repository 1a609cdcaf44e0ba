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
seeds = 2
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
    assert (out / "table.tex").read_text().count("\\toprule") == 1
    for name in ("ablation", "learning_curves", "attention_function", "attention_strip"):
        for ext in ("png", "pdf"):
            head = (out / f"{name}.{ext}").read_bytes()[:4]
            assert head == (b"\x89PNG" if ext == "png" else b"%PDF"), name
    assert "quickstart done" in res.output and "mlflow ui" in res.output
    _check_results_readme(out)
    assert (root / ".mpbench-cache" / "s37" / "frames.u8").is_file()  # short side 32 x 8/7
    again = runner.invoke(app, ["quickstart", "--study", str(study), "--results", "out"])
    assert again.exit_code == 0, again.output
    from mlflow.tracking import MlflowClient

    from mpbench import tracking as tk

    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("mpbench")
    runs = client.search_runs([exp.experiment_id], f"tags.`{tk.TAG_STUDY}` = 'qs_test'")
    assert len(runs) == 6  # 3 variants x 2 seeds, and the second call ran nothing again
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
    cell = f"| test | baseline | 2 | {100 * base['mean']:.2f} | {100 * base['std']:.2f} |"
    assert cell in text
    # the quickstart rewrote the folder with its own dataset (QUICKSTART_DATA)
    assert (
        "4 synthetic motion classes, 480 train / 96 val / 160 test / 160 test_shift clips" in text
    )
    _check_shift_and_controls(out, text)
    assert "2 seeds per variant" in text and "Study `" in text
    assert re.search(r"largest val top-1 range over the last 3 epochs of a run \d+\.\d\d", text)


def _check_shift_and_controls(out: Path, text: str) -> None:
    """The README's appearance gaps are appearance_gap.csv's; its certificate is the controls'."""
    import pandas as pd

    from mpbench.certify import minimal_detectable_effect

    gap = pd.read_csv(out / "appearance_gap.csv")
    assert list(gap["label"]) == ["baseline", "learnable_tav", "static"]
    for _, g in gap.iterrows():
        assert f"| {g['label']} | 2 | {100 * g['gap']:.2f} ± {100 * g['gap_std']:.2f} |" in text
    csv = pd.read_csv(out / "table.csv")
    shift = csv[(csv["split"] == "test_shift") & (csv["label"] == "learnable_tav")].iloc[0]
    assert f"learnable_tav - baseline is {100 * shift['delta']:+.2f} points" in text
    base = csv[(csv["split"] == "test") & (csv["label"] == "baseline")].iloc[0]
    mde = minimal_detectable_effect(float(base["std"]), 2)
    assert f"minimal detectable effect at 2 seeds: {100 * mde:.2f} points" in text
    assert "static inside" in text or "static ABOVE" in text
    assert "CERTIFIED: the controls" in text
