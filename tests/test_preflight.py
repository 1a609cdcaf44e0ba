"""The pre-flight and the path rule: a bad study stops with exit code 2 before anything is
enqueued or started (also under --dry-run), naming the file, the key and the value; relative paths
of a study file are relative to its project folder, whatever the current folder.

No trial is trained here: the pre-flight builds tiny models and in-memory datasets only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.study.plan import plan
from mpbench.study.preflight import PreflightError, preflight, unwritable
from mpbench.study.runner import run_study
from mpbench.study.spec import StudyFileError, check_study_name, project_folder, read_study

STUDY = """
name = "{name}"
[base]
backbone = "x3d_xs"
size = "tiny"
dataset = "synth"
dataset_options = {{ classes = 3, train_clips = 8, val_clips = 4, video_frames = 5, size = 32 }}
frames = 4
crop = 32
batch_size = 4
epochs = 1
device = "cpu"
[grid]
variant = ["baseline", "learnable"]
seeds = 2
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_uri: str) -> None:
    monkeypatch.chdir(tmp_path)


def study(tmp_path: Path, *, name: str = "pf", extra: str = "", folder: str = "") -> Path:
    """A study file of 4 tiny cells (2 variants x 2 seeds) in ``tmp_path/folder``."""
    path = tmp_path / folder / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STUDY.format(name=name) + extra)
    return path


def grid(*args: str) -> object:
    return CliRunner().invoke(app, ["grid", *map(str, args)])


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
def test_crop_too_small_for_the_backbone_exits_2_and_starts_nothing(
    tmp_path: Path, dry: bool
) -> None:
    res = grid(study(tmp_path), "--set", "crop=16", *(["--dry-run"] if dry else []))
    assert res.exit_code == 2, res.output
    assert "pf.toml: [--set crop] x3d_xs: crop=16 is too small; it must be >= 32" in res.output
    assert "(4 cells)" in res.output and "nothing was enqueued or started" in res.output
    assert not (tmp_path / "runs").exists()


def test_crop_in_a_grid_axis_is_blamed_on_the_axis(tmp_path: Path) -> None:
    res = grid(study(tmp_path, extra="crop = [32, 16]\n"))
    assert res.exit_code == 2
    assert "[grid -> crop] x3d_xs: crop=16 is too small" in res.output
    assert "(4 cells)" in res.output  # only the crop=16 half of the 8 cells


def test_too_few_clips_for_a_batch(tmp_path: Path) -> None:
    res = grid(study(tmp_path), "--set", "batch_size=16", "--dry-run")
    assert res.exit_code == 2
    assert "[--set batch_size, base -> dataset_options]" in res.output
    assert "the training set has 8 clips, fewer than one batch of 16" in res.output


def test_missing_data_root_is_relative_to_the_project_folder(tmp_path: Path) -> None:
    path = study(tmp_path / "proj", folder="studies")
    text = path.read_text().replace(
        "dataset_options = { classes = 3, train_clips = 8, "
        "val_clips = 4, video_frames = 5, size = 32 }",
        'data_root = "data/missing"',
    )
    path.write_text(text)
    res = grid(path, "--dry-run")
    assert res.exit_code == 2
    missing = tmp_path / "proj" / "data" / "missing"  # not the current folder's data/
    assert f"[base -> data_root] file or folder not found: {missing}" in res.output
    assert "Expected layout" in res.output


def test_gpus_that_do_not_exist_or_repeat(tmp_path: Path) -> None:
    path = study(tmp_path, extra="[execution]\ngpus = [0, 0]\n")
    res = grid(path, "--dry-run")
    assert res.exit_code == 2
    assert "[execution -> gpus] GPU [0] listed more than once (got 0,0)" in res.output
    res = grid(path, "--gpus", "7", "--set", "device=auto")
    assert res.exit_code == 2
    assert "[--gpus] GPU [7] not found (got 7)" in res.output
    res = grid(path, "--gpus", "7,7,7")
    assert "[--gpus] GPU [7] listed more than once (got 7,7,7)" in res.output
    assert "[base -> device] device 'cpu' in every cell, but GPUs 7,7,7" in res.output
    assert not (tmp_path / "runs").exists()


def test_cuda_device_without_a_gpu(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    res = grid(study(tmp_path), "--set", "device=cuda", "--dry-run")
    assert res.exit_code == 2
    assert "[--set device] device 'cuda' needs a CUDA GPU and none will be used" in res.output


def test_run_folder_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    res = grid(study(tmp_path), "--run-folder", "afile/runs")
    assert res.exit_code == 2
    reason = f"cannot write {tmp_path}/afile/runs/pf: {tmp_path}/afile is not a folder"
    assert f"[--run-folder] {reason}" in res.output
    assert unwritable(tmp_path / "new" / "deeper") is None and not (tmp_path / "new").exists()


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    res = grid(study(tmp_path), "--set", "crop=16", "--gpus", "3,3", "--set", "batch_size=64")
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if "pf.toml: [" in line]
    assert len(lines) >= 4  # gpus twice listed, gpus missing, cpu-only, batch, crop
    assert "problem(s) found; nothing was enqueued or started" in res.output


@pytest.mark.parametrize("name", ["..", ".hidden", "", "a/b", "a b"])
def test_unsafe_study_names_are_refused(tmp_path: Path, name: str) -> None:
    path = study(tmp_path, name="x")
    path.write_text(path.read_text().replace('name = "x"', f"name = {name!r}"))
    with pytest.raises(StudyFileError, match=r"x.toml: \[name\] a study name must be a safe file"):
        read_study(path)
    with pytest.raises(ValueError, match=r"not starting with '\.'"):
        check_study_name(name)
    res = CliRunner().invoke(app, ["report", name])
    assert res.exit_code == 2


def test_report_refuses_a_name_that_leaves_results(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["report", ".."])
    assert res.exit_code == 2 and "a study name must be a safe file name" in res.output
    assert not (tmp_path / "table.md").exists()


def test_a_good_study_passes_and_run_study_checks_first(tmp_path: Path) -> None:
    spec = read_study(study(tmp_path))
    p = plan(spec, workers=1)
    result = preflight(spec, p)
    assert (result.cells, result.datasets, result.models) == (4, 1, 2)
    assert "pre-flight ok: 4 cell(s), 1 dataset(s), 2 model(s)" in result.describe()
    bad = read_study(study(tmp_path), overrides={"crop": 16})
    with pytest.raises(PreflightError, match=r"\[--set crop\]") as err:
        run_study(bad, plan(bad, workers=1), progress=False)
    assert err.value.problems[0].cells == 4
    assert not (tmp_path / "runs").exists()  # nothing enqueued: no journal either


def test_search_checks_each_choice_and_bound(tmp_path: Path) -> None:
    body = (
        STUDY.format(name="s").split("[grid]")[0]
        + """
[search]
n_trials = 2
[search.space.crop]
type = "int"
low = 16
high = 32
[search.space.variant]
type = "categorical"
choices = ["baseline", "learnable"]
[objective]
metric = "val_top1"
"""
    )
    path = tmp_path / "s.toml"
    path.write_text(body)
    res = CliRunner().invoke(app, ["search", str(path), "--dry-run", "--probe-steps", "0"])
    assert res.exit_code == 2
    assert "[search -> space -> crop] x3d_xs: crop=16 is too small" in res.output


def test_project_folder_rule(tmp_path: Path) -> None:
    assert project_folder(tmp_path / "studies" / "a.toml") == tmp_path
    assert project_folder(tmp_path / "mine" / "a.toml") == tmp_path / "mine"
    repo = Path(__file__).parents[1]
    spec = read_study(repo / "studies" / "quickstart.toml")
    assert spec.folder == repo and spec.run_folder() == repo / "runs" / "quickstart"
    p = plan(spec)
    assert p.storage == str(repo / "runs" / "quickstart" / "optuna.journal")
    assert p.project_folder == str(repo)
    p = plan(spec, run_folder="elsewhere", storage="j/o.journal")  # options: the current folder
    assert p.run_folder == str(tmp_path / "elsewhere")
    assert p.storage == str(tmp_path / "j" / "o.journal")
