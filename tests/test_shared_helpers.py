"""Helpers defined once: the TOML + pydantic loader, "did you mean", the git commit, the names."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpbench import _git
from mpbench import tracking as tk
from mpbench._registry import did_you_mean, unknown_name_message
from mpbench.config import load_trial_config
from mpbench.study import storage
from mpbench.study.spec import StudyFileError, read_study


def test_did_you_mean_lists_close_names_only() -> None:
    assert did_you_mean("x3d_q", ["x3d_xs", "x3d_s", "mvit_b"]) == "did you mean 'x3d_s', 'x3d_xs'?"
    assert did_you_mean("zzz", ["x3d_xs", "mvit_b"]) == ""
    assert (
        unknown_name_message("variant", "zzz", ["fixed"]) == "unknown variant 'zzz'. Known: fixed"
    )


def test_trial_config_and_study_file_share_the_error_format(tmp_path: Path) -> None:
    trial = tmp_path / "t.toml"
    trial.write_text("[trial]\nlrr = 0.1\n")
    with pytest.raises(ValueError, match=r"t\.toml: \[lrr\] unknown key 'lrr'; did you mean 'lr'"):
        load_trial_config(trial)
    study = tmp_path / "s.toml"
    study.write_text('name = "s"\n[base]\nlrr = 0.1\n[grid]\nseeds = [0]\n')
    with pytest.raises(
        StudyFileError, match=r"s\.toml: \[base -> lrr\] unknown key 'lrr'; did you mean 'lr'"
    ):
        read_study(study)


def test_bad_toml_and_missing_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 1\n")
    with pytest.raises(ValueError, match=r"bad\.toml: invalid TOML: .*line 1"):
        load_trial_config(bad)
    with pytest.raises(StudyFileError, match=r"bad\.toml: invalid TOML: .*line 1"):
        read_study(bad)
    with pytest.raises(FileNotFoundError, match=r"study file .*nope\.toml does not exist"):
        read_study(tmp_path / "nope.toml")


def test_overrides_without_a_file_are_validated_as_the_command_line() -> None:
    with pytest.raises(ValueError, match=r"^command line: \[epochs\] .*greater than or equal to 1"):
        load_trial_config(None, epochs=0)
    assert load_trial_config(None, epochs=2, lr=None).epochs == 2  # None: not given


def test_git_commit_of_the_checkout_and_outside_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = _git.git_commit()
    if full is not None:  # a git checkout (not a wheel install)
        assert len(full) == 40 and full.startswith(_git.git_commit(short=True) or "-")
        assert storage.code_version().endswith(f"+{_git.git_commit(short=True)}")
    monkeypatch.setattr(_git, "_CHECKOUT", tmp_path)  # no .git: no commit, plain version
    assert _git.git_commit() is None
    assert "+" not in storage.code_version()


def test_trial_attributes_and_run_tags_share_their_names() -> None:
    # the names stored in existing Optuna studies and MLflow runs: they must not change
    assert (storage.ATTR_CELL, storage.ATTR_STATUS) == (tk.TAG_CELL, tk.TAG_STATUS)
    assert (storage.ATTR_CELL, storage.ATTR_STATUS) == ("mpbench.cell", "mpbench.status")


def test_every_metric_list_comes_from_the_one_table() -> None:
    """Epoch and final lists, directions, splits, units and the test/val pairs are the table's."""
    from mpbench.report import stats
    from mpbench.study.spec import is_test_metric

    assert set(tk.EPOCH_METRICS) | set(tk.FINAL_METRICS) == set(tk.METRICS)
    assert tk.M_EPOCH_SECONDS in tk.EPOCH_METRICS  # logged every epoch
    assert tk.M_TEST_TOP1 in tk.FINAL_METRICS and tk.M_TEST_TOP1 not in tk.EPOCH_METRICS
    assert not stats.higher_is_better(tk.M_SKIPPED)  # more broken videos is worse
    assert [stats.higher_is_better(k) for k in (tk.M_TEST_TOP1, tk.M_VAL_LOSS)] == [True, False]
    assert stats.SPLIT_PAIRS == {
        tk.M_TEST_TOP1: tk.M_VAL_TOP1,
        tk.M_TEST_TOP5: tk.M_VAL_TOP5,
        tk.M_TEST_MCA: tk.M_VAL_MCA,
    }
    assert stats.axis_label(tk.M_TEST_MCA) == "test mean class accuracy (%)"
    assert stats.metric_label(tk.M_CLIPS_PER_S) == "clips_per_s"
    assert [is_test_metric(k) for k in (tk.M_TEST_TOP5, tk.M_VAL_TOP1)] == [True, False]
    with pytest.raises(ValueError, match=r"unknown metric 'val_top'; did you mean .*'val_top1'"):
        stats.higher_is_better("val_top")


def test_one_exception_to_status_function() -> None:
    """The recorder and the worker map an exception to a trial status through tk.status_of."""
    import optuna

    from mpbench.engine.errors import DivergenceError
    from mpbench.outage import OutageError
    from mpbench.study.worker import TrialLost

    cases = {
        DivergenceError(epoch=0, step=1, loss=float("nan")): "diverged",
        optuna.TrialPruned(): "pruned",
        KeyboardInterrupt(): "interrupted",
        OutageError("away"): "interrupted",
        TrialLost("taken over"): "interrupted",
        ValueError("bad"): "failed",
    }
    assert {type(e).__name__: tk.status_of(e) for e in cases} == {
        type(e).__name__: s for e, s in cases.items()
    }
    assert {s.value for s in tk.TrialStatus} >= {"lost", "outage", "spurious", "duplicate"}
    assert tk.mlflow_status(tk.status_of(OutageError("away"))) == "KILLED"


def test_a_zombie_is_not_alive() -> None:
    """One pid_alive for the reaper and the launcher: a child that exited unreaped is gone."""
    import os
    import subprocess
    import time

    from mpbench._process import pid_alive

    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # exited, not reaped: a zombie
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.05)
    assert not pid_alive(child.pid)
    assert pid_alive(os.getpid())
    child.wait()
    assert not pid_alive(child.pid)


def test_raising_signals_raise_once_and_restore() -> None:
    """A signal raises its exception, later ones are ignored, the old handlers come back."""
    import os
    import signal

    from mpbench import outage
    from mpbench._process import raising_signals

    before = signal.getsignal(signal.SIGTERM)
    with (
        pytest.raises(KeyboardInterrupt, match="signal SIGTERM"),
        raising_signals({signal.SIGTERM: KeyboardInterrupt, signal.SIGUSR1: KeyboardInterrupt}),
    ):
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_BLOCK, [])  # let the handler run
    assert signal.getsignal(signal.SIGTERM) is before and not outage.is_stopping()
    with raising_signals({signal.SIGUSR1: RuntimeError}):
        with pytest.raises(RuntimeError):
            os.kill(os.getpid(), signal.SIGUSR1)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])
        assert outage.is_stopping() and signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
    assert not outage.is_stopping()
