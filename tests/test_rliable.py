"""mpbench's aggregate statistics agree with rliable (Agarwal et al. 2021, the reference code) on
the same scores: the IQM and the probability of improvement from ``rliable.metrics``. rliable's
stratified bootstrap (``rliable.library``) needs ``arch``, whose 7.x releases (rliable pins
< 8) do not import under pandas 3, so the stratified bootstrap is checked against the exact
bootstrap distribution, enumerated by hand on a task small enough to list every resample."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from rliable import metrics

from mpbench.report.stats import boot_rng, iqm, stratified_iqm, stratified_prob_greater

# runs x tasks, accuracies on a 1/20 grid so that ties occur (rliable's matrix layout)
RNG = np.random.default_rng(7)
X = RNG.integers(4, 17, size=(6, 4)) / 20
Y = RNG.integers(2, 15, size=(6, 4)) / 20


def _pairs(x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (x runs, y runs) of each task."""
    return list(zip(_tasks(x), _tasks(y), strict=True))


def _tasks(scores: np.ndarray) -> list[np.ndarray]:
    """The runs of each task (the columns of rliable's matrix)."""
    return [scores[:, m] for m in range(scores.shape[1])]


def test_iqm_agrees_with_rliable() -> None:
    assert iqm(X.ravel()) == pytest.approx(metrics.aggregate_iqm(X), abs=1e-12)
    point, _, _ = stratified_iqm(_tasks(X), resamples=10, rng=boot_rng(0, "x"))
    assert point == pytest.approx(metrics.aggregate_iqm(X), abs=1e-12)


def test_probability_of_improvement_agrees_with_rliable() -> None:
    y = Y.copy()
    y[:, 0] = X[:, 0]  # one task where both are identical: rliable's 0.5 branch
    point, _, _ = stratified_prob_greater(_pairs(X, y), rng=boot_rng(0, "p"))
    assert point == pytest.approx(metrics.probability_of_improvement(X, y), abs=1e-12)
    reverse, _, _ = stratified_prob_greater(_pairs(y, X), rng=boot_rng(0, "q"))
    assert reverse == pytest.approx(metrics.probability_of_improvement(y, X), abs=1e-12)
    assert point + reverse == pytest.approx(1.0)


def _exact_stratified_iqms(tasks: list[np.ndarray]) -> np.ndarray:
    """IQM of every stratified resample (each task's runs drawn with replacement, tasks kept
    apart), all equally likely: the exact bootstrap distribution."""
    per_task = [list(itertools.product(t, repeat=len(t))) for t in tasks]
    draws = [np.concatenate(draw) for draw in itertools.product(*per_task)]
    return np.asarray(iqm(np.array(draws)))


def test_stratified_bootstrap_matches_the_exact_bootstrap_distribution() -> None:
    tasks = [np.array([0.1, 0.4, 0.5]), np.array([0.6, 0.65, 0.9])]  # 27 x 27 resamples
    exact = _exact_stratified_iqms(tasks)
    low, high = np.quantile(exact, [0.025, 0.975])
    _, boot_low, boot_high = stratified_iqm(tasks, resamples=40_000, rng=boot_rng(1, "exact"))
    spread = float(exact.max() - exact.min())
    assert boot_low == pytest.approx(low, abs=0.02 * spread)
    assert boot_high == pytest.approx(high, abs=0.02 * spread)
    # a bootstrap that pooled the tasks before resampling would reach lower IQMs
    pooled = np.concatenate(tasks)
    pooled_iqms = iqm(np.array(list(itertools.product(pooled, repeat=len(pooled)))))
    pooled_low = np.quantile(pooled_iqms, 0.025)
    assert pooled_low < low - 0.05 * spread
