"""Data-parallel training under torchrun: the process group, this process's rank and device.

With ``WORLD_SIZE > 1`` (set by torchrun) every process joins one process group (NCCL on
GPUs, gloo on CPUs), trains on its own share of each epoch and DDP averages the gradients; a
single process (``WORLD_SIZE`` unset or 1) needs no process group and every collective here is
then a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Distributed", "setup"]


@dataclass(frozen=True)
class Distributed:
    """A process's place in a (possibly one-process) training run.

    Attributes
    ----------
    rank
        This process's rank; rank 0 writes the run folder and validates.
    world
        The number of processes.
    device
        The device this process trains on (its own GPU under DDP on CUDA).
    """

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Whether this is rank 0, the process that writes files and validates."""
        return self.rank == 0

    def wrap(self, net: nn.Module) -> nn.Module:
        """Wrap ``net`` in DDP when there are several processes.

        Parameters
        ----------
        net
            The module whose forward pass computes the loss (its gradients are averaged).

        Returns
        -------
        nn.Module
            :class:`~torch.nn.parallel.DistributedDataParallel` around ``net``, or ``net``
            itself for one process: the module to call in each step.
        """
        if self.world <= 1:
            return net
        return nn.parallel.DistributedDataParallel(
            net, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is set on any process (every process must call this).

        Parameters
        ----------
        flag
            This process's value.

        Returns
        -------
        bool
            ``flag`` itself for one process, the OR over all processes otherwise.
        """
        if self.world <= 1:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        torch.distributed.all_reduce(t)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        """Wait for every process (nothing with one)."""
        if self.world > 1:
            torch.distributed.barrier()

    def weight_spread(self, model: nn.Module) -> float:
        """Largest difference between this rank's weights and rank 0's (0.0 when in sync).

        A collective: every process must call it, and only with several processes.

        Parameters
        ----------
        model
            The trained model (the same architecture on every rank).

        Returns
        -------
        float
            The maximum over all ranks and weights of ``|w - w_rank0|``.
        """
        flat = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])
        flat = flat.to(self.device)
        reference = flat.clone()
        torch.distributed.broadcast(reference, src=0)
        spread = (flat - reference).abs().max()
        torch.distributed.all_reduce(spread, op=torch.distributed.ReduceOp.MAX)
        return float(spread)

    def close(self) -> None:
        """Leave the process group (nothing with one process or when it is already gone)."""
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def setup(device: torch.device) -> Distributed:
    """Join the process group under torchrun and pick this process's device.

    Parameters
    ----------
    device
        The configured device (:func:`mrirecon.device.resolve_device`); under DDP on CUDA each
        process takes the GPU of its ``LOCAL_RANK`` instead.

    Returns
    -------
    Distributed
        Rank, world size and device of this process.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(0, 1, device)
    dist = torch.distributed
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    return Distributed(rank, world, device)
