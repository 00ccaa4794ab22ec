"""Why KD does not help the demo's student: how soft the teacher's targets are, and whether students overfit.

    .venv/bin/python benchmarks/capacity_diagnostics.py --cache CACHE_DIR --runs RUN [RUN ...]

``--cache`` is a teacher logits cache of the demo regime (``cache.dir`` of a run of
examples/fashion_mnist.yaml, e.g. benchmarks/results/methods_runs/caches/logits-seed0 while the methods
benchmark runs): its first stored view is compared with the training labels (the cache's rows follow the
training split's order). For each of ``--runs`` (run folders), every model's last-epoch training loss
(on augmented views) is set beside its validation loss: a training loss well below the validation loss
means the model overfits, and there is a generalisation gap for KD to close. Prints both tables and
writes benchmarks/results/capacity_diagnostics.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from distill.config.schema import DataConfig
from distill.data.bundle import load_fashion_mnist_bundle
from distill.rundir import read_records

ROOT = Path(__file__).resolve().parents[1]


def teacher_targets(cache: Path, val_size: int) -> dict:
    labels = load_fashion_mnist_bundle(DataConfig(dataset="fashion_mnist", val_size=val_size)).train.targets
    logits = torch.tensor(np.asarray(np.load(cache / "logits.npy", mmap_mode="r")[0]), dtype=torch.float32)
    if len(logits) != len(labels):
        raise SystemExit(f"{cache} holds {len(logits)} rows, the training split {len(labels)}: not this regime's cache")
    rows = {"samples": len(labels), "teacher_accuracy": (logits.argmax(-1) == labels).float().mean().item()}
    for temperature in (1, 2, 4):
        p_label = torch.softmax(logits / temperature, -1)[torch.arange(len(labels)), labels]
        rows[f"T{temperature}"] = {"mean_p_label": p_label.mean().item(),
                                   "share_p_label_over_0.99": (p_label > 0.99).float().mean().item()}
    return rows


def last_epoch_losses(run: Path) -> dict:
    last: dict[str, dict] = {}
    for record in read_records(run / "metrics.jsonl"):
        if "train_loss" in record and "val_loss" in record:
            last[record["model"]] = {"epoch": record["epoch"], "train_loss": record["train_loss"],
                                     "label_loss": record.get("terms", {}).get("label"), "val_loss": record["val_loss"]}
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="+", default=[])
    parser.add_argument("--val-size", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "capacity_diagnostics.json")
    args = parser.parse_args()
    targets = teacher_targets(args.cache, args.val_size)
    print(f"teacher on the first stored training view: {targets['teacher_accuracy'] * 100:.2f}% accurate")
    print("| T | mean p(true class) | share of images above 0.99 |\n| --- | ---: | ---: |")
    for temperature in (1, 2, 4):
        row = targets[f"T{temperature}"]
        print(f"| {temperature} | {row['mean_p_label']:.3f} | {row['share_p_label_over_0.99'] * 100:.1f}% |")
    losses = {str(run): last_epoch_losses(run) for run in args.runs}
    print("\n| run | model | last epoch | training loss (its weighted label term) | validation loss |\n| --- | --- | ---: | ---: | ---: |")
    for run, models in losses.items():
        for model, row in models.items():
            label = "" if row["label_loss"] is None else f" ({row['label_loss']:.3f})"
            print(f"| {Path(run).name} | {model} | {row['epoch']} | {row['train_loss']:.3f}{label} | {row['val_loss']:.3f} |")
    args.json.write_text(json.dumps({"cache": str(args.cache), "teacher_targets": targets, "losses": losses}, indent=1))


if __name__ == "__main__":
    main()
