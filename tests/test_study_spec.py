"""Study files: errors name file, key path, value and the fix; expansion; CLI exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.study.spec import (
    StudyFileError,
    expand_grid,
    parse_overrides,
    read_study,
    search_configs,
)

STUDIES = sorted((Path(__file__).parents[1] / "studies").glob("*.toml"))
GOOD = """
name = "demo"
[base]
dataset = "synth"
epochs = 1
[grid]
variant = ["baseline", "learnable_tav"]
backbone = ["x3d_xs"]
seeds = 3
"""


SEARCH = """
name = "demo_search"
[base]
dataset = "synth"
[search]
n_trials = 2
[search.space.lr]
type = "float"
low = 0.001
high = 0.1
[objective]
metric = "val_top1"
intermediate = "val_top1"
"""


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_grid_expands_axes_times_seeds_with_stable_keys(tmp_path: Path) -> None:
    spec = read_study(write(tmp_path, GOOD))
    cells = expand_grid(spec)
    assert [(c.variant, c.seed) for c in cells] == [
        ("baseline", 0),
        ("baseline", 1),
        ("baseline", 2),
        ("learnable_tav", 0),
        ("learnable_tav", 1),
        ("learnable_tav", 2),
    ]
    assert len({c.key() for c in cells}) == 6
    assert [c.key() for c in expand_grid(read_study(write(tmp_path, GOOD)))] == [
        c.key() for c in cells
    ]


def test_table_axis_sets_several_fields_and_seed_list(tmp_path: Path) -> None:
    text = GOOD.replace(
        'backbone = ["x3d_xs"]',
        'setup = [{backbone = "x3d_xs", frames = 4}, {backbone = "x3d_s", frames = 6}]',
    ).replace("seeds = 3", "seeds = [7]")
    cells = expand_grid(read_study(write(tmp_path, text)))
    assert {(c.backbone, c.frames, c.seed) for c in cells} == {("x3d_xs", 4, 7), ("x3d_s", 6, 7)}
    assert len(cells) == 4


def test_overrides_pin_fields_and_drop_their_axes(tmp_path: Path) -> None:
    spec = read_study(
        write(tmp_path, GOOD), overrides=parse_overrides(["variant=fixed", "epochs=2"])
    )
    cells = expand_grid(spec)
    assert {c.variant for c in cells} == {"fixed"} and {c.epochs for c in cells} == {2}
    assert len(cells) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace('["x3d_xs"]', '["x3d_q"]'),
            r"study.toml: \[grid -> backbone\] unknown backbone 'x3d_q'; did you mean 'x3d_s'",
        ),
        (
            GOOD.replace('"baseline",', '"learnable_tva",'),
            r"\[grid -> variant\] unknown variant 'learnable_tva'; did you mean 'learnable_tav'",
        ),
        (
            GOOD.replace("seeds = 3", "seeds = 3\nbakbone = ['x3d_xs']"),
            r"\[grid -> bakbone\] unknown trial field 'bakbone'; did you mean 'backbone'",
        ),
        (
            GOOD.replace("epochs = 1", "epochs = 0"),
            r"\[base -> epochs\] Input should be greater than or equal to 1 \(got 0\)",
        ),
        (
            GOOD.replace("epochs = 1", "epoch = 1"),
            r"\[base -> epoch\] unknown key 'epoch'; did you mean 'epochs'",
        ),
        (
            GOOD.replace("[grid]", "[grid]\nlr = [0.1, -1.0]"),
            r"\[grid -> lr -> 1\] Input should be greater than 0 \(got -1.0\)",
        ),
        (GOOD.replace("[grid]", "[grd]"), r"\[grd\] unknown key 'grd'; did you mean 'grid'"),
        (
            GOOD.replace(
                'name = "demo"',
                'name = "demo"\n[search]\nn_trials = 2\n'
                "[search.space.lr]\ntype = 'float'\nlow = 1.0\nhigh = 0.1",
            ),
            r"\[search -> space -> lr -> float\] low must be <= high, got low=1.0, high=0.1",
        ),
        (
            GOOD.replace("[grid]", "[objective]\nmetric = 'val_top2'\n[grid]"),
            r"\[objective -> metric\] unknown metric 'val_top2'; did you mean 'val_top5', "
            r"'val_top1'",
        ),
        ("name = 'x'\n[base]\n", r"a study needs exactly one of \[grid\] and \[search\]"),
    ],
)
def test_bad_study_files_name_file_key_value_and_fix(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(StudyFileError, match=message):
        read_study(write(tmp_path, text))


@pytest.mark.parametrize(
    ("field", "metric"),
    [("metric", "test_top1"), ("metric", "test_mean_class_acc"), ("intermediate", "test_top5")],
)
def test_search_refuses_to_optimise_a_test_metric(tmp_path: Path, field: str, metric: str) -> None:
    text = SEARCH.replace(f'{field} = "val_top1"', f'{field} = "{metric}"')
    message = (
        f"study.toml: [objective -> {field}] '{metric}' is computed on the test split, which is "
        "reported only; a search must optimise a validation metric such as 'val_top1'"
    )
    with pytest.raises(StudyFileError, match=re.escape(message)):
        read_study(write(tmp_path, text))


def test_grid_may_report_a_test_metric_and_search_a_val_one(tmp_path: Path) -> None:
    grid = GOOD.replace("[grid]", "[objective]\nmetric = 'test_top1'\n[grid]")
    assert read_study(write(tmp_path, grid, "grid.toml")).objective.metric == "test_top1"
    search = SEARCH.replace('metric = "val_top1"', 'metric = "val_mean_class_acc"')
    assert read_study(write(tmp_path, search)).objective.metric == "val_mean_class_acc"


def test_grid_cell_whose_variant_refuses_its_lambda_is_an_error_before_running(
    tmp_path: Path,
) -> None:
    text = GOOD.replace('variant = ["baseline", "learnable_tav"]', 'variant = ["fixed"]')
    text = text.replace("[grid]", "[grid]\ntav_weight = [0.0, 1.0]")
    with pytest.raises(
        StudyFileError,
        match=r"study.toml: \[grid -> variant\] variant 'fixed': tav_weight=1.0 needs a learnable",
    ):
        read_study(write(tmp_path, text))


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(StudyFileError, match=r"study.toml: invalid TOML: .*line 3"):
        read_study(write(tmp_path, 'name = "x"\n[base]\nepochs = = 1\n'))


def test_cli_bad_study_exits_2_and_starts_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('["x3d_xs"]', '["x3d_q"]'))
    res = CliRunner().invoke(app, ["grid", str(path), "--run-folder", str(tmp_path / "runs")])
    assert res.exit_code == 2
    assert "unknown backbone 'x3d_q'; did you mean 'x3d_s'" in res.output
    assert not (tmp_path / "runs").exists()


def test_cli_refuses_sqlite_for_several_workers(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    res = CliRunner().invoke(
        app, ["grid", str(path), "--workers", "2", "--storage", f"sqlite:///{tmp_path}/o.db"]
    )
    assert res.exit_code == 2
    assert "cannot serve 2 workers" in res.output and "double-claim" in res.output


def test_cli_kind_mismatch_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["search", str(write(tmp_path, GOOD))])
    assert res.exit_code == 2 and "is a grid study: run it with `mpbench grid`" in res.output


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_studies_validate_and_expand(path: Path) -> None:
    spec = read_study(path)
    if spec.grid is not None:
        cells = expand_grid(spec)
        assert len(cells) == len({c.key() for c in cells}) >= 4
    else:
        params = {
            k: (v.choices[0] if v.type == "categorical" else v.low)
            for k, v in spec.search.space.items()
        }
        assert len(search_configs(spec, params)) == spec.search.seeds_per_trial


def test_shipped_study_sizes() -> None:
    sizes = {p.stem: read_study(p) for p in STUDIES}
    assert set(sizes) == {
        "quickstart",
        "paper_ablation",
        "lambda_sweep",
        "pn_functions",
        "search_tav",
        "reference_mpii",
        "nuisance",
    }
    nuisance = expand_grid(sizes["nuisance"])  # 3 variants x 2 ladders x 4 levels x 2 seeds
    assert len(nuisance) == 3 * 2 * 4 * 2
    levels = {(c.dataset_options["ladder"], c.dataset_options["level"]) for c in nuisance}
    assert levels == {(n, lv) for n in ("flicker", "distractors") for lv in range(4)}
    assert len(expand_grid(sizes["paper_ablation"])) == 6 * 3 * 4 * 3
    assert len(expand_grid(sizes["reference_mpii"])) == 7 * 3
    lambdas = sorted({c.tav_weight for c in expand_grid(sizes["lambda_sweep"])})
    assert lambdas == [0.0, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0]
    quick = expand_grid(sizes["quickstart"])
    assert {c.variant for c in quick} == {"baseline", "learnable", "static"}
    assert {c.device for c in quick} == {"cpu"} and {c.dataset for c in quick} == {"synth"}
    assert re.fullmatch(r"[a-z_]+", sizes["search_tav"].name)


SEEDS_RULE = "seeds must be a list of non-negative integers such as [0, 1, 2], or a count >= 1"


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ("[-3, 0]", f"[grid -> seeds] {SEEDS_RULE} (got [-3, 0])"),
        ("-3", f"[grid -> seeds] {SEEDS_RULE} (got -3)"),
        ("0", f"[grid -> seeds] {SEEDS_RULE} (got 0)"),
        ("[]", f"[grid -> seeds] {SEEDS_RULE} (got [])"),
        ("[1.5]", "[grid -> seeds -> 0] Input should be a valid integer"),
    ],
)
def test_bad_seeds_name_the_file_the_key_and_what_is_expected(
    tmp_path: Path, seeds: str, message: str
) -> None:
    """A bad seed list is an error of the study file at [grid -> seeds], exit 2 under --dry-run
    (it was a raw pydantic message about TrialConfig.seed, without the file or the key)."""
    path = write(tmp_path, GOOD.replace("seeds = 3", f"seeds = {seeds}"))
    with pytest.raises(StudyFileError) as err:
        read_study(path)
    assert str(err.value).startswith(f"{path}: {message}")
    res = CliRunner().invoke(app, ["grid", str(path), "--dry-run"])
    assert res.exit_code == 2, res.output
    assert f"{path}: [grid -> seeds" in res.output and "validation error for" not in res.output
    search = write(tmp_path, SEARCH.replace("n_trials = 2", "n_trials = 2\nsampler_seed = -1"))
    with pytest.raises(StudyFileError, match=r"\[search -> sampler_seed\] .*greater than or equal"):
        read_study(search)


SEQUENTIAL = GOOD.replace("seeds = 3", "seeds = { min = 3, max = 9, step = 3 }") + (
    "[resolve]\nmargin = 0.02\n"
)


def test_a_seed_table_is_a_sequential_grid_of_looks_up_to_max(tmp_path: Path) -> None:
    """seeds = { min, max, step } gives looks min..max and seeds 0..max-1; [resolve] defaults
    to the objective's metric, alpha 0.05 and power 0.8; an integer keeps the fixed design."""
    spec = read_study(write(tmp_path, SEQUENTIAL))
    assert spec.schedule is not None and spec.schedule.looks == (3, 6, 9)
    assert sorted({c.seed for c in expand_grid(spec)}) == list(range(9))
    assert (spec.resolve_metric, spec.resolve.alpha, spec.resolve.power) == ("val_top1", 0.05, 0.8)
    assert spec.resolve.spending == "obf"
    pocock = read_study(write(tmp_path, SEQUENTIAL + 'spending = "pocock"\n'))
    assert pocock.resolve.spending == "pocock"
    from mpbench.study.status import design_words

    assert design_words(pocock, 2) == (
        "looks after 3, 6, 9 seeds, Lan-DeMets Pocock-type alpha spending, family-wise alpha "
        "0.05 over 2 comparison(s)"
    )
    fixed = read_study(write(tmp_path, GOOD))
    assert fixed.schedule is None and fixed.resolve is None
    assert sorted({c.seed for c in expand_grid(fixed)}) == [0, 1, 2]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("margin = 0.02\n", "", "[resolve -> margin] is required with seeds = { min, max, step }"),
        ("min = 3", "min = 1", "[grid -> seeds -> min] Input should be greater than or equal to 2"),
        ("max = 9", "max = 8", "[grid -> seeds] seeds = { min = 3, max = 12, step = 3 }: integers"),
        ("step = 3", "stepp = 3", "[grid -> seeds -> stepp] unknown key 'stepp'"),
        ("margin = 0.02", "margin = -1", "[resolve -> margin] Input should be greater than 0"),
        ("margin = 0.02", "margin = 1\nalpha = 1.5", "[resolve -> alpha] Input should be less"),
        ("margin = 0.02", "margin = 1\nmetric = 'val_topp1'", "[resolve -> metric] unknown metric"),
        ("margin = 0.02", "margin = 1\nspending = 'wang'", "[resolve -> spending] Input should be"),
    ],
)
def test_bad_sequential_settings_name_the_file_the_key_and_the_value(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    """Every bad seed table or [resolve] value is an error at its key path, exit 2."""
    path = write(tmp_path, SEQUENTIAL.replace(old, new))
    with pytest.raises(StudyFileError) as err:
        read_study(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), err.value
    res = CliRunner().invoke(app, ["grid", str(path), "--dry-run"])
    assert res.exit_code == 2, res.output
