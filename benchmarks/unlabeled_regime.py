"""The practical regime: a strong teacher, few labels, many unlabelled images (Fashion-MNIST as PNG folders).

The teacher is trained once on every training label (standing for a pretrained model) and reused
through ``teacher.checkpoint``. For each label budget N and seed s:

- ``baseline``: the student on its N labels alone (``data.labeled_subset: N``, ``labeled_seed: s``);
- ``distilled``: the same student, the same N labels, plus the remaining training images as the
  unlabelled pool (``data.unlabeled: rest``), which the teacher labels through the cache.

Validation (5,000 images carved from train with a fixed seed, the same for every run and for the
teacher) chooses the hyperparameters; the test split (the 10,000 test PNGs) only reports.

    python benchmarks/unlabeled_regime.py export            # write data/fashion_mnist_png (once)
    python benchmarks/unlabeled_regime.py teacher           # train the teacher (once)
    python benchmarks/unlabeled_regime.py run KIND N SEED [--set KEY=VALUE ...]   # one run
    python benchmarks/unlabeled_regime.py table             # results JSON + the markdown table

Each run writes ``benchmarks/results/unlabeled_regime_runs/<kind>-<N>-<seed>[-tag].json``; ``table``
aggregates them (mean, spread, paired differences, gap recovered) into
``benchmarks/results/unlabeled_regime.json``. Runs are independent processes, so two can go in
parallel (one thread each).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from seeded_runs import gap_recovered, mean_std, paired, run_config, write_json  # noqa: E402

from distill.rundir import read_records  # noqa: E402

PNG = ROOT / "data" / "fashion_mnist_png"
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "unlabeled_regime_runs"
TEACHER_DIR = RESULTS / "runs" / "unlabeled_regime_teacher"
TEACHER_CKPT = TEACHER_DIR / "checkpoints" / "teacher-best.safetensors"

DATA = {"dataset": "image_folder",
        "images": {"train": str(PNG / "train"), "test": str(PNG / "test"), "grayscale": True,
                   "val_fraction": 5000 / 60000},  # 5,000 validation images, as the IDX demo
        "augment": {"crop_padding": 2, "hflip": True}}
TEACHER = {"model": {"name": "cnn", "channels": [32, 64, 128], "flatten": True, "hidden": 128, "dropout": 0.3},
           "train": {"epochs": 10, "batch_size": 128, "lr": 0.05, "warmup_epochs": 0.5}}
STUDENT_MODEL = {"name": "cnn", "channels": [4, 8, 16], "flatten": True}
# Chosen on validation (seed 0, 2,000 labels); see docs/benchmarks.md.
RECIPES = {
    "baseline": {"student": {"model": STUDENT_MODEL,
                             "train": {"epochs": 100, "batch_size": 128, "lr": 0.05, "warmup_epochs": 0.5}},
                 "distill": {"method": "supervised"}, "cache": {"mode": "off"}},
    "distilled": {"student": {"model": STUDENT_MODEL,
                              "train": {"epochs": 20, "batch_size": 128, "lr": 0.05, "warmup_epochs": 0.5}},
                  "distill": {"method": "kd", "label_weight": 0.5, "options": {"temperature": 1.0, "alpha": 0.5}},
                  "cache": {"mode": "auto", "views": 4}},
}


def base_config(name: str) -> dict:
    return {"name": name, "data": json.loads(json.dumps(DATA)), "baseline": False,
            "evaluate": {"latency": False}, "runtime": {"threads": 1}}


def teacher_config() -> dict:
    cfg = base_config("unlabeled_regime_teacher")
    # the student of this run is a placeholder: one supervised epoch, so that the run ends quickly
    cfg.update({"teacher": TEACHER, "student": {"model": STUDENT_MODEL, "train": {"epochs": 1}},
                "distill": {"method": "supervised"}, "cache": {"mode": "off"}})
    return cfg


def run_configuration(kind: str, labels: int, seed: int) -> dict:
    cfg = base_config(f"unlabeled-{kind}-{labels}")
    cfg["data"].update({"labeled_subset": labels, "labeled_seed": seed})
    if kind == "distilled":
        cfg["data"]["unlabeled"] = "rest"
    cfg["teacher"] = {"model": TEACHER["model"], "checkpoint": str(TEACHER_CKPT)}
    cfg.update(json.loads(json.dumps(RECIPES[kind])))
    return cfg


def apply_sets(cfg: dict, sets: list[str]) -> None:
    import yaml

    for item in sets:
        key, value = item.split("=", 1)
        *parents, last = key.split(".")
        node = cfg
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)


def best_val(run_dir: Path, role: str) -> float:
    values = [r["val_accuracy"] for r in read_records(run_dir / "metrics.jsonl")
              if r.get("model") == role and "val_accuracy" in r]
    return max(values) if values else float("nan")


def cmd_export(_args) -> None:
    from distill.data.fashion_mnist_png import export_png

    print(export_png(PNG))


def cmd_teacher(_args) -> None:
    if TEACHER_CKPT.is_file():
        print(f"teacher exists: {TEACHER_CKPT}")
        return
    started = time.perf_counter()
    summary = run_config(teacher_config(), TEACHER_DIR, 0)
    entry = summary["models"]["teacher"]
    write_json(RUNS / "teacher.json", {"test_accuracy": entry["accuracy"], "val_accuracy": best_val(TEACHER_DIR, "teacher"),
                                       "params": entry["params"], "seconds": time.perf_counter() - started,
                                       "config": teacher_config()})
    print(f"teacher: test {entry['accuracy']:.4f} ({(time.perf_counter() - started) / 60:.1f} min)")


def cmd_run(args) -> None:
    tag = f"-{args.tag}" if args.tag else ""
    key = f"{args.kind}-{args.labels}-{args.seed}{tag}"
    out = RUNS / f"{key}.json"
    if out.is_file() and not args.again:
        print(f"{key}: done already ({out})")
        return
    cfg = run_configuration(args.kind, args.labels, args.seed)
    if args.method:  # another method of the methods benchmark, with its default options there
        from methods_fashion_mnist import METHODS

        cfg["distill"] = json.loads(json.dumps(METHODS[args.method]))
    apply_sets(cfg, args.set)
    run_dir = RESULTS / "runs" / f"unlabeled_regime-{key}"
    started = time.perf_counter()
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    summary = run_config(cfg, run_dir, args.seed)
    entry = summary["models"]["student"]
    row = {"kind": args.kind, "labels": args.labels, "seed": args.seed, "tag": args.tag, "sets": args.set,
           "method": args.method,
           "test_accuracy": entry["accuracy"], "val_accuracy": best_val(run_dir, "student"),
           "best_epoch": entry.get("best_epoch"), "params": entry["params"],
           "train_seconds": entry.get("train_seconds"), "seconds": time.perf_counter() - started, "config": cfg}
    write_json(out, row)
    shutil.rmtree(run_dir / "cache", ignore_errors=True)  # the cache is large and rebuilt on a rerun
    print(f"{key}: val {row['val_accuracy']:.4f} test {row['test_accuracy']:.4f} ({row['seconds'] / 60:.1f} min)")


def load_rows() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RUNS.glob("*-*-*.json"))]


def cmd_table(_args) -> None:
    teacher = json.loads((RUNS / "teacher.json").read_text())
    all_rows = load_rows()
    baselines = [r for r in all_rows if r["kind"] == "baseline" and not r.get("tag")]
    # one table row per (labels, distilled recipe): the untagged recipe is RECIPES["distilled"], a tagged one
    # adds its --set overrides (chosen on validation, see docs/benchmarks.md)
    recipes = sorted({r.get("tag") or "" for r in all_rows if r["kind"] == "distilled"})
    t = teacher["test_accuracy"] * 100
    table, lines = [], [
        f"teacher (all 55,000 labels): test {t:.2f}%, val {teacher['val_accuracy'] * 100:.2f}%", "",
        "| labels | distilled recipe | seeds | baseline test % | distilled test % | paired diff (points) | "
        "gap recovered | baseline val % | distilled val % |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for labels in sorted({r["labels"] for r in all_rows if r["kind"] != "teacher" and "labels" in r}):
        for tag in recipes:
            distilled = [r for r in all_rows if r["kind"] == "distilled" and (r.get("tag") or "") == tag]
            by = {"baseline": {r["seed"]: r for r in baselines if r["labels"] == labels},
                  "distilled": {r["seed"]: r for r in distilled if r["labels"] == labels}}
            seeds = sorted(set(by["baseline"]) & set(by["distilled"]))
            if not seeds:
                continue
            sets = by["distilled"][seeds[0]].get("sets") or []
            method = by["distilled"][seeds[0]].get("method")
            overrides = ", ".join(s.replace("distill.", "") for s in sets) or (
                "its methods-benchmark options" if method else "demo settings (T 1, alpha 0.5, label weight 0.5)")
            recipe = f"{method or 'kd'}: {overrides}"
            b = [by["baseline"][s]["test_accuracy"] * 100 for s in seeds]
            d = [by["distilled"][s]["test_accuracy"] * 100 for s in seeds]
            bv = [by["baseline"][s]["val_accuracy"] * 100 for s in seeds]
            dv = [by["distilled"][s]["val_accuracy"] * 100 for s in seeds]
            (bm, bs), (dm, ds), (pm, ps) = mean_std(b), mean_std(d), paired(d, b)
            gaps = [gap_recovered(t, bi, di) for bi, di in zip(b, d, strict=True)]
            gm, gs = mean_std(gaps)
            table.append({"labels": labels, "recipe": tag or None, "method": method or "kd", "sets": sets, "seeds": seeds, "baseline": b,
                          "distilled": d, "baseline_val": bv, "distilled_val": dv, "paired_diff_mean": pm,
                          "paired_diff_std": ps, "gap_recovered_mean": gm, "gap_recovered_std": gs,
                          "distilled_minutes": [by["distilled"][s]["seconds"] / 60 for s in seeds],
                          "baseline_minutes": [by["baseline"][s]["seconds"] / 60 for s in seeds]})
            lines.append(f"| {labels:,} | {recipe} | {len(seeds)} | {bm:.2f} ± {bs:.2f} | {dm:.2f} ± {ds:.2f} | "
                         f"{pm:+.2f} ± {ps:.2f} | {gm * 100:.0f}% ± {gs * 100:.0f} | {mean_std(bv)[0]:.2f} | "
                         f"{mean_std(dv)[0]:.2f} |")
    tuning = [{k: r[k] for k in ("kind", "labels", "seed", "tag", "sets", "val_accuracy", "test_accuracy")}
              for r in load_rows() if r.get("tag")]
    write_json(RESULTS / "unlabeled_regime.json", {"teacher": teacher, "rows": table, "tuning": tuning,
                                                    "recipes": RECIPES, "data": DATA})
    print("\n".join(lines))
    for r in tuning:
        print(f"tuning {r['kind']} {r['labels']} seed {r['seed']} {r['tag']} {r['sets']}: "
              f"val {r['val_accuracy'] * 100:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("export").set_defaults(func=cmd_export)
    sub.add_parser("teacher").set_defaults(func=cmd_teacher)
    run = sub.add_parser("run")
    run.add_argument("kind", choices=sorted(RECIPES))
    run.add_argument("labels", type=int)
    run.add_argument("seed", type=int)
    run.add_argument("--set", action="append", default=[], help="KEY=VALUE override (a tuning candidate)")
    run.add_argument("--tag", default="", help="name of a recipe (a tuning candidate, or --method's label)")
    run.add_argument("--method", default="", help="a label of benchmarks/methods_fashion_mnist.py METHODS "
                                                  "(offline ones): its distill section replaces the KD recipe")
    run.add_argument("--again", action="store_true")
    run.set_defaults(func=cmd_run)
    sub.add_parser("table").set_defaults(func=cmd_table)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
