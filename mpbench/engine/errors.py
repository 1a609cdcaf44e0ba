"""Errors a trial raises (their own module: the loop raises them, the recorder and the study
worker classify them, and neither imports the other for it)."""

from __future__ import annotations


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite.

    Args:
        epoch: epoch index (0-based) where it happened.
        step: global optimiser step (0-based) of the first non-finite loss.
        loss: the loss value seen.

    Example:
        >>> str(DivergenceError(epoch=1, step=17, loss=float("nan")))
        'training diverged: loss nan at epoch 1, step 17'
    """

    trial_status = "diverged"  # tracking.TrialStatus.DIVERGED (tracking.status_of reads it)

    def __init__(self, *, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"training diverged: loss {loss} at epoch {epoch}, step {step}")
        self.epoch, self.step, self.loss = epoch, step, loss
