"""data_seed: the seed initialises the weights, data_seed pins the data (clips, order,
augmentation); a config without data_seed keeps its key and its behaviour."""

from __future__ import annotations

import torch

from mpbench.config import TrialConfig
from mpbench.engine.distributed import DistContext
from mpbench.engine.train import _setup

TINY = {
    "backbone": "x3d_xs",
    "size": "tiny",
    "dataset": "synth",
    "dataset_options": {
        "classes": 3,
        "train_clips": 8,
        "val_clips": 4,
        "video_frames": 5,
        "size": 32,
    },
    "frames": 4,
    "crop": 32,
    "batch_size": 4,
    "device": "cpu",
}


def _epoch(cfg: TrialConfig) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The training batches of epoch 0 (clips after augmentation, labels) and the first
    weight tensor of the model."""
    trainer = _setup(cfg, DistContext.from_env(), torch.device("cpu"))
    trainer.loaders.set_epoch(0, cfg.data_seed_value)
    batches = [
        torch.cat([t.flatten().float() for t in _tensors(batch)]) for batch in trainer.loaders.train
    ]
    return batches, next(trainer.model.parameters()).detach().clone()


def _tensors(batch: object) -> list[torch.Tensor]:
    """The tensors of a collated batch (a tensor, a tuple/list or a dict of them)."""
    if isinstance(batch, torch.Tensor):
        return [batch]
    if isinstance(batch, dict):
        return [t for v in batch.values() for t in _tensors(v)]
    if isinstance(batch, list | tuple):
        return [t for v in batch for t in _tensors(v)]
    return []


def test_the_same_data_seed_gives_the_same_data_whatever_the_seed() -> None:
    """Seeds 0 and 1 with data_seed 5: identical clips, order and augmentation, different
    initial weights; data_seed 6 gives other batches."""
    a_batches, a_weights = _epoch(TrialConfig(**TINY, seed=0, data_seed=5))
    b_batches, b_weights = _epoch(TrialConfig(**TINY, seed=1, data_seed=5))
    c_batches, _ = _epoch(TrialConfig(**TINY, seed=0, data_seed=6))
    assert len(a_batches) == len(b_batches) == 2
    assert all(torch.equal(x, y) for x, y in zip(a_batches, b_batches, strict=True))
    assert not torch.equal(a_weights, b_weights)
    assert not any(torch.equal(x, y) for x, y in zip(a_batches, c_batches, strict=True))


def test_without_data_seed_the_seed_sets_the_data_and_the_key_is_unchanged() -> None:
    """data_seed None follows the seed (seed 3 = data_seed 3) and leaves the cell key as it
    was before the field existed; setting it makes another cell."""
    plain = TrialConfig(**TINY, seed=3)
    assert plain.key() == "541e31074951"  # the key mpbench gave this config before data_seed
    assert "data_seed" not in plain.semantic_dict() and plain.data_seed_value == 3
    pinned = TrialConfig(**TINY, seed=3, data_seed=3)
    assert pinned.key() != plain.key() and pinned.semantic_dict()["data_seed"] == 3
    a_batches, a_weights = _epoch(plain)
    b_batches, b_weights = _epoch(pinned)
    assert all(torch.equal(x, y) for x, y in zip(a_batches, b_batches, strict=True))
    assert torch.equal(a_weights, b_weights)
