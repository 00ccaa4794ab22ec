"""Where a run ran: recorded in every summary.json, so runs on different set-ups can be told apart."""

from __future__ import annotations

import platform

import torch

from distill import distributed as dist


def run_environment(device: torch.device | str) -> dict:
    """World size, device, CPU threads and versions: what the config alone does not say about a run."""
    from distill import __version__

    device = torch.device(device)
    info = {
        "world_size": dist.world_size(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
        "distill": __version__,
        "python": platform.python_version(),
    }
    if device.type == "cuda" and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(device)
    return info
