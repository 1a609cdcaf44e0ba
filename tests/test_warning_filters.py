"""The warning filters of ``[tool.pytest.ini_options]`` silence named third-party deprecations
only: a DeprecationWarning or FutureWarning issued from mpbench's own code is shown."""

from __future__ import annotations

import warnings

import pytest
from _pytest.config import parse_warning_filter

SOURCE = "import warnings\ndef warn(message, category):\n    warnings.warn(message, category)\n"


def issue_from(module: str, message: str, category: type[Warning]) -> None:
    """Issue ``message`` from a function of a module named ``module`` (``stacklevel=1``: the
    warning's module is that module)."""
    namespace = {"__name__": module}
    exec(compile(SOURCE, f"{module.replace('.', '/')}.py", "exec"), namespace)
    namespace["warn"](message, category)


def seen_under_ini_filters(
    config: pytest.Config, module: str, message: str, category: type[Warning]
) -> list[warnings.WarningMessage]:
    """The warnings that get through the ini filters, applied as pytest applies them (in order,
    each later one first), above an ``always`` default."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        for entry in config.getini("filterwarnings"):
            warnings.filterwarnings(*parse_warning_filter(entry, escape=False))
        issue_from(module, message, category)
    return seen


@pytest.mark.parametrize("category", [DeprecationWarning, FutureWarning])
@pytest.mark.parametrize("module", ["mpbench.engine.train", "mpbench.study.launch"])
@pytest.mark.parametrize(
    "message",
    [
        "this mpbench option is deprecated",
        # the texts of the ignored third-party warnings, raised from mpbench, still show
        "`torch.jit.script` is deprecated. Please switch to `torch.compile` or `torch.export`.",
        "'saved_variables' is deprecated; use 'saved_tensors'",
        "The ``noload`` loader strategy is deprecated and will be removed in a future release.",
    ],
)
def test_a_deprecation_from_mpbench_is_not_ignored(
    pytestconfig: pytest.Config, module: str, message: str, category: type[Warning]
) -> None:
    seen = seen_under_ini_filters(pytestconfig, module, message, category)
    assert [(str(w.message), w.category) for w in seen] == [(message, category)]


@pytest.mark.parametrize(
    ("module", "message", "category"),
    [
        ("torch.jit._script", "`torch.jit.script` is deprecated. Please switch", FutureWarning),
        ("pytorchvideo.layers.swish", "'saved_variables' is deprecated; use", DeprecationWarning),
        (
            "mlflow.store.tracking.sqlalchemy_store",
            "The ``noload`` loader strategy is deprecated and will be removed",
            DeprecationWarning,
        ),
    ],
)
def test_the_named_third_party_deprecations_are_ignored(
    pytestconfig: pytest.Config, module: str, message: str, category: type[Warning]
) -> None:
    assert seen_under_ini_filters(pytestconfig, module, message, category) == []


def test_another_deprecation_of_a_third_party_module_is_shown(pytestconfig: pytest.Config) -> None:
    seen = seen_under_ini_filters(pytestconfig, "torch.jit._script", "other", DeprecationWarning)
    assert len(seen) == 1
