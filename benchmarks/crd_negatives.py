"""CRD's two negative sources side by side: the official memory bank + NCE vs distill's FIFO queues + InfoNCE.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/crd_negatives.py [--samples 55000] [--batch 128] [--repeats 7]

One forward + backward of the CRD loss alone (no network), k = 16384 negatives, feat_dim 128, the
queue full; process CPU time, one thread, median of ``--repeats`` steps after two warm-up steps,
both in the same process. Prints a table and writes benchmarks/results/crd_negatives.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from distill.methods import Batch, Outputs, build_method

ROOT = Path(__file__).resolve().parents[1]


def step_seconds(negatives: str, labels: torch.Tensor, batch: int, repeats: int) -> float:
    method = build_method("crd", {"student_layer": "s", "teacher_layer": "t", "negatives": negatives})
    s, t = torch.randn(batch, 64), torch.randn(batch, 256)
    method.setup(Outputs(torch.zeros(batch, 10), {"s": s}), Outputs(torch.zeros(batch, 10), {"t": t}))
    method.setup_data(labels)
    method.filled.fill_(len(method.queue_s))  # as after the first epoch: every queue slot in use
    times = []
    for step in range(repeats + 2):
        index = torch.randint(0, len(labels), (batch,))
        x = s.clone().requires_grad_(True)
        started = time.process_time()
        losses = method.losses(Outputs(torch.zeros(batch, 10), {"s": x}), Outputs(torch.zeros(batch, 10), {"t": t}),
                               Batch(torch.zeros(batch, 1), labels[index], index=index))
        sum(losses.values()).backward()
        if step >= 2:
            times.append(time.process_time() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=55000, help="training-set size (Fashion-MNIST's train split)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    labels = torch.randint(0, 10, (args.samples,))
    rows = {neg: step_seconds(neg, labels, args.batch, args.repeats) for neg in ("queue", "memory_bank")}
    print("| negatives | CPU s per step (loss only) |\n| --- | --- |")
    for neg, seconds in rows.items():
        print(f"| {neg} | {seconds:.3f} |")
    ratio = rows["memory_bank"] / rows["queue"]
    print(f"memory_bank / queue: {ratio:.1f}x")
    out = ROOT / "benchmarks" / "results" / "crd_negatives.json"
    out.write_text(json.dumps({"args": vars(args), "seconds_per_step": rows, "ratio": ratio, "threads": 1}, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
