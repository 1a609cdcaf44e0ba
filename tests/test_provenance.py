"""Every run records how its frames were made; the report warns when one table mixes them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import av
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mpbench import tracking as tk
from mpbench.config import TrialConfig
from mpbench.data import preset_spec, provenance, video, write_synth_dataset
from mpbench.data.cache import HEADER_FILE, default_cache_dir
from mpbench.data.catalog import read_splits
from mpbench.data.provenance import DIGEST_CLIPS
from mpbench.engine import run_trial
from mpbench.report.decoding import RENDERED, decoding_warnings, readme_section

TINY = {"classes": 2, "train_clips": 4, "val_clips": 6, "test_clips": 2, "video_frames": 8}
FRAMES, SHORT = 4, 37  # T, and the default short side of a 32 px crop: round(32 x 8 / 7)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset written as mp4 files with PyAV."""
    root = tmp_path_factory.mktemp("synth")
    write_synth_dataset(root, spec=preset_spec("easy", size=48, **TINY), seed=0)
    return root


def _trial(tmp_path: Path, name: str, study: str, **kw: Any) -> str:
    """Run a tiny trial tagged with ``study``; its MLflow run id."""
    base = dict(backbone="x3d_xs", size="tiny", variant="baseline", dataset="synth",
                frames=FRAMES, crop=32, epochs=1, max_steps=1, batch_size=2, test_clips=1,
                test_crops=1, device="cpu", run_dir=str(tmp_path / name))  # fmt: skip
    tags = {tk.TAG_STUDY: study, tk.TAG_KIND: "grid"}
    cfg = TrialConfig(**{**base, **kw})
    return run_trial(cfg, experiment=tk.DEFAULT_EXPERIMENT, tags=tags, progress=False).run_id


def _expected_digest(root: Path, short_side: int) -> str:
    """SHA-256 of the first validation clips' frames, decoded here with read_frames."""
    digest = hashlib.sha256()
    for i, entry in enumerate(read_splits("synth", root=root).val[:DIGEST_CLIPS]):
        n = video.video_frame_count(entry.path)
        (start,) = video.uniform_starts(n, frames=FRAMES, sampling_rate=1, clips=1)
        idx = video.clip_indices(n, frames=FRAMES, sampling_rate=1, start=start).tolist()
        frames = video.read_frames(entry.path, lambda _, idx=idx: idx, short_side=short_side)
        digest.update(f"{i}:{tuple(frames.shape)};".encode() + frames.numpy().tobytes())
    return digest.hexdigest()


def _provenance(client: MlflowClient, run_id: str) -> dict[str, Any]:
    return json.loads(Path(client.download_artifacts(run_id, tk.A_PROVENANCE)).read_text())


@pytest.mark.slow
def test_runs_log_their_decoding_and_the_report_warns_of_a_mixed_table(
    synth_root: Path, tmp_path: Path, mlflow_uri: str
) -> None:
    from mpbench.cli import app

    client = MlflowClient(mlflow_uri)
    plain = _trial(tmp_path, "plain", "mixed", data_root=str(synth_root))
    bigger = _trial(tmp_path, "bigger", "mixed", data_root=str(synth_root), variant="learnable",
                    dataset_options={"short_side": 40})  # fmt: skip
    cached = _trial(tmp_path, "cached", "cached", data_root=str(synth_root),
                    dataset_options={"cache": True})  # fmt: skip
    rendered = _trial(tmp_path, "memory", "memory", dataset_options=TINY)

    # decoded here: PyAV's own version and FFmpeg libraries, the short side, the scaler
    tags = client.get_run(plain).data.tags
    libavcodec = ".".join(map(str, av.library_versions["libavcodec"]))
    assert tags[tk.TAG_FRAMES] == "decoded"
    assert (
        tags[tk.TAG_DECODER] == f"pyav {av.__version__} (mpbench decoder {video.DECODER_VERSION})"
    )
    assert f"libavcodec {libavcodec}" in tags[tk.TAG_FFMPEG]
    assert tags[tk.TAG_FFMPEG] == video.ffmpeg_versions()
    assert tags[tk.TAG_SHORT_SIDE] == str(SHORT) and tags[tk.TAG_RESIZE] == video.RESIZE_METHOD
    assert tags[tk.TAG_FRAMES_DIGEST] == _expected_digest(synth_root, SHORT)
    record = _provenance(client, plain)
    assert record["cache"] is None and record["digest_clips"] == DIGEST_CLIPS
    assert record["frame_size"] == f"{SHORT}x{SHORT}"  # 48 px frames scaled down to 37
    assert tk.TAG_CACHE_BUILD not in tags
    assert client.get_run(bigger).data.tags[tk.TAG_FRAMES_DIGEST] == _expected_digest(
        synth_root, 40
    )

    # served by the cache: its header logged, the same pixels as decoding them
    tags = client.get_run(cached).data.tags
    store = default_cache_dir(synth_root) / f"s{SHORT}"
    header = json.loads((store / HEADER_FILE).read_text())
    assert tags[tk.TAG_FRAMES] == "cache" and tags[tk.TAG_CACHE_BUILD] == header["build_id"]
    assert _provenance(client, cached)["cache"] == {"path": str(store), **header}
    assert header["decoder"]["ffmpeg"] == video.ffmpeg_versions()
    assert tags[tk.TAG_FRAMES_DIGEST] == _expected_digest(synth_root, SHORT)
    assert tags[tk.TAG_DECODER] == client.get_run(plain).data.tags[tk.TAG_DECODER]

    # rendered in memory: said so, no decoder, no FFmpeg, no short side
    tags = client.get_run(rendered).data.tags
    assert tags[tk.TAG_FRAMES] == "rendered" and tags[tk.TAG_DECODER].startswith("none: rendered")
    assert tk.TAG_FFMPEG not in tags and tk.TAG_SHORT_SIDE not in tags

    # the report: two short sides in one table warn (printed, in table.md and the README)
    results = tmp_path / "results"
    (results / "mixed").mkdir(parents=True)
    (results / "mixed" / "README.md").write_text("# Mixed results\n")
    res = CliRunner().invoke(app, ["report", "mixed", "--results-dir", str(results),
                                   "--resamples", "10"], env={"COLUMNS": "300"})  # fmt: skip
    assert res.exit_code == 0, res.output
    said = (
        "the 2 finished runs of dataset synth in this table were decoded differently: short side "
        "37 (1 run: baseline seed 0) vs 40 (1 run: learnable seed 0)"
    )
    assert f"warning: {said}" in " ".join(res.output.split()), res.output
    assert said in (results / "mixed" / "table.md").read_text()
    readme = (results / "mixed" / "README.md").read_text()
    assert readme.startswith("# Mixed results\n") and f"- Warning: {said}" in readme
    # runs decoded alike, one of them through the cache, give none
    from mpbench.report.load import load_runs

    alike = pd.concat([load_runs("cached"), load_runs("mixed")])
    assert decoding_warnings(alike[alike["run_id"] != bigger]) == []


def test_readme_section_is_replaced_and_removed() -> None:
    once = readme_section("# R\n\ntext\n", ["a differs"])
    assert once.startswith("# R\n\ntext\n\n<!-- mpbench report: decoding -->")
    assert "- Warning: a differs." in once
    twice = readme_section(once, ["b differs"])
    assert "a differs" not in twice and twice.count("## Decoding warnings") == 1
    assert readme_section(twice, []) == "# R\n\ntext\n"


def _table(rows: list[tuple[str, str, str, str, str]]) -> pd.DataFrame:
    """Finished runs of synth: (frames, data_root, dataset_options, seed, digest) each."""
    return pd.DataFrame(
        [
            {
                "status": tk.STATUS_FINISHED,
                "dataset": "synth",
                "variant": f"v{i}",
                "seed": seed,
                "param.seed": seed,
                "param.data_seed": "None",
                "param.data_root": root,
                "param.dataset_options": options,
                "param.frames": "8",
                "param.sampling_rate": "1",
                "decode.frames": frames,
                "decode.frames_digest": digest,
            }
            for i, (frames, root, options, seed, digest) in enumerate(rows)
        ]
    )


def test_rendered_runs_are_compared_within_one_data_seed_and_options() -> None:
    """Clips rendered in memory follow the data seed and the dataset options (a nuisance level):
    other seeds or options give other pixels, which is no warning; the same seed and options
    with other pixels is one. Files are compared across seeds (their clips do not follow it)
    and cached with uncached runs."""
    assert RENDERED == provenance.RENDERED
    zero, one = '{"level": 0}', '{"level": 1}'
    alike = _table(
        [
            ("rendered", "None", zero, "0", "a"),
            ("rendered", "None", zero, "1", "b"),  # another data seed
            ("rendered", "None", one, "0", "c"),  # another nuisance level
            ("rendered", "None", zero, "0", "a"),
        ]
    )
    assert decoding_warnings(alike) == []
    changed = alike.copy()
    changed.loc[3, "decode.frames_digest"] = "z"
    (said,) = decoding_warnings(changed)
    pixels = "the same settings but other pixels: frames digest"
    assert f"{pixels} a (1 run: v0 seed 0) vs z (1 run: v3 seed 0)" in said
    files = _table(
        [("decoded", "/d", "{}", "0", "a"), ("decoded", "/d", '{"cache": true}', "1", "b")]
    )
    (said,) = decoding_warnings(files)
    assert "frames digest a (1 run: v0 seed 0) vs b (1 run: v1 seed 1)" in said
