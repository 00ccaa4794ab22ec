"""Teacher-cache build time on sentences: rows in length order (what the cache does) vs stored order.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/cache_text_order.py [--sentences 2000] [--repeats 3]

The teacher is MiniLM with a classification head (untrained weights time the same as fine-tuned
ones); the sentences are the first --sentences of SST-2 train. The two orders are timed
alternately, --repeats times each; the table shows the medians and their ratio, and the JSON
goes to benchmarks/results/cache_text_order.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from distill.config.schema import DataConfig
from distill.data.text_bundle import load_text_data
from distill.knowledge import cache
from distill.knowledge.teacher import LiveTeacher
from distill.models.registry import build_model

ROOT = Path(__file__).resolve().parents[1]


def build_seconds(live: LiveTeacher, ids: torch.Tensor, targets: torch.Tensor, sorted_rows: bool) -> float:
    original = cache.in_length_order
    if not sorted_rows:
        cache.in_length_order = lambda live, inputs, rows: rows
    try:
        started = time.perf_counter()
        cache.build_cache(live, ids, targets, None, seed=0, epochs=1, options=cache.CacheOptions(dtype="float32"),
                          directory=None, device=torch.device("cpu"), log=lambda _: None)
        return time.perf_counter() - started
    finally:
        cache.in_length_order = original


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_text_data(DataConfig(dataset="sst2", text={"max_length": 64}))
    ids, targets = data.train.inputs[: args.sentences], data.train.targets[: args.sentences]
    torch.manual_seed(0)
    live = LiveTeacher(build_model("hf_classifier", data.input_shape, data.num_classes, trainable_layers=3))
    times: dict[str, list[float]] = {"stored order": [], "length order": []}
    for _ in range(args.repeats):
        times["stored order"].append(build_seconds(live, ids, targets, sorted_rows=False))
        times["length order"].append(build_seconds(live, ids, targets, sorted_rows=True))
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["stored order"] / medians["length order"]
    print(f"| rows | median s ({args.sentences} sentences, {args.repeats} runs, {args.threads} threads) |")
    print("| --- | ---: |")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} |")
    print(f"\nlength order is {ratio:.2f}x faster")
    out = ROOT / "benchmarks" / "results" / "cache_text_order.json"
    out.write_text(json.dumps({"sentences": args.sentences, "threads": args.threads, "seconds": times,
                               "median_seconds": medians, "speedup": ratio}, indent=1) + "\n")


if __name__ == "__main__":
    main()
