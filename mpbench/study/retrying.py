"""An Optuna storage that waits out outages of the storage it wraps (:func:`mpbench.outage.call`).

A plain subclass of ``optuna.storages.BaseStorage`` with one delegating method per method of the
base class, so that Optuna's own storage contract tests (``optuna.testing.pytest_storages``) run
against it like against any storage (tests/test_outage.py). Importing it imports optuna: it is
opened only by :func:`mpbench.study.storage.open_storage`.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import Any, TypeVar

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study._frozen import FrozenStudy
from optuna.study._study_direction import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from mpbench.outage import call

R = TypeVar("R")


class RetryingStorage(BaseStorage):
    """An Optuna storage whose every call waits out outages of ``inner``.

    Args:
        inner: the storage to wrap (journal, RDB, in-memory).
        timeout: the outage timeout in seconds (default: :func:`mpbench.outage.timeout_seconds`).

    Example:
        >>> storage = RetryingStorage(optuna.storages.InMemoryStorage())  # doctest: +SKIP
    """

    def __init__(self, inner: BaseStorage, *, timeout: float | None = None) -> None:
        self.inner, self.timeout = inner, timeout

    def __getattr__(self, name: str) -> Any:
        """Storage-specific extras of ``inner`` (e.g. an RDB storage's ``engine``)."""
        if name == "inner":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _call(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` of the wrapped storage, retried through outages."""
        return call(fn, *args, what=f"Optuna storage ({fn.__name__})", timeout=self.timeout)

    # studies
    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        """Create a study; its id."""
        return self._call(self.inner.create_new_study, directions, study_name)

    def delete_study(self, study_id: int) -> None:
        """Delete a study."""
        return self._call(self.inner.delete_study, study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        """Set a user attribute of a study."""
        return self._call(self.inner.set_study_user_attr, study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        """Set a system attribute of a study."""
        return self._call(self.inner.set_study_system_attr, study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        """The id of the study named ``study_name``."""
        return self._call(self.inner.get_study_id_from_name, study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        """The name of a study."""
        return self._call(self.inner.get_study_name_from_id, study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        """The optimisation directions of a study."""
        return self._call(self.inner.get_study_directions, study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        """The user attributes of a study."""
        return self._call(self.inner.get_study_user_attrs, study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        """The system attributes of a study."""
        return self._call(self.inner.get_study_system_attrs, study_id)

    def get_all_studies(self) -> list[FrozenStudy]:
        """Every study of the storage."""
        return self._call(self.inner.get_all_studies)

    # trials
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        """Create a trial (from ``template_trial`` if given); its id."""
        return self._call(self.inner.create_new_trial, study_id, template_trial)

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        """Set a parameter of a trial."""
        fn = self.inner.set_trial_param
        return self._call(fn, trial_id, param_name, param_value_internal, distribution)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        """The id of trial number ``trial_number`` of a study."""
        fn = self.inner.get_trial_id_from_study_id_trial_number
        return self._call(fn, study_id, trial_number)

    def get_trial_number_from_id(self, trial_id: int) -> int:
        """The number of a trial in its study."""
        return self._call(self.inner.get_trial_number_from_id, trial_id)

    def get_trial_param(self, trial_id: int, param_name: str) -> float:
        """The internal value of a parameter of a trial."""
        return self._call(self.inner.get_trial_param, trial_id, param_name)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        """Set a trial's state (and values); whether it changed."""
        return self._call(self.inner.set_trial_state_values, trial_id, state, values)

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        """Report an intermediate value of a trial."""
        fn = self.inner.set_trial_intermediate_value
        return self._call(fn, trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        """Set a user attribute of a trial."""
        return self._call(self.inner.set_trial_user_attr, trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        """Set a system attribute of a trial."""
        return self._call(self.inner.set_trial_system_attr, trial_id, key, value)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        """One trial."""
        return self._call(self.inner.get_trial, trial_id)

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        """The trials of a study (those in ``states`` if given)."""
        return self._call(self.inner.get_all_trials, study_id, deepcopy, states)

    def get_n_trials(
        self, study_id: int, state: tuple[TrialState, ...] | TrialState | None = None
    ) -> int:
        """How many trials a study has (in ``state`` if given)."""
        return self._call(self.inner.get_n_trials, study_id, state)

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        """The best trial of a single-objective study."""
        return self._call(self.inner.get_best_trial, study_id)

    def get_trial_params(self, trial_id: int) -> dict[str, Any]:
        """The parameters of a trial."""
        return self._call(self.inner.get_trial_params, trial_id)

    def get_trial_user_attrs(self, trial_id: int) -> dict[str, Any]:
        """The user attributes of a trial."""
        return self._call(self.inner.get_trial_user_attrs, trial_id)

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        """The system attributes of a trial."""
        return self._call(self.inner.get_trial_system_attrs, trial_id)

    def check_trial_is_updatable(self, trial_id: int, trial_state: TrialState) -> None:
        """Raise if a trial in ``trial_state`` may no longer be changed."""
        return self._call(self.inner.check_trial_is_updatable, trial_id, trial_state)

    def remove_session(self) -> None:
        """Release the wrapped storage's session."""
        return self._call(self.inner.remove_session)
