"""The one place where a TrialConfig becomes keyword arguments: data, model, optimiser, loaders."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from mpbench._device import resolve_device as _resolve
from mpbench._fields import same_named
from mpbench._pixels import MEAN, STD
from mpbench.config import TrialConfig
from mpbench.engine.distributed import DistContext
from mpbench.engine.state import worker_init

# The data order of epoch e comes from a generator seeded by (data seed, e): identical for every
# variant of one seed (paired comparisons) and reproducible after a resume without saved state.
# The data seed is ``data_seed`` when set, else the seed (TrialConfig.data_seed_value).
_EPOCH_STRIDE = 1_000_003


def resolve_device(name: str, dist_ctx: DistContext) -> torch.device:
    """'auto' -> CUDA when present (this process's local rank under torchrun), else CPU."""
    return _resolve(name, index=dist_ctx.local_rank)


def autocast_factory(amp: str, device: torch.device) -> Callable[[], Any]:
    """A context factory for the forward pass: autocast in bf16/fp16, or a no-op."""
    if amp == "none":
        return contextlib.nullcontext
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("amp 'fp16' needs CUDA; use amp 'bf16' or 'none' on CPU")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def build_data_for(config: TrialConfig, *, seed: int | None = None) -> Any:
    """The DataBundle of ``config`` (dataset, root, clip shape, seed and dataset options); the
    seed is ``seed`` where given, else the config's data seed."""
    from mpbench.data import build_data

    return build_data(
        config.dataset,
        root=config.data_root,
        **same_named(config, "frames", "sampling_rate", "crop"),
        seed=config.data_seed_value if seed is None else seed,
        options=dict(config.dataset_options),
    )


def build_model_for(
    config: TrialConfig, *, num_classes: int, mean: Any = MEAN, std: Any = STD
) -> nn.Module:
    """The prompted model of ``config``, built under the trial's seed.

    The backbone is initialised from a generator seeded by ``config.seed`` alone and the prompt's
    own parameters from a separate stream, so for one seed every variant starts from the same
    backbone weights.
    """
    from mpbench.models import build_model
    from mpbench.variants import get_variant

    variant = get_variant(config.variant).with_overrides(
        tav_weight=config.tav_weight, init_m=config.init_m, init_n=config.init_n
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(
            config.backbone,
            variant=variant,
            num_classes=num_classes,
            **same_named(config, "frames", "crop", "size", "pretrained", "weights"),
            mean=mean,
            std=std,
            **regularisation_kwargs(config),
        )
    return model


def regularisation_kwargs(config: TrialConfig) -> dict[str, float]:
    """The backbone options ``dropout`` and ``drop_path`` that ``config`` sets (None: unset)."""
    values = {"dropout": config.dropout, "drop_path": config.drop_path}
    return {k: v for k, v in values.items() if v is not None}


def param_groups(model: nn.Module, config: TrialConfig) -> list[dict[str, Any]]:
    """``split``: backbone weights (decayed), norms and biases (not decayed), prompt (own lr, no
    decay); ``single``: every parameter in one group at lr and weight_decay, as the reference
    code's optimizer does (its only other group, names with "bn", is empty for TimeSformer)."""
    if config.param_groups == "single":
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": params, "weight_decay": config.weight_decay, "lr_mult": 1.0}]
    prompt_ids = {id(p) for p in model.prompt.parameters()}
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad and id(p) not in prompt_ids:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay, "lr_mult": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_mult": 1.0},
    ]
    prompt = [p for p in model.prompt.parameters() if p.requires_grad]
    if prompt:
        groups.append({"params": prompt, "weight_decay": 0.0, "lr_mult": config.prompt_lr_mult})
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, config: TrialConfig) -> torch.optim.Optimizer:
    """SGD (momentum, ``nesterov`` as configured) or AdamW over :func:`param_groups`."""
    groups = param_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov
        )
    return torch.optim.AdamW(groups, lr=config.lr)


class ShardSampler(Sampler[int]):
    """Every ``world``-th index from ``rank``, in order, without padding: the shards of all ranks
    together hold each evaluation clip exactly once, so summed metrics are exact.

    Args:
        size: dataset length.
        rank: this process's rank.
        world: number of processes.

    Example:
        >>> list(ShardSampler(5, rank=1, world=2))
        [1, 3]
    """

    def __init__(self, size: int, *, rank: int, world: int) -> None:
        self.indices = range(rank, size, world)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class Loaders:
    """Training and validation loaders and the per-epoch step budget."""

    train: DataLoader
    val: DataLoader
    steps_per_epoch: int

    def set_epoch(self, epoch: int, seed: int) -> None:
        """Fix the shuffle order of ``epoch`` (a pure function of seed and epoch)."""
        sampler = self.train.sampler
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        else:
            self.train.generator.manual_seed(seed * _EPOCH_STRIDE + epoch)  # type: ignore[union-attr]


def make_loader(
    dataset: Dataset,
    config: TrialConfig,
    *,
    train: bool,
    dist_ctx: DistContext,
    device: torch.device,
) -> DataLoader:
    """A DataLoader over ``dataset`` with mpbench's collate, seeding and sharding."""
    from mpbench.data import collate_clips

    sampler: Sampler[int] | None = None
    if dist_ctx.enabled and train:
        sampler = DistributedSampler(
            dataset,
            num_replicas=dist_ctx.world_size,
            rank=dist_ctx.rank,
            shuffle=True,
            seed=config.data_seed_value,
        )
    elif dist_ctx.enabled:
        sampler = ShardSampler(len(dataset), rank=dist_ctx.rank, world=dist_ctx.world_size)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        drop_last=train,
        num_workers=config.workers,
        collate_fn=collate_clips,
        worker_init_fn=worker_init,
        generator=torch.Generator().manual_seed(config.data_seed_value),
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def build_loaders(
    data: Any, config: TrialConfig, *, dist_ctx: DistContext, device: torch.device
) -> Loaders:
    """Loaders for ``data`` (a DataBundle) and the steps per epoch under ``max_steps``."""
    train = make_loader(data.train, config, train=True, dist_ctx=dist_ctx, device=device)
    val = make_loader(data.val, config, train=False, dist_ctx=dist_ctx, device=device)
    if len(train) == 0:
        raise ValueError(
            f"the training set has {len(data.train)} clips, fewer than one batch of "
            f"{config.batch_size}: lower batch_size or add clips"
        )
    steps = len(train)
    if config.max_steps is not None:
        steps = min(steps, math.ceil(config.max_steps / config.epochs))
    return Loaders(train=train, val=val, steps_per_epoch=steps)
