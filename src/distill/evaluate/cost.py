"""What a model costs: parameters, bytes on disk, CPU latency."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from distill.models.registry import count_parameters


def size_on_disk(model: nn.Module) -> int:
    """Bytes of the model's weights as a safetensors file."""
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        save_file(state, str(path))
        return path.stat().st_size


@torch.inference_mode()
def latency_ms(model: nn.Module, example: torch.Tensor, batch_size: int, repeats: int = 20, warmup: int = 3,
               prepare=None) -> float:
    """Median wall time of one forward pass at ``batch_size``, in milliseconds."""
    model.eval()
    prepare = prepare or (lambda x: x)
    reps = [1] * (example.dim() - 1)
    x = prepare(example[:1].repeat(batch_size, *reps))
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def model_cost(model: nn.Module, example: torch.Tensor, repeats: int = 20, measure_latency: bool = True,
               prepare=None) -> dict:
    cost = {"params": count_parameters(model), "size_bytes": size_on_disk(model)}
    if measure_latency:
        cost["latency_ms_b1"] = latency_ms(model, example, 1, repeats, prepare=prepare)
        cost["latency_ms_b256"] = latency_ms(model, example, 256, max(3, repeats // 4), prepare=prepare)
    else:
        cost["latency_ms_b1"] = cost["latency_ms_b256"] = None
    return cost
