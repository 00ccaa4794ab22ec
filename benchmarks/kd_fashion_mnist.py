"""KD vs the student trained alone on Fashion-MNIST: teacher trained once, then 3 seeds of each.

    .venv/bin/python benchmarks/kd_fashion_mnist.py [--config examples/fashion_mnist.yaml] [--seeds 0 1 2]

Prints a table and writes benchmarks/results/kd_fashion_mnist.json. Each seed changes the student's
initialisation and the data order; baseline and distilled student share both within a seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from distill.config import load_config
from distill.experiment import run_experiment
from distill.report.summary import gap_recovered

ROOT = Path(__file__).resolve().parents[1]


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "examples" / "fashion_mnist.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], help="config overrides, as for distill run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--teacher-checkpoint", help="reuse this teacher (teacher-best.safetensors of an earlier "
                                                     "run of the same config) instead of training it")
    args = parser.parse_args()
    out = Path(args.out)
    runs_dir = out / "runs"
    started = time.perf_counter()

    per_seed = []
    teacher_checkpoint = args.teacher_checkpoint
    for seed in args.seeds:
        overrides = [*args.set, f"seed={seed}", "evaluate.latency=false"]
        if teacher_checkpoint:
            overrides.append(f"teacher.checkpoint={teacher_checkpoint}")
        cfg = load_config(args.config, overrides)
        run_dir = runs_dir / f"{cfg.name}-seed{seed}"
        run_started = time.perf_counter()
        summary = run_experiment(cfg, run_dir, quiet=True)
        run_seconds = time.perf_counter() - run_started
        teacher_checkpoint = teacher_checkpoint or str(run_dir / "checkpoints" / "teacher-best.safetensors")
        models = summary["models"]
        per_seed.append({
            "seed": seed,
            "teacher": models["teacher"]["accuracy"],
            "baseline": models["baseline"]["accuracy"],
            "student": models["student"]["accuracy"],
            "gap_recovered": summary["gap_recovered"],
            "baseline_seconds": models["baseline"]["train_seconds"],
            "student_seconds": models["student"]["train_seconds"],
            "teacher_seconds": models["teacher"]["train_seconds"],
            # seed 0 includes teacher training: its wall time is what `make demo` costs (less latency timing)
            "run_wall_seconds": run_seconds,
        })
        print(f"seed {seed}: baseline {per_seed[-1]['baseline']:.4f}, student {per_seed[-1]['student']:.4f}")

    teacher_acc = per_seed[0]["teacher"]
    base_mean, base_std = mean_std([r["baseline"] for r in per_seed])
    kd_mean, kd_std = mean_std([r["student"] for r in per_seed])
    result = {
        "config": args.config,
        "overrides": args.set,
        "seeds": args.seeds,
        "teacher_accuracy": teacher_acc,
        "baseline": {"mean": base_mean, "std": base_std},
        "kd": {"mean": kd_mean, "std": kd_std},
        "kd_minus_baseline": kd_mean - base_mean,
        # Same seed = same initial weights and data order: the paired difference removes most seed noise.
        "paired_kd_minus_baseline": dict(zip(("mean", "std"),
                                             mean_std([r["student"] - r["baseline"] for r in per_seed]), strict=True)),
        "gap_recovered_of_means": gap_recovered(teacher_acc, base_mean, kd_mean),
        "per_seed": per_seed,
        "wall_seconds": time.perf_counter() - started,
        "params": {role: summary["models"][role]["params"] for role in ("teacher", "student")},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "kd_fashion_mnist.json").write_text(json.dumps(result, indent=2))

    table = Table(title=f"KD on Fashion-MNIST, {len(args.seeds)} seeds (test accuracy, mean ± std)")
    for column in ("model", "params", "accuracy", "gap recovered"):
        table.add_column(column, justify="right")
    table.add_row("teacher", f"{result['params']['teacher']:,}", f"{teacher_acc * 100:.2f}%", "")
    table.add_row("baseline", f"{result['params']['student']:,}", f"{base_mean * 100:.2f} ± {base_std * 100:.2f}%", "")
    table.add_row("kd", f"{result['params']['student']:,}", f"{kd_mean * 100:.2f} ± {kd_std * 100:.2f}%",
                  f"{result['gap_recovered_of_means'] * 100:.1f}%")
    Console().print(table)
    seeds = Table(title="per seed (test accuracy)")
    for column in ("seed", "baseline", "kd", "kd - baseline", "gap recovered"):
        seeds.add_column(column, justify="right")
    for r in per_seed:
        seeds.add_row(str(r["seed"]), f"{r['baseline'] * 100:.2f}%", f"{r['student'] * 100:.2f}%",
                      f"{(r['student'] - r['baseline']) * 100:+.2f} pp", f"{r['gap_recovered'] * 100:.1f}%")
    paired = result["paired_kd_minus_baseline"]
    seeds.add_row("mean ± std", "", "", f"{paired['mean'] * 100:+.2f} ± {paired['std'] * 100:.2f} pp", "")
    Console().print(seeds)


if __name__ == "__main__":
    main()
