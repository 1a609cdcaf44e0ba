"""The one TOML + pydantic loader (trial configs and study files) and the "did you mean" helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpbench._registry import did_you_mean, unknown_name_message
from mpbench.config import load_trial_config
from mpbench.study.spec import StudyFileError, load_study


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
        load_study(study)


def test_bad_toml_and_missing_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 1\n")
    with pytest.raises(ValueError, match=r"bad\.toml: invalid TOML: .*line 1"):
        load_trial_config(bad)
    with pytest.raises(StudyFileError, match=r"bad\.toml: invalid TOML: .*line 1"):
        load_study(bad)
    with pytest.raises(FileNotFoundError, match=r"study file .*nope\.toml does not exist"):
        load_study(tmp_path / "nope.toml")


def test_overrides_without_a_file_are_validated_as_the_command_line() -> None:
    with pytest.raises(ValueError, match=r"^command line: \[epochs\] .*greater than or equal to 1"):
        load_trial_config(None, epochs=0)
    assert load_trial_config(None, epochs=2, lr=None).epochs == 2  # None: not given
