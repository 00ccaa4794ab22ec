"""Regression distillation on scikit-learn's diabetes data: teacher, baseline, mse_kd and mae_kd students.

    .venv/bin/python benchmarks/regression_diabetes.py [--config examples/regression_diabetes.yaml]
        [--seeds 0 1 2 3 4] [--vary-split] [--set KEY=VALUE ...]

For each seed one ``mse_kd`` run trains the teacher, the baseline (student alone) and the
``mse_kd`` student; a second run distils an ``mae_kd`` student from that seed's teacher (loaded
through ``teacher.checkpoint``, no baseline). The seed sets initial weights and data order; the
baseline and both students of a seed start from the same weights. The data split is fixed
(``data.split_seed`` of the config) unless ``--vary-split`` sets it to the seed as well.

Prints a table and writes benchmarks/results/regression_diabetes.json (regression_diabetes_splits.json
with --vary-split) and docs/regression_benchmark.md, which holds the tables of both JSON files that
exist; text below the notes marker in that file is hand-written and kept.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from distill.config import load_config
from distill.pipeline.experiment import run_experiment
from distill.report.summary import gap_recovered

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("mse_kd", "mae_kd")
ROLES = ("teacher", "baseline", *METHODS)
METRICS = ("r2", "mse", "mae")
NOTES_MARKER = "<!-- notes: hand-written below this line; kept when the script rewrites the tables above -->"


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def best_val(run_dir: Path, model: str, best_epoch: int | None) -> dict[str, float]:
    """Validation MSE/MAE/R^2 (standardised targets) of the epoch kept for ``model``."""
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("model") == model and row.get("epoch") == best_epoch:
            return {key: row[f"val_{key}"] for key in METRICS}
    return {}


def entry(summary: dict, role: str, run_dir: Path) -> dict:
    model = summary["models"][role]
    return {**{key: model[key] for key in METRICS}, "teacher_mse": model.get("teacher_mse"),
            "params": model["params"], "train_seconds": model["train_seconds"], "best_epoch": model["best_epoch"],
            "val": best_val(run_dir, role, model["best_epoch"])}


def run_seed(args, seed: int, runs: Path) -> dict:
    overrides = [*args.set, f"seed={seed}", "evaluate.latency=false"]
    if args.vary_split:
        overrides.append(f"data.split_seed={seed}")
    models: dict[str, dict] = {}
    started = time.perf_counter()
    cfg = load_config(args.config, [*overrides, "distill.method=mse_kd"])
    first = runs / f"mse_kd-seed{seed}"
    summary = run_experiment(cfg, first, quiet=True)
    models["teacher"] = entry(summary, "teacher", first)
    models["baseline"] = entry(summary, "baseline", first)
    models["mse_kd"] = entry(summary, "student", first)
    teacher_ckpt = first / "checkpoints" / "teacher-best.safetensors"
    cfg = load_config(args.config, [*overrides, "distill.method=mae_kd", "baseline=false",
                                    f"teacher.checkpoint={teacher_ckpt}"])
    second = runs / f"mae_kd-seed{seed}"
    summary = run_experiment(cfg, second, quiet=True)
    models["mae_kd"] = entry(summary, "student", second)
    # The loaded teacher must be the one trained in the first run.
    assert abs(summary["models"]["teacher"]["mse"] - models["teacher"]["mse"]) < 1e-6 * models["teacher"]["mse"]
    return {"seed": seed, "split_seed": cfg.data.split_seed, "test_samples": summary["test_samples"], "models": models,
            "wall_seconds": time.perf_counter() - started}


def aggregate(per_seed: list[dict]) -> dict:
    out: dict = {}
    for role in ROLES:
        rows = [r["models"][role] for r in per_seed]
        stats = {key: mean_std([row[key] for row in rows]) for key in METRICS}
        stats["val_r2"] = mean_std([row["val"]["r2"] for row in rows])
        stats["params"] = rows[0]["params"]
        stats["train_seconds"] = statistics.mean(row["train_seconds"] for row in rows)
        if role != "baseline":  # the teacher too: teacher minus the baseline of its seed
            for key in METRICS:
                diffs = [r["models"][role][key] - r["models"]["baseline"][key] for r in per_seed]
                stats[f"paired_{key}"] = mean_std(diffs)
                better = [d > 0 if key == "r2" else d < 0 for d in diffs]
                stats[f"seeds_better_{key}"] = sum(better)
        if role in METHODS:
            stats["gap_recovered_of_means"] = gap_recovered(out["teacher"]["r2"]["mean"], out["baseline"]["r2"]["mean"],
                                                            stats["r2"]["mean"])
            stats["gap_recovered_per_seed"] = [
                gap_recovered(r["models"]["teacher"]["r2"], r["models"]["baseline"]["r2"], r["models"][role]["r2"])
                for r in per_seed]
        out[role] = stats
    return out


# Two-sided 5% points of Student's t with 1..9 degrees of freedom (2..10 seeds).
T_CRITICAL = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26)


def paired_t(stats: dict, n: int) -> float:
    """Paired t statistic of the R^2 difference to the baseline against zero."""
    sem = stats["paired_r2"]["std"] / n ** 0.5
    return stats["paired_r2"]["mean"] / sem if sem > 0 else float("inf") * (stats["paired_r2"]["mean"] or 0.0)


def measurable(stats: dict, n: int) -> bool:
    return 2 <= n <= len(T_CRITICAL) + 1 and abs(paired_t(stats, n)) > T_CRITICAL[n - 2]


def verdict(stats: dict, n: int) -> str:
    gain, t = stats["paired_r2"]["mean"], paired_t(stats, n)
    seeds = f"R^2 better on {stats['seeds_better_r2']} of {n} seeds, t = {t:.1f}"
    if gain <= 0 or stats["paired_mse"]["mean"] >= 0:
        worse = "measurably worse" if measurable(stats, n) else "no measurable difference"
        return f"no, does not beat baseline ({worse}; {seeds})"
    return f"yes, {'measurable' if measurable(stats, n) else 'within seed noise'} ({seeds})"


def gap_text(agg: dict, role: str, n: int, short: bool = False) -> str:
    """Gap recovered on R^2 means, or why it is not meaningful."""
    gap, teacher_gap = agg[role]["gap_recovered_of_means"], agg["teacher"]["paired_r2"]["mean"]
    if gap is None or teacher_gap <= 0:
        return "n/a" if short else "n/a (teacher not above baseline)"
    if not measurable(agg["teacher"], n):
        return f"({gap * 100:.0f}%)" if short else \
            f"{gap * 100:.0f}% (not meaningful: teacher-baseline gap {teacher_gap:+.4f} is within seed noise)"
    return f"{gap * 100:.0f}%"


def markdown(result: dict, title: str) -> str:
    agg, n = result["aggregate"], len(result["seeds"])

    def ms(stats: dict, key: str, digits: int) -> str:
        return f"{stats[key]['mean']:.{digits}f} ± {stats[key]['std']:.{digits}f}"

    def signed(stats: dict, key: str, digits: int) -> str:
        return f"{stats[key]['mean']:+.{digits}f} ± {stats[key]['std']:.{digits}f}"

    lines = [f"## {title}", "", "```bash", result["command"].strip(), "```", "",
             f"{n} seeds ({', '.join(map(str, result['seeds']))}); data split_seed "
             f"{'= seed' if result['vary_split'] else result['per_seed'][0]['split_seed']}; "
             f"{result['test_samples']} test samples; wall time {result['wall_seconds']:.0f} s "
             f"on one CPU thread of a shared 2-core machine.", "",
             "| model | params | test R^2 | test MSE | test MAE | val R^2 | paired ΔR^2 vs baseline | "
             "paired ΔMSE | paired ΔMAE | gap recovered (R^2) | beats baseline? |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    labels = {"teacher": "teacher", "baseline": "baseline (student alone)", "mse_kd": "student, mse_kd",
              "mae_kd": "student, mae_kd"}
    for role in ROLES:
        stats = agg[role]
        row = [labels[role], f"{stats['params']:,}", ms(stats, "r2", 3), ms(stats, "mse", 0), ms(stats, "mae", 2),
               ms(stats, "val_r2", 3)]
        if role == "baseline":
            row += ["0", "0", "0", "0%", ""]
        else:
            row += [signed(stats, "paired_r2", 4), signed(stats, "paired_mse", 1), signed(stats, "paired_mae", 2),
                    gap_text(agg, role, n) if role in METHODS else "", verdict(stats, n)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Per seed (test R^2):", "", "| seed | split_seed | teacher | baseline | mse_kd | mae_kd |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in result["per_seed"]:
        lines.append(f"| {r['seed']} | {r['split_seed']} | " + " | ".join(
            f"{r['models'][role]['r2']:.4f}" for role in ROLES) + " |")
    lines += [""]
    return "\n".join(lines)


def write_doc(doc: Path, out: Path) -> None:
    notes = ""
    if doc.is_file() and NOTES_MARKER in doc.read_text():
        notes = doc.read_text().split(NOTES_MARKER, 1)[1]
    parts = ["# Regression benchmark: diabetes, MLP teacher and student", "",
             "Made by `benchmarks/regression_diabetes.py` from `examples/regression_diabetes.yaml`; raw numbers "
             "in `benchmarks/results/regression_diabetes*.json`. Test metrics are in the target's original "
             "units (MSE, MAE) over seeds as mean ± std; val R^2 is that of the epoch kept (lowest validation MSE, "
             "standardised targets). `paired` = the model minus the baseline of the same seed (same split, same "
             "initial weights and data order), mean ± std over seeds; ΔR^2 > 0 and ΔMSE, ΔMAE < 0 are "
             "improvements. Gap recovered = (student - baseline) / (teacher - baseline) on the R^2 means; "
             "it has no meaning when the teacher is not above the baseline.", ""]
    for name, title in (("regression_diabetes.json", "Fixed data split (the example's)"),
                        ("regression_diabetes_splits.json", "Across data splits (split_seed = seed)")):
        path = out / name
        if path.is_file():
            parts.append(markdown(json.loads(path.read_text()), title))
    parts.append(NOTES_MARKER + (notes or "\n"))
    doc.write_text("\n".join(parts))


def print_table(result: dict) -> None:
    agg, n = result["aggregate"], len(result["seeds"])
    table = Table(title=f"Regression distillation on diabetes, {n} seeds (test, mean ± std)")
    for column in ("model", "params", "R^2", "MSE", "MAE", "ΔR^2 vs baseline (paired)", "gap recovered"):
        table.add_column(column, justify="right")
    for role in ROLES:
        stats = agg[role]
        paired = f"{stats['paired_r2']['mean']:+.4f} ± {stats['paired_r2']['std']:.4f}" if role != "baseline" else ""
        table.add_row(role, f"{stats['params']:,}", f"{stats['r2']['mean']:.4f} ± {stats['r2']['std']:.4f}",
                      f"{stats['mse']['mean']:.0f} ± {stats['mse']['std']:.0f}",
                      f"{stats['mae']['mean']:.2f} ± {stats['mae']['std']:.2f}", paired,
                      gap_text(agg, role, n, short=True) if role in METHODS else "")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "examples" / "regression_diabetes.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--vary-split", action="store_true", help="also set data.split_seed to the seed")
    parser.add_argument("--set", action="append", default=[], help="config overrides, as for distill run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "regression_benchmark.md"))
    parser.add_argument("--report", action="store_true", help="only rewrite the Markdown from the saved JSON")
    args = parser.parse_args()
    out = Path(args.out)
    name = "regression_diabetes_splits" if args.vary_split else "regression_diabetes"
    if args.report:
        write_doc(Path(args.doc), out)
        return
    runs = out / "runs" / name
    started = time.perf_counter()
    per_seed = []
    for seed in args.seeds:
        per_seed.append(run_seed(args, seed, runs))
        print(f"seed {seed}: test R^2 " + ", ".join(
            f"{role} {per_seed[-1]['models'][role]['r2']:.4f}" for role in ROLES), flush=True)
    config = load_config(args.config, args.set)
    result = {
        "command": " ".join(["python benchmarks/regression_diabetes.py", shlex.join(sys.argv[1:])]).strip(),
        "config": str(Path(args.config).resolve().relative_to(ROOT)) if Path(args.config).resolve().is_relative_to(
            ROOT) else args.config,
        "overrides": args.set,
        "seeds": args.seeds,
        "vary_split": args.vary_split,
        "teacher": config.teacher.model_dump(exclude={"checkpoint"}),
        "student": config.student.model_dump(),
        "distill_options": config.distill.options,
        "test_samples": per_seed[0]["test_samples"],
        "aggregate": aggregate(per_seed),
        "per_seed": per_seed,
        "wall_seconds": time.perf_counter() - started,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    write_doc(Path(args.doc), out)
    print_table(result)


if __name__ == "__main__":
    main()
