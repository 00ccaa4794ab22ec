"""Batch augmentation speed: distill's plain-torch crop+flip vs kornia's, side by side.

    .venv/bin/python benchmarks/augment.py [--batch 128] [--repeats 30]

Needs `pip install kornia` for the comparison. Prints a table (median ms per batch) and writes
benchmarks/results/augment.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from distill.data.augment import BatchAugment

ROOT = Path(__file__).resolve().parents[1]


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, 1, 28, 28)
    ours = BatchAugment(crop_padding=2, hflip=True)
    generator = torch.Generator().manual_seed(0)
    rows = {"distill (torch gather)": median_ms(lambda: ours(x, generator), args.repeats)}
    try:
        import kornia.augmentation as K

        kornia_aug = torch.nn.Sequential(K.RandomCrop((28, 28), padding=2), K.RandomHorizontalFlip())
        rows["kornia RandomCrop+RandomHorizontalFlip"] = median_ms(lambda: kornia_aug(x), args.repeats)
    except ImportError:
        print("kornia is not installed: pip install kornia to compare")
    base = rows["distill (torch gather)"]
    print(f"{'implementation':<42} {'ms/batch':>9} {'x distill':>9}   (batch {args.batch}, 1x28x28)")
    for name, ms in rows.items():
        print(f"{name:<42} {ms:>9.3f} {ms / base:>9.1f}")
    out = ROOT / "benchmarks" / "results" / "augment.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"batch": args.batch, "threads": args.threads, "median_ms": rows}, indent=2))


if __name__ == "__main__":
    main()
