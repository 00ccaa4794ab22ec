"""Students a person can read, next to a neural student: distilled GBDT and soft decision trees.

    python benchmarks/trees.py [--seeds 0 1 2] [--datasets breast_cancer digits diabetes]

For every dataset and seed (the seed also draws the train/val/test split, so the spread covers
splits of these small sets): the teacher is trained once, then each student is trained twice from
the same start, on the labels alone and from the teacher:

- mlp: alone / KD (regression: mse_kd)
- gbdt: HistGradientBoostingClassifier on labels (regressor for diabetes) / one
  HistGradientBoostingRegressor per output fitted to the teacher's logits (fitted, not trained:
  distill.train.trees)
- soft_tree (classification): the Frosst-Hinton loss on one-hot labels (target: labels) / on the
  teacher's soft targets; digits only (8x8 images, so the filters are images)

Accuracy (R^2 for diabetes) on the test split; size of the safetensors file; PyTorch latency at
batch 1 on one thread. Writes benchmarks/results/trees.json and prints the tables for docs/trees.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seeded_runs import ROOT, Clock, mean_std, paired, run_config, write_json

GBDT = {"name": "gbdt", "max_iter": 50, "max_leaf_nodes": 8, "learning_rate": 0.1, "min_samples_leaf": 10}
DATASETS = {
    "breast_cancer": {
        "task": "classification", "data": {"dataset": "breast_cancer", "val_size": 91, "augment": None},
        "teacher": {"model": {"name": "mlp", "hidden": [64, 64], "dropout": 0.2},
                    "train": {"epochs": 60, "batch_size": 32, "optimizer": "adamw", "lr": 0.001, "weight_decay": 0.05}},
        "students": {"mlp": {"name": "mlp", "hidden": [4]}, "gbdt": GBDT},
        "student_train": {"epochs": 60, "batch_size": 32, "optimizer": "adamw", "lr": 0.003, "weight_decay": 0.01},
        "kd": {"method": "kd", "options": {"temperature": 2.0, "alpha": 0.5, "beta": 0.5}},
    },
    "digits": {
        "task": "classification", "data": {"dataset": "digits", "val_size": 270, "augment": None},
        "teacher": {"model": {"name": "cnn", "channels": [32, 64], "hidden": 128},
                    "train": {"epochs": 30, "batch_size": 32, "optimizer": "adamw", "lr": 0.003, "weight_decay": 0.01}},
        "students": {"mlp": {"name": "mlp", "hidden": [16]}, "gbdt": GBDT,
                     "soft_tree": {"name": "soft_tree", "depth": 5}},
        "student_train": {"epochs": 40, "batch_size": 32, "optimizer": "adamw", "lr": 0.01, "weight_decay": 0.0},
        "kd": {"method": "kd", "options": {"temperature": 2.0, "alpha": 0.5, "beta": 0.5}},
        "soft_tree": {"temperature": 2.0, "penalty": 0.05},
    },
    "diabetes": {
        "task": "regression", "data": {"dataset": "diabetes", "val_size": 66},
        "teacher": {"model": {"name": "mlp", "hidden": [64], "dropout": 0.4},
                    "train": {"epochs": 120, "batch_size": 32, "optimizer": "adamw", "lr": 0.001, "weight_decay": 1.0}},
        "students": {"mlp": {"name": "mlp", "hidden": [8]}, "gbdt": GBDT},
        "student_train": {"epochs": 60, "batch_size": 32, "optimizer": "adamw", "lr": 0.003, "weight_decay": 0.01},
        "kd": {"method": "mse_kd", "options": {"alpha": 0.5, "beta": 0.5, "hard_loss": "mse"}},
    },
}


def entry(m: dict, task: str) -> dict:
    return {"score": m["r2"] if task == "regression" else m["accuracy"], "params": m["params"],
            "size_bytes": m["size_bytes"], "latency_ms_b1": m["latency_ms_b1"]}


def run_dataset(name: str, spec: dict, seed: int, runs: Path) -> list[dict]:
    base = {"name": f"trees-{name}", "task": spec["task"], "data": {**spec["data"], "split_seed": seed},
            "teacher": spec["teacher"], "evaluate": {"latency_repeats": 50}}
    rows, teacher_ckpt = [], None
    for student, model in spec["students"].items():
        if student == "soft_tree":
            pairs = [("labels", {"method": "soft_tree", "options": {**spec["soft_tree"], "target": "labels"}}),
                     ("distilled", {"method": "soft_tree", "options": spec["soft_tree"]})]
        else:
            pairs = [("distilled", spec["kd"])]  # with baseline: the same model on labels alone
        for kind, distill in pairs:
            cfg = {**base, "student": {"model": model, "train": spec["student_train"]}, "distill": distill,
                   "baseline": kind == "distilled" and student != "soft_tree"}
            if teacher_ckpt:
                cfg["teacher"] = {**cfg["teacher"], "checkpoint": teacher_ckpt}
            run_dir = runs / f"{name}-{student}-{kind}-seed{seed}"
            summary = run_config(cfg, run_dir, seed)
            teacher_ckpt = teacher_ckpt or str(run_dir / "checkpoints" / "teacher-best.safetensors")
            m = summary["models"]
            if not rows:
                rows.append({"dataset": name, "seed": seed, "model": "teacher", "kind": "", **entry(m["teacher"], spec["task"])})
            if "baseline" in m:
                rows.append({"dataset": name, "seed": seed, "model": student, "kind": "labels",
                             **entry(m["baseline"], spec["task"])})
            rows.append({"dataset": name, "seed": seed, "model": student, "kind": kind,
                         **entry(m["student"], spec["task"])})
    return rows


def markdown(rows: list[dict]) -> str:
    out = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        task = DATASETS[name]["task"]
        metric = "test R^2" if task == "regression" else "test acc"
        seeds = sorted({r["seed"] for r in rows if r["dataset"] == name})
        out += [f"### {name} ({len(seeds)} seeds/splits)", "",
                f"| model | trained on | params | size | {metric} (mean ± std) | paired vs labels | latency b1 |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        keys = list(dict.fromkeys((r["model"], r["kind"]) for r in rows if r["dataset"] == name))
        for model, kind in keys:
            sel = sorted((r for r in rows if r["dataset"] == name and r["model"] == model and r["kind"] == kind),
                         key=lambda r: r["seed"])
            labels = sorted((r for r in rows if r["dataset"] == name and r["model"] == model and r["kind"] == "labels"),
                            key=lambda r: r["seed"])
            scores = [r["score"] * (1 if task == "regression" else 100) for r in sel]
            m, sd = mean_std(scores)
            vs = ""
            if kind == "distilled" and len(labels) == len(sel):
                d, dsd = paired(scores, [r["score"] * (1 if task == "regression" else 100) for r in labels])
                vs = f"{d:+.3f} ± {dsd:.3f}" if task == "regression" else f"{d:+.2f} ± {dsd:.2f} pp"
            lat = sorted(r["latency_ms_b1"] for r in sel)[len(sel) // 2]
            fmt = f"{m:.3f} ± {sd:.3f}" if task == "regression" else f"{m:.2f} ± {sd:.2f}%"
            trained = {"": "labels", "labels": "labels alone", "distilled": "teacher (distilled)"}[kind]
            out.append(f"| {model} | {trained} | {sel[0]['params']:,} | {sel[0]['size_bytes'] / 1024:.1f} KiB | "
                       f"{fmt} | {vs} | {lat:.3f} ms |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--runs", default=str(ROOT / "runs" / "bench-trees"))
    args = parser.parse_args()
    out, clock, rows = ROOT / "benchmarks" / "results" / "trees.json", Clock(), []
    for name in args.datasets:
        for seed in args.seeds:
            rows += run_dataset(name, DATASETS[name], seed, Path(args.runs))
            write_json(out, {"seeds": args.seeds, "datasets": DATASETS, "rows": rows, "minutes": clock.minutes()})
            print(f"{name} seed {seed} done ({clock.minutes():.1f} min)", flush=True)
    print(markdown(rows))
    print(json.dumps({"minutes": clock.minutes()}))


if __name__ == "__main__":
    main()
