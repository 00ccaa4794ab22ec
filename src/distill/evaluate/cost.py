"""What a model costs: parameters, multiply-adds, bytes on disk, CPU latency.

Parameters say how big a model is, not how slow: a head on a whole feature map is mostly
parameters and few multiply-adds, a convolution the other way round. So every cost table shows
MACs (multiply-accumulates per sample, counted by ``torch.utils.flop_counter`` as FLOPs / 2 over
convolutions and matrix products) next to the parameters.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from distill.models.registry import count_parameters


def size_on_disk(model: nn.Module) -> int:
    """Bytes of the model's weights as a safetensors file."""
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        save_file(state, str(path))
        return path.stat().st_size


def multiply_adds(model: nn.Module, example: torch.Tensor, prepare=None) -> int | None:
    """Multiply-accumulates of one forward pass on one sample (``example[:1]``); None if it cannot be counted."""
    prepare = prepare or (lambda x: x)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(prepare(example[:1]))
    except Exception:  # an exotic model the counter cannot trace: leave the column empty rather than fail the run
        return None
    finally:
        model.train(was_training)
    return int(counter.get_total_flops() // 2)


def format_macs(value: int | None) -> str:
    """1.92M, 8.26M, 25.4k: multiply-adds for a table."""
    if value is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f}{unit}"
    return str(value)


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
    cost = {"params": count_parameters(model), "macs": multiply_adds(model, example, prepare),
            "size_bytes": size_on_disk(model)}
    if measure_latency:
        cost["latency_ms_b1"] = latency_ms(model, example, 1, repeats, prepare=prepare)
        cost["latency_ms_b256"] = latency_ms(model, example, 256, max(3, repeats // 4), prepare=prepare)
    else:
        cost["latency_ms_b1"] = cost["latency_ms_b256"] = None
    return cost
