"""Numbers in README.md and results/quickstart/README.md match the files and the study they
describe (the quickstart regenerates the results; these checks keep the prose in step)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mpbench.quickstart import QUICKSTART_DATA
from mpbench.study.spec import read_study

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
RESULTS = REPO / "results" / "quickstart"


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| x3d_xs")]


def test_readme_table_is_the_committed_quickstart_table() -> None:
    table = [r.removesuffix(" 0 |").rstrip(" |") for r in _rows((RESULTS / "table.md").read_text())]
    assert [r.rstrip(" |") for r in _rows(README)] == table


def test_readme_seed_count_chance_and_variants_match_the_study() -> None:
    spec = read_study(REPO / "studies" / "quickstart.toml")
    assert spec.grid is not None
    counts = set(re.findall(r"(\d+) seeds", README))
    if spec.schedule is None:
        seeds = spec.grid.seeds if isinstance(spec.grid.seeds, int) else len(spec.grid.seeds)
        assert counts == {str(seeds)}
    else:  # a sequential grid: its range, and seed counts inside it
        assert f"{spec.schedule.min} to {spec.schedule.max} seeds" in README
        assert counts <= {str(n) for n in spec.schedule.looks}
    chance = round(100 / QUICKSTART_DATA["classes"])
    assert f"chance {chance}%" in README
    assert f"{QUICKSTART_DATA['classes']} synthetic motion classes" in README
    assert [r.split("|")[2].strip() for r in _rows(README)] == spec.grid.axes["variant"]


def test_results_readme_numbers_come_from_table_csv() -> None:
    import pandas as pd

    text = (RESULTS / "README.md").read_text()
    csv = pd.read_csv(RESULTS / "table.csv")
    test = csv[(csv["split"] == "test") & (csv["label"] == "learnable")].iloc[0]
    diff = (
        f"{100 * test['delta']:+.2f} points (95 % paired t interval "
        f"[{100 * test['delta_low']:+.2f}, {100 * test['delta_high']:+.2f}]"
    )
    assert diff in text and diff in README
    assert f"Holm p {test['p_holm']:.3f}" in text
    assert f"Holm p {test['p_holm']:.2f}" in README
    for _, row in csv.dropna(subset=["verdict"]).iterrows() if "verdict" in csv else []:
        said = f"{row['label']} vs baseline: {row['verdict']} after {int(row['seeds_used'])} seeds"
        interval = f"[{100 * row['seq_low']:+.2f}, {100 * row['seq_high']:+.2f}]"
        assert said in text and said in README
        assert interval in text and interval in README
    for _, row in csv[csv["split"].isin(["val", "test"])].iterrows():
        cell = f"| {row['split']} | {row['label']} | {row['n']} | "
        said = re.search(re.escape(cell) + r"([\d.]+) \| ([\d.]+) \|", text)
        assert said is not None, cell
        # the CSV keeps fewer digits than the run: its value may round the other way at a tie
        assert abs(float(said.group(1)) - 100 * row["mean"]) <= 0.005 + 1e-9
        assert abs(float(said.group(2)) - 100 * row["std"]) <= 0.005 + 1e-9


def test_readme_wall_time_is_the_quickstart_one() -> None:
    wall = int(re.search(r"Wall time (\d+) s", (RESULTS / "README.md").read_text()).group(1))
    minutes, seconds = re.search(r"on a 2-core CPU\s+in (\d+)m(\d+)s", README).groups()
    assert 60 * int(minutes) + int(seconds) == wall


def test_readme_backbone_table_is_the_registry() -> None:
    """Every backbone's row in the README (input, parameter count, classifier) is what its
    registration declares; the parameter counts are checked against a build in test_models."""
    from mpbench._markdown import markdown_table
    from mpbench.models import list_backbones

    rows = [
        [f"`{b.name}`", b.family, f"{b.defaults['full'][0]} x {b.defaults['full'][1]}²",
         f"{b.params_m:g}", f"`{b.classifier}`"]
        for b in list_backbones()
    ]  # fmt: skip
    head = ["backbone", "family", "full input (T x crop²)", "parameters (M, 400 classes)"]
    table = "\n".join(markdown_table([*head, "classifier"], rows))
    assert table in README


def test_nuisance_readme_numbers_come_from_its_table_csv() -> None:
    """results/nuisance/README.md's table and its smallest Holm p are the committed table's."""
    import pandas as pd

    nuisance = REPO / "results" / "nuisance"
    text = (nuisance / "README.md").read_text()
    csv = pd.read_csv(nuisance / "table.csv")
    rows = re.findall(
        r"^\| (\w+) \| (\d) \| (\w+) \| ([\d.]+) ± ([\d.]+) \| ([\d.]+) ± ([\d.]+) \| ([^|]+) \|$",
        text,
        flags=re.M,
    )
    assert len(rows) == 24  # 2 ladders x 4 levels x 3 variants
    for ladder, level, variant, *numbers, diff in rows:
        mine = csv[(csv["dataset_options"] == f"ladder={ladder}, level={level}")
                   & (csv["variant"] == variant)]  # fmt: skip
        test, shift = (mine[mine["split"] == s].iloc[0] for s in ("test", "test_shift"))
        expected = [test["mean"], test["std"], shift["mean"], shift["std"]]
        assert [float(n) for n in numbers] == pytest.approx([100 * e for e in expected], abs=0.006)
        if variant != "baseline":
            assert diff.startswith(f"{100 * shift['delta']:+.2f} [{100 * shift['delta_low']:+.2f}")
    assert f"at least\n  {csv['p_holm'].min():.3f}" in text
