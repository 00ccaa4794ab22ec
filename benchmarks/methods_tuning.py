"""Each method's strength chosen on the validation split with `distill search`, one budget for all.

    .venv/bin/python benchmarks/methods_tuning.py --teacher-checkpoint TEACHER [--methods dkd at ...]

The methods benchmark (benchmarks/methods_fashion_mnist.py) runs every method at the options its paper
chose for 200-epoch CIFAR runs. This script gives each method the same small budget to adapt its main
knob to the benchmark's pair: a grid of ``len(GRID[method])`` values of that knob, searched by
``distill search --sampler grid`` on seed 0 with the benchmark's own config (same teacher checkpoint,
regime and cache). Each trial is a whole 20-epoch student run scored by its best validation accuracy;
the test split is never read. The default value itself was run by the benchmark (seed 0, identical
config, and runs are deterministic), so its validation score is read from there instead of training it
a second time. The chosen value (the best of default and grid) is written to
benchmarks/results/methods_tuning.json with every trial's score; ``methods_fashion_mnist.py --tuned``
then runs "<method> (tuned)" over all seeds with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from methods_fashion_mnist import BASE, METHODS, ROOT, best_val, shared_cache_dir  # noqa: E402

# The knob each method is tuned on (its distillation strength, or DIST's temperature, its other
# recipe-dependent choice) and the values tried besides its default: weaker strengths for the feature and
# relation methods, whose paper weights dwarf the label loss here; DKD's ImageNet beta (0.5) beside its
# CIFAR one; DIST's ImageNet tau (1) beside its CIFAR one.
GRID: dict[str, tuple[str, list[float]]] = {
    "dkd": ("beta", [2.0, 0.5]),
    "lskd": ("alpha", [3.0, 1.0]),
    "tfkd": ("multiplier", [10.0, 1.0]),
    "dist": ("tau", [2.0, 1.0]),
    "pkt": ("weight", [3000.0, 300.0]),
    "fitnets": ("hint_weight", [10.0, 1.0]),
    "sp": ("gamma", [300.0, 30.0]),
    "at": ("beta", [100.0, 10.0]),
}
DEFAULTS = json.loads((ROOT / "src" / "distill" / "catalogue.json").read_text())["methods"]


def default_value(method: str, knob: str) -> float:
    return float(DEFAULTS[method]["options"][knob])


def tune(method: str, teacher: str, out: Path, runs: Path) -> dict:
    knob, values = GRID[method]
    cfg = json.loads(json.dumps(BASE))
    cfg.update(name=f"tune-{method}", seed=0, baseline=False, distill=METHODS[method])
    cfg["teacher"]["checkpoint"] = teacher
    cfg["cache"] = {**cfg["cache"], "dir": str(shared_cache_dir(runs, method, 0))}
    cfg["search"] = {"sampler": "grid", "pruner": False, "metric": "val_accuracy",
                     "space": {f"distill.options.{knob}": {"type": "float", "choices": values}}}
    folder = out / f"search-{method}"
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "search.yaml"
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    subprocess.run([sys.executable, "-m", "distill", "search", str(config_path), "--sampler", "grid", "--out", str(folder)],
                   check=True, env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    trials = json.loads((folder / "trials.json").read_text())
    tried = [{"value": t["params"][f"distill.options.{knob}"], "val": t["value"], "seconds": t["seconds"],
              "source": f"distill search trial {t['number']}"} for t in trials if t["state"] == "COMPLETE"]
    default_run = runs / f"{method}-seed0"
    default = {"value": default_value(method, knob), "val": best_val(default_run, "student"),
               "seconds": None, "source": f"methods benchmark run {default_run.name} (the same config)"}
    tried = [default, *sorted(tried, key=lambda t: -t["value"])]
    best = max((t for t in tried if t["val"] is not None), key=lambda t: t["val"])
    return {"method": method, "knob": knob, "default": default["value"], "trials": tried,
            "chosen": best["value"], "chosen_val": best["val"], "search_folder": str(folder)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher-checkpoint", required=True, help="the benchmark's teacher")
    parser.add_argument("--methods", nargs="+", default=list(GRID), choices=list(GRID))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    out = Path(args.out)
    path = out / "methods_tuning.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    results = {r["method"]: r for r in saved.get("results", [])}
    budget = {"seed": 0, "split": "validation (5,000 images)", "trials_per_method": 1 + max(len(v) for _, v in GRID.values()),
              "schedule": f"{BASE['student']['train']['epochs']} student epochs, the benchmark's",
              "sampler": "distill search --sampler grid", "grid": {m: {"knob": k, "values": v} for m, (k, v) in GRID.items()}}
    for method in args.methods:
        results[method] = tune(method, args.teacher_checkpoint, out / "methods_runs" / "tuning", out / "methods_runs")
        print(json.dumps(results[method]), flush=True)
        path.write_text(json.dumps({"budget": budget, "results": [results[m] for m in GRID if m in results]}, indent=1))


if __name__ == "__main__":
    main()
