"""Where a run ran: recorded in every summary.json, so runs on different set-ups can be told apart."""

from __future__ import annotations

import platform
import sys

import torch

from distill import distributed as dist


def run_environment(device: torch.device | str) -> dict:
    """World size, device, CPU threads and versions: what the config alone does not say about a run."""
    device = torch.device(device)
    info = {
        "world_size": dist.world_size(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
        "distill": sys.modules["distill"].__version__,  # the package is imported (we are in it); no cycle
        "python": platform.python_version(),
    }
    if device.type == "cuda" and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(device)
    return info
