"""The dataset registry. A dataset is one module that calls :func:`register_dataset` with its
reader, its layout text, the writer of a tiny fake copy of its layout (for tests) and its
defaults, like benchopt's one-file datasets; nothing else names it.

Built-in datasets register in :mod:`mpbench.data.catalog`. A dataset of your own is one ``.py``
file in a folder listed in ``MPBENCH_DATASET_PATH`` (``os.pathsep``-separated, like
``PYTHONPATH``): the registry imports every such file the first time a dataset is looked up or
listed, in this process and in every worker it starts (they inherit the variable). See
docs/datasets.md, "Adding a dataset".
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpbench._registry import Registry

if TYPE_CHECKING:
    from mpbench.data.readers import Splits

PATH_ENV = "MPBENCH_DATASET_PATH"


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: what it is, its directory layout, its options and its fake layout.

    Args:
        name: registry name.
        description: one line.
        layout: the expected directory layout (shown in errors and ``mpbench list datasets``).
        reader: ``reader(root, **options) -> Splits`` (None: only ``render``).
        flip: default of the ``flip`` option.
        scale: default of the ``scale`` option.
        options: reader option name -> help text.
        fake_layout: ``fake_layout(root)`` writes a tiny copy of the layout with real video
            files under ``root`` (the registry-wide tests read every dataset's).
        render: ``render(options, frames=, sampling_rate=, seed=) -> (sources, class_names,
            meta)``: clips made in memory when no root is given (the synthetic benchmark).
        render_options: the options ``render`` takes.
        metadata: ``metadata(root) -> dict`` logged with the trial (e.g. a generator's knobs).

    Example:
        >>> info = next(d for d in list_datasets() if d.name == "ucf101")
        >>> "classInd.txt" in info.layout
        True
    """

    name: str
    description: str
    layout: str
    reader: Callable[..., Splits] | None = None
    flip: bool = True
    scale: tuple[float, float] = (0.4, 1.0)
    options: dict[str, str] = field(default_factory=dict)
    fake_layout: Callable[[Path], Any] | None = None
    render: Callable[..., tuple[dict[str, Any], list[str], dict[str, Any]]] | None = None
    render_options: tuple[str, ...] = ()
    metadata: Callable[[Path], dict[str, Any]] | None = None


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def reader_options(fn: Callable[..., Any]) -> dict[str, str]:
    """Keyword options of a reader with their defaults, as help text."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    return {p.name: f"default {p.default!r}" for p in params}


def register_dataset(
    name: str,
    *,
    description: str,
    layout: str,
    reader: Callable[..., Splits] | None = None,
    fake_layout: Callable[[Path], Any] | None = None,
    flip: bool = True,
    scale: tuple[float, float] = (0.4, 1.0),
    render: Callable[..., Any] | None = None,
    render_options: Sequence[str] = (),
    metadata: Callable[[Path], dict[str, Any]] | None = None,
) -> DatasetInfo:
    """Add one dataset to the registry (a duplicate name is a ValueError); returns its entry."""
    if reader is None and render is None:
        raise ValueError(f"dataset {name!r} needs a reader (files under a root) or a render")
    info = DatasetInfo(
        name, description, layout, reader, flip=flip, scale=scale,
        options=reader_options(reader) if reader else {}, fake_layout=fake_layout,
        render=render, render_options=tuple(render_options), metadata=metadata,
    )  # fmt: skip
    DATASETS.add(name, info)
    return info


def _dataset_files() -> list[Path]:
    """The ``.py`` files of the folders in ``MPBENCH_DATASET_PATH``, in path order."""
    folders = [Path(p).expanduser() for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    return [f for d in folders if d.is_dir() for f in sorted(d.glob("*.py"))]


def load_dataset_modules() -> list[str]:
    """Import every dataset file of ``MPBENCH_DATASET_PATH`` not imported yet (each registers
    itself); returns the names of the modules imported now."""
    loaded = []
    for path in _dataset_files():
        module = f"mpbench_datasets.{path.stem}"
        if module in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(module, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"{PATH_ENV}: cannot import {path}")
        sys.modules[module] = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(sys.modules[module])
        except BaseException:
            del sys.modules[module]
            raise
        loaded.append(module)
    return loaded


def get_dataset(name: str) -> DatasetInfo:
    """The registered dataset ``name`` (unknown: ValueError naming the close matches)."""
    load_dataset_modules()
    return DATASETS.get(name)


def list_datasets() -> list[DatasetInfo]:
    """Every registered dataset, in registration order."""
    load_dataset_modules()
    return [DATASETS.get(n) for n in DATASETS.names()]
