"""Classification metrics from logits and labels, accumulated without storing predictions."""

from __future__ import annotations

import torch
from torch import Tensor


class ClassificationMeter:
    """Accumulates loss, top-k hits and a confusion matrix over batches.

    Args:
        num_classes: number of classes (fixes the confusion matrix size).

    Example:
        >>> m = ClassificationMeter(num_classes=3)
        >>> m.update(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0]), loss_sum=0.5)
        >>> m.compute()["top1"]
        1.0
    """

    def __init__(self, *, num_classes: int) -> None:
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
        self.top5_hits = 0
        self.loss_sum = 0.0

    def update(self, logits: Tensor, labels: Tensor, *, loss_sum: float) -> None:
        """Add a batch: logits B x K, labels B, the summed (not mean) loss of the batch."""
        logits, labels = logits.detach().float().cpu(), labels.cpu()
        pred = logits.argmax(dim=1)
        idx = labels * self.num_classes + pred
        self.confusion += torch.bincount(idx, minlength=self.num_classes**2).view_as(self.confusion)
        k = min(5, self.num_classes)
        self.top5_hits += int((logits.topk(k, dim=1).indices == labels[:, None]).any(1).sum())
        self.loss_sum += loss_sum

    def state(self) -> Tensor:
        """All sums as one float64 vector (for an all-reduce across processes)."""
        head = torch.tensor([self.top5_hits, self.loss_sum], dtype=torch.float64)
        return torch.cat([head, self.confusion.flatten().double()])

    def load_state(self, vec: Tensor) -> None:
        """Inverse of :meth:`state` (after the all-reduce)."""
        self.top5_hits, self.loss_sum = int(vec[0]), float(vec[1])
        self.confusion = vec[2:].round().long().view(self.num_classes, self.num_classes)

    def compute(self) -> dict[str, float]:
        """top1, top5, mean per-class accuracy (classes that occur only) and mean loss."""
        n = int(self.confusion.sum())
        if n == 0:
            raise ValueError("no samples were evaluated: the evaluation set is empty")
        per_class = self.confusion.sum(dim=1)
        seen = per_class > 0
        recall = self.confusion.diag()[seen].double() / per_class[seen].double()
        return {
            "top1": float(self.confusion.diag().sum()) / n,
            "top5": self.top5_hits / n,
            "mean_class_acc": float(recall.mean()),
            "loss": self.loss_sum / n,
        }
