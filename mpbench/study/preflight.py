"""The pre-flight: everything about a study that can be checked before anything is enqueued or
started, so that a bad setting stops the command (exit code 2) instead of failing every cell.

:func:`preflight` checks the study name, the devices asked for (they exist, each listed once, and
some cell uses them), the run folder (writable), every distinct dataset of the cells still to run
(its lists parsed and one batch possible; no clip is decoded) and every distinct model (built on
the meta device, the prompt layer run on the CPU and the backbone's forward pass at batch 1 on
meta, or on the CPU where an operator has no meta kernel). Every problem is listed with the study
file, the key it comes from and the value; :class:`PreflightError` carries them all.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpbench.config import TrialConfig, without_cache
from mpbench.study.plan import RunPlan
from mpbench.study.spec import (
    StudyFileError,
    StudySpec,
    _axis_fields,
    check_study_name,
    expand_grid,
    local_config,
)

# The config fields that decide each part that is built (groups share one check).
DATA_FIELDS = ("dataset", "data_root", "dataset_options", "frames", "sampling_rate", "crop")
MODEL_FIELDS = (
    "backbone",
    "size",
    "variant",
    "tav_weight",
    "init_m",
    "init_n",
    "frames",
    "crop",
    "pretrained",
    "weights",
    "dropout",
    "drop_path",
)
DEFAULT_CLASSES = 10  # for a model whose dataset could not be read


@dataclass(frozen=True)
class Problem:
    """One thing that would make cells fail: where it was set, what is wrong, how many cells."""

    where: str  # key path, e.g. "base -> crop", "grid -> variant", "--gpus"
    message: str
    cells: int = 1


@dataclass(frozen=True)
class PreflightResult:
    """What the pre-flight checked (it found nothing wrong)."""

    cells: int
    datasets: int
    models: int
    seconds: float

    def describe(self) -> str:
        """``pre-flight ok: 8 cells, 1 dataset, 2 models checked in 1.2s``."""
        return (
            f"pre-flight ok: {self.cells} cell(s), {self.datasets} dataset(s), "
            f"{self.models} model(s) checked in {self.seconds:.1f}s"
        )


class PreflightError(StudyFileError):
    """The problems the pre-flight found; the message has one line per problem."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = []
        for p in problems:
            first, *rest = p.message.splitlines() or [""]
            cells = f" ({p.cells} cells)" if p.cells > 1 else ""
            lines += [f"{source}: [{p.where}] {first}{cells}", *(f"    {r}" for r in rest)]
        lines.append(
            f"pre-flight: {len(problems)} problem(s) found; nothing was enqueued or started"
        )
        super().__init__("\n".join(lines))


def preflight(
    spec: StudySpec,
    p: RunPlan,
    *,
    retry_failed: bool = False,
    configs: list[TrialConfig] | None = None,
    fetch: bool = True,
) -> PreflightResult:
    """Check the study, its devices and folders and the configs still to run (default: the
    grid cells that have not ended, every cell on a fresh study; for a search, its space's
    bounds and choices). Raises :class:`PreflightError` listing every problem. ``fetch``
    downloads missing published weights (online); without it (a dry run) weights that are
    missing but could be downloaded are no problem."""
    t0 = time.perf_counter()
    if configs is None:
        try:
            configs = todo_configs(spec, p.storage, retry_failed=retry_failed)
        except Exception as exc:  # an unreachable database, a journal that is not one
            raise PreflightError(spec.source, [_storage_problem(p, exc)]) from None
    problems = [*check_name(spec), *check_devices(spec, p, configs), *check_folders(spec, p)]
    data_problems, classes = check_data(spec, configs)
    model_problems, models = check_models(spec, configs, classes, fetch=fetch)
    problems += data_problems + model_problems
    if problems:
        raise PreflightError(spec.source, merge(problems))
    datasets = len({_group(c, DATA_FIELDS) for c in configs})
    return PreflightResult(len(configs), datasets, models, time.perf_counter() - t0)


def _storage_problem(p: RunPlan, exc: Exception) -> Problem:
    """The storage could not be read."""
    from mpbench._secrets import mask_url

    return Problem(p.storage_key, f"cannot read {mask_url(p.storage)}: {_message(exc)}")


def merge(problems: list[Problem]) -> list[Problem]:
    """One problem per (where, message), its cells added up (e.g. one model error of every
    variant)."""
    merged: dict[tuple[str, str], Problem] = {}
    for p in problems:
        old = merged.get((p.where, p.message))
        merged[(p.where, p.message)] = (
            p if old is None else Problem(p.where, p.message, old.cells + p.cells)
        )
    return list(merged.values())


def todo_configs(spec: StudySpec, url: str, *, retry_failed: bool = False) -> list[TrialConfig]:
    """The grid cells that have not ended (failed ones too with ``retry_failed``), or the
    configs that stand for a search (:func:`search_configs`)."""
    if spec.search is not None:
        return search_configs(spec)
    from mpbench.study import storage as S

    study = S.open_existing(spec, url)
    groups = S.cells(study.get_trials(deepcopy=False)) if study is not None else {}
    ended = {"complete", "pruned"} | (set() if retry_failed else {"fail"})
    return [
        c for c in expand_grid(spec) if c.key() not in groups or groups[c.key()].state not in ended
    ]


def search_configs(spec: StudySpec) -> list[TrialConfig]:
    """Points a search can sample: every dimension at its low bound (first choice), every one at
    its high bound (last choice), and each choice of each categorical with the others low."""
    assert spec.search is not None
    space = spec.search.space

    def bound(param: Any, i: int) -> Any:
        return param.choices[i] if param.type == "categorical" else (param.low, param.high)[i]

    low = {name: bound(p, 0) for name, p in space.items()}
    high = {name: bound(p, 1 if p.type != "categorical" else -1) for name, p in space.items()}
    points = [low, high] + [
        {**low, name: choice}
        for name, p in space.items()
        if p.type == "categorical"
        for choice in p.choices
    ]
    configs = [spec.base.with_updates(**point) for point in points]
    return list({c.key(): c for c in configs}.values())


# --- where a value was set ----------------------------------------------------------------------


def where(spec: StudySpec, field: str) -> str:
    """The key path that sets ``field`` in the cells: ``--set X``, ``grid -> axis`` or
    ``base -> X``."""
    if field in spec.pinned:
        return f"--set {field}"
    if spec.grid is not None:
        for axis, values in spec.grid.axes.items():
            if field in _axis_fields(axis, values):
                return f"grid -> {axis}"
    if spec.search is not None and field in spec.search.space:
        return f"search -> space -> {field}"
    return f"base -> {field}"


def _blame(spec: StudySpec, message: str, fields: Iterable[str], fallback: str) -> str:
    """The key paths of the fields that ``message`` names (``crop=16``, ``'crop'``), else of
    ``fallback``."""
    named = [f for f in fields if re.search(rf"\b{f}\b", message)]
    return ", ".join(dict.fromkeys(where(spec, f) for f in (named or [fallback])))


def _group(cfg: TrialConfig, fields: tuple[str, ...]) -> str:
    """A hashable key of ``cfg``'s ``fields``."""
    return json.dumps({f: getattr(cfg, f) for f in fields}, sort_keys=True, default=str)


def _groups(configs: list[TrialConfig], fields: tuple[str, ...]) -> dict[str, list[TrialConfig]]:
    """``configs`` grouped by their ``fields``, in first-seen order."""
    out: dict[str, list[TrialConfig]] = {}
    for cfg in configs:
        out.setdefault(_group(cfg, fields), []).append(cfg)
    return out


def _message(exc: BaseException) -> str:
    """``exc``'s message without blank lines (its type when it has none); a problem line shows
    the first line, the rest is indented below it."""
    lines = [line.rstrip() for line in str(exc).splitlines() if line.strip()]
    return "\n".join(lines) or type(exc).__name__


# --- the checks ---------------------------------------------------------------------------------


def check_name(spec: StudySpec) -> list[Problem]:
    """The study name must be a safe file name (it names the run and results folders)."""
    try:
        check_study_name(spec.name)
    except ValueError as exc:
        return [Problem("name", str(exc))]
    return []


def visible_gpus() -> list[int]:
    """The GPU ids a worker can be given (CUDA_VISIBLE_DEVICES, else 0..count-1)."""
    import torch

    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    if ids and all(v.isdigit() for v in ids):
        return [int(v) for v in ids]
    return list(range(torch.cuda.device_count()))


def check_devices(spec: StudySpec, p: RunPlan, configs: list[TrialConfig]) -> list[Problem]:
    """GPUs asked for exist, are listed once and are used; CUDA-only settings have a GPU."""
    problems = []
    gpus, key = list(p.gpus), p.gpus_key
    listed = ",".join(map(str, gpus))
    twice = sorted({g for g in gpus if gpus.count(g) > 1})
    if twice:
        problems.append(
            Problem(
                key,
                f"GPU {twice} listed more than once (got {listed}); each GPU runs one "
                "worker: list each id once (use --workers N for several workers on one GPU)",
            )
        )
    available = visible_gpus() if gpus or configs else []
    missing = sorted({g for g in gpus if g not in available})
    if missing:
        have = f"GPU ids {available}" if available else "no CUDA GPU"
        problems.append(
            Problem(key, f"GPU {missing} not found (got {listed}); this machine has {have}")
        )
    if gpus and configs and all(c.device == "cpu" for c in configs):
        problems.append(
            Problem(
                where(spec, "device"),
                f"device 'cpu' in every cell, but GPUs "
                f'{listed} were asked for ({key}): set device = "auto" or '
                "drop the GPUs",
            )
        )
    on_gpu = bool(gpus) or bool(available)
    for field, bad in (("device", lambda c: c.device == "cuda"), ("amp", _fp16)):
        hit = [c for c in configs if bad(c) and (not on_gpu or c.device == "cpu")]
        if hit:
            value = getattr(hit[0], field)
            problems.append(
                Problem(
                    where(spec, field),
                    f"{field} {value!r} needs a CUDA GPU and none will be used",
                    len(hit),
                )
            )
    return problems


def _fp16(cfg: TrialConfig) -> bool:
    """fp16 autocast, which needs CUDA."""
    return cfg.amp == "fp16"


def unwritable(folder: Path) -> str | None:
    """Why files cannot be written under ``folder`` (created when needed), or None."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".mpbench-write-test-")
    except OSError as exc:
        return f"{probe} is not writable ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(name)
    return None


def check_folders(spec: StudySpec, p: RunPlan) -> list[Problem]:
    """The study's run folder (journal, logs, trial checkpoints) and a journal file's folder
    elsewhere must be writable."""
    run = Path(p.run_folder) / spec.name
    folders = [(run / sub, p.run_folder_key) for sub in ("logs", "trials") if (run / sub).exists()]
    folders.insert(0, (run, p.run_folder_key))
    journal = Path(p.storage).parent if "://" not in p.storage else run
    if journal != run:
        folders.append((journal, p.storage_key))
    problems = []
    for folder, key in folders:
        reason = unwritable(folder)
        if reason is not None:
            problems.append(Problem(key, f"cannot write {folder}: {reason}"))
    return problems


def _checked(
    spec: StudySpec,
    group: list[TrialConfig],
    fields: tuple[str, ...],
    fallback: str,
    fn: Callable[[], Any],
) -> tuple[Any, Problem | None]:
    """``fn()``, or the Problem its exception describes (blamed on the fields it names)."""
    try:
        return fn(), None
    except Exception as exc:  # every error of a build is a problem of the config
        message = _message(exc)
        return None, Problem(_blame(spec, message, fields, fallback), message, len(group))


def check_data(spec: StudySpec, configs: list[TrialConfig]) -> tuple[list[Problem], dict[str, Any]]:
    """Build each distinct dataset (lists parsed, nothing decoded) and check that each batch
    size gets at least one batch; (problems, data-group key -> the built DataBundle)."""
    from mpbench.engine.build import build_data_for

    problems, bundles = [], {}
    for key, group in _groups(configs, DATA_FIELDS).items():
        fallback = "data_root" if group[0].data_root else "dataset"
        cfg = without_cache(local_config(group[0], spec.folder))
        data, problem = _checked(
            spec, group, DATA_FIELDS, fallback, lambda c=cfg: build_data_for(c)
        )
        if problem is not None:
            problems.append(problem)
            continue
        bundles[key] = data
        for batch in _groups(group, ("batch_size",)).values():
            try:
                _one_batch(data, batch[0])
            except ValueError as exc:  # the clips are too few for a batch, or the batch too big
                keys = ["batch_size", "dataset_options" if cfg.dataset_options else fallback]
                message = _message(exc)
                blame = ", ".join(dict.fromkeys(where(spec, k) for k in keys))
                problems.append(Problem(blame, message, len(batch)))
    return problems, bundles


def _one_batch(data: Any, cfg: TrialConfig) -> None:
    """The engine's loaders for ``data`` (ValueError when training would get no batch)."""
    import torch

    from mpbench.engine.build import build_loaders
    from mpbench.engine.distributed import DistContext

    build_loaders(data, cfg, dist_ctx=DistContext(), device=torch.device("cpu"))


def check_models(
    spec: StudySpec, configs: list[TrialConfig], bundles: dict[str, Any], *, fetch: bool = True
) -> tuple[list[Problem], int]:
    """Build each distinct model and run a forward pass at batch 1; (problems, models)."""
    import warnings

    problems = []
    groups = _groups(configs, MODEL_FIELDS)
    with warnings.catch_warnings():  # pytorchvideo's import-time deprecation notes are noise here
        warnings.simplefilter("ignore", FutureWarning)
        problems = _check_model_groups(spec, groups, bundles, fetch=fetch)
    return problems, len(groups)


def _check_model_groups(
    spec: StudySpec, groups: dict[str, list[TrialConfig]], bundles: dict[str, Any], *, fetch: bool
) -> list[Problem]:
    """:func:`check_model` on the first config of each group."""
    problems = []
    for group in groups.values():
        data = bundles.get(_group(group[0], DATA_FIELDS))
        cfg = local_config(group[0], spec.folder)
        _, problem = _checked(
            spec,
            group,
            MODEL_FIELDS,
            "backbone",
            lambda c=cfg, d=data: check_model(c, d, fetch=fetch),
        )
        if problem is not None:
            problems.append(problem)
    return problems


def check_model(cfg: TrialConfig, data: Any = None, *, fetch: bool = True) -> None:
    """Find (``fetch``: or download) the weights a trial would load and run ``cfg``'s model on
    one clip: the prompt on the CPU, the backbone on the meta device (shapes only), or all on
    the CPU where the meta device lacks an operator. Raises what building or running the model
    raises."""
    _check_weights(cfg, fetch=fetch)
    cfg = cfg.with_updates(pretrained=False, weights=None)  # shapes do not need the weights
    try:
        _forward_meta(cfg, data)
    except Exception:  # an operator without a meta kernel, or a real error: the CPU decides
        _forward_cpu(cfg, data)


def _model(cfg: TrialConfig, data: Any) -> Any:
    """``cfg``'s model for ``data``'s classes and normalisation (defaults without data)."""
    from mpbench.engine.build import build_model_for

    if data is None:
        return build_model_for(cfg, num_classes=DEFAULT_CLASSES)
    return build_model_for(cfg, num_classes=data.num_classes, mean=data.mean, std=data.std)


def _forward_meta(cfg: TrialConfig, data: Any) -> None:
    """The prompt on one CPU clip, the backbone on a meta tensor of the prompt's output shape."""
    import torch

    with torch.device("meta"):
        model = _model(cfg, data)
    prompt = model.prompt.to_empty(device="cpu")  # its values do not matter, only shapes
    with torch.no_grad():
        out = prompt(torch.rand(1, 3, cfg.frames + 1, cfg.crop, cfg.crop))
        x = torch.empty(tuple(out.prompts.shape), device="meta")  # 1 x 3 x T x H x W
        if model.info.layout == "BTCHW":
            x = x.transpose(1, 2)
        logits = model.backbone.eval()(x)  # dropout and drop path need no data in eval mode
    if tuple(logits.shape)[:1] != (1,) or logits.ndim != 2:
        raise ValueError(f"{cfg.backbone}: logits of shape {tuple(logits.shape)}, not 1 x classes")


def _forward_cpu(cfg: TrialConfig, data: Any) -> None:
    """The whole model on one random clip on the CPU."""
    import torch

    model = _model(cfg, data).eval()
    with torch.no_grad():
        model(torch.rand(1, 3, cfg.frames + 1, cfg.crop, cfg.crop))


def _check_weights(cfg: TrialConfig, *, fetch: bool) -> None:
    """The weights file (``weights``) or the cached published weights (``pretrained``) exist;
    missing published weights are downloaded (``fetch``) or could be (online)."""
    if cfg.weights is not None:
        if not Path(cfg.weights).is_file():
            raise FileNotFoundError(f"weights={cfg.weights!r}: no such file")
        return
    if not cfg.pretrained:
        return
    if cfg.size != "full":
        raise ValueError(
            f"{cfg.backbone}: published weights exist for size='full' only; got size={cfg.size!r}"
        )
    from mpbench.models import get_backbone
    from mpbench.models.fetch import ensure_checkpoint, offline
    from mpbench.models.pretrained import find_checkpoint

    info = get_backbone(cfg.backbone).info
    if fetch:
        ensure_checkpoint(info)
        return
    try:
        find_checkpoint(info)
    except FileNotFoundError:
        if offline():
            raise
