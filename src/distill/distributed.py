"""Process-group helpers for ``torchrun`` runs: gloo on CPU, nccl on GPU.

Every helper is a no-op (or returns the single-process answer) when no process group is
running, so the same code serves one process and many.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn


def launched() -> bool:
    """True in a process started by torchrun (or torch.distributed.run) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: torch.device) -> torch.device:
    """Join the process group torchrun described in the environment; returns this rank's device."""
    if not launched() or active():
        return _rank_device(device)
    device = _rank_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(minutes=30))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _rank_device(device: torch.device) -> torch.device:
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", local_rank())
    return device


def share_threads() -> None:
    """Split the CPU cores between the ranks on this machine, unless threads were set explicitly."""
    if launched():
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // per_node))


def teardown() -> None:
    if active():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(values: dict[str, float]) -> dict[str, float]:
    """Sum each value over all ranks (keys must be the same on every rank)."""
    if not active() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return dict(zip(keys, t.cpu().tolist(), strict=True))


def average_gradients(params: list[nn.Parameter]) -> None:
    """Average the gradients of parameters that DistributedDataParallel does not manage (method adapters)."""
    if not active():
        return
    grads: list[Tensor] = [p.grad for p in params if p.grad is not None]
    for g in grads:
        dist.all_reduce(g)
        g.div_(world_size())


def wrap(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """DistributedDataParallel around ``model`` when a process group is running, else ``model``."""
    if not active() or not any(p.requires_grad for p in model.parameters()):
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


RELAUNCHED = "DISTILL_RELAUNCHED"  # set in the ranks that relaunch() starts: they leave the resume hint to it


def relaunch(nproc: int, argv: list[str]) -> int:
    """Run ``python -m distill ARGV`` in ``nproc`` processes on this machine via torch.distributed.run."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.run import main as torchrun

    args = ["--standalone", "--nproc-per-node", str(nproc), "-m", "distill", *argv]
    previous = os.environ.get(RELAUNCHED)
    os.environ[RELAUNCHED] = "1"  # the ranks inherit it
    try:
        torchrun(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    except SignalException as exc:  # Ctrl-C (SIGINT) or SIGTERM reached the launcher: an interruption, not a bug
        raise KeyboardInterrupt from exc
    except Exception as exc:  # torchrun raises ChildFailedError with the failing rank's traceback
        print(f"distributed run failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if previous is None:
            os.environ.pop(RELAUNCHED, None)
        else:
            os.environ[RELAUNCHED] = previous
    return 0
