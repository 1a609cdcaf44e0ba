"""mpbench's RetryingStorage passes Optuna's own storage contract tests
(``optuna.testing.pytest_storages.StorageTestCase``), wrapping the storages mpbench opens: a
journal file (the default) and, as Optuna's reference, the in-memory storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.testing.pytest_storages import StorageTestCase

from mpbench.study import storage as S
from mpbench.study.retrying import RetryingStorage


@pytest.fixture(params=["inmemory", "journal"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RetryingStorage]:
    """A RetryingStorage around a fresh in-memory or journal file storage."""
    if request.param == "inmemory":
        inner: optuna.storages.BaseStorage = optuna.storages.InMemoryStorage()
    else:
        inner = JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    yield RetryingStorage(inner, timeout=5)


class TestRetryingStorageContract(StorageTestCase):
    """Every test of Optuna's storage contract, run on the wrapper."""


def test_open_storage_wraps_the_journal(tmp_path: Path) -> None:
    """What the studies open is the wrapper around a journal storage."""
    storage = S.open_storage(str(tmp_path / "optuna.journal"))
    assert isinstance(storage, RetryingStorage)
    assert isinstance(storage.inner, JournalStorage)
