"""A dataset is one file: the toy dataset shown in docs/datasets.md ("Adding a dataset: one
file"), copied from that page into a folder named by MPBENCH_DATASET_PATH, is found by the
registry, writes its fake layout of real videos, and a trial trains on it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpbench.data import DATASETS, build_data, list_datasets
from mpbench.data.registry import PATH_ENV, load_dataset_modules

DOCS = Path(__file__).resolve().parents[1] / "docs" / "datasets.md"
MODULE = "mpbench_datasets.toy"


def toy_file() -> str:
    """The Python block of the docs' "Adding a dataset: one file" section."""
    section = DOCS.read_text(encoding="utf-8").split("## Adding a dataset: one file", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.fixture
def toy_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder holding the docs' toy dataset file, named by MPBENCH_DATASET_PATH; the toy is
    unregistered afterwards (the registry-wide tests see only the built-in datasets)."""
    folder = tmp_path / "datasets"
    folder.mkdir()
    (folder / "toy.py").write_text(toy_file(), encoding="utf-8")
    monkeypatch.setenv(PATH_ENV, str(folder))
    yield folder
    DATASETS._entries.pop("toy", None)
    sys.modules.pop(MODULE, None)


def test_the_registry_finds_the_one_file_dataset(toy_folder: Path, tmp_path: Path) -> None:
    assert "toy" not in DATASETS
    names = [d.name for d in list_datasets()]  # imports the files of MPBENCH_DATASET_PATH
    assert names[-1] == "toy" and MODULE in sys.modules
    assert load_dataset_modules() == []  # once per process
    info = DATASETS.get("toy")
    root = info.fake_layout(tmp_path / "toy", per_class=2)
    assert info.options == {}  # read_toy takes no option
    bundle = build_data("toy", root=root, frames=4, sampling_rate=2, crop=24, seed=0)
    assert bundle.class_names == ["bright", "dark"]
    assert (bundle.info["num_train"], bundle.info["num_val"], bundle.info["num_test"]) == (4, 4, 4)
    video, label = bundle.train[0]
    assert tuple(video.shape) == (3, 5, 24, 24) and label in (0, 1)
    with pytest.raises(ValueError, match="unknown option"):
        build_data("toy", root=root, frames=4, sampling_rate=2, crop=24, seed=0, options={"x": 1})


def test_a_trial_trains_on_the_one_file_dataset(toy_folder: Path, tmp_path: Path) -> None:
    """``mpbench train --dataset toy`` in a fresh process that knows the toy only from
    MPBENCH_DATASET_PATH."""
    list_datasets()
    root = DATASETS.get("toy").fake_layout(tmp_path / "toy")
    args = [sys.executable, "-m", "mpbench", "train", "--dataset", "toy", "--data-root", str(root),
            "--backbone", "x3d_xs", "--size", "tiny", "--epochs", "1", "--variant", "learnable",
            "--run-dir", str(tmp_path / "run"), "--set", "crop=32", "--set", "frames=4",
            "--set", "batch_size=4", "--experiment", "toy"]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    res = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "val top-1" in res.stdout
