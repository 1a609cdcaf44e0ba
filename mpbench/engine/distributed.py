"""One trial on several processes through torchrun (DDP): rank bookkeeping and reductions."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a torchrun launch (world_size 1 when launched alone).

    Args:
        rank: global rank of this process.
        world_size: number of processes.
        local_rank: rank on this machine (the CUDA device index under torchrun).

    Example:
        >>> DistContext.from_env().is_main
        True
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> DistContext:
        """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK variables."""
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs to MLflow and writes checkpoints."""
        return self.rank == 0

    def init(self, device: torch.device) -> None:
        """Join the process group (NCCL on CUDA, gloo on CPU) when launched by torchrun."""
        if self.enabled and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, rank=self.rank, world_size=self.world_size)

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over processes (a no-op alone); CPU tensors go through the group's device."""
        if not self.enabled:
            return t
        device = torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else t.device
        out = t.to(device).clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out.to(t.device)

    def close(self) -> None:
        """Leave the process group."""
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
