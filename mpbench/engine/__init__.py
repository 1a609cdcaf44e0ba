"""The training engine: one trial from config to logged metrics (``run_trial``)."""

from mpbench.engine.errors import DivergenceError
from mpbench.engine.train import Callback, TrialResult, run_trial

__all__ = ["Callback", "DivergenceError", "TrialResult", "run_trial"]
