"""The demo's claim, measured: KD vs the student trained alone on Fashion-MNIST, 3 seeds, and what each model costs.

    .venv/bin/python benchmarks/kd_fashion_mnist.py [--config examples/fashion_mnist.yaml] [--seeds 0 1 2]
        [--teacher-checkpoint RUN/checkpoints/teacher-best.safetensors] [--set key=value ...]
        [--runs benchmarks/results/methods_runs/kd_demo_recipe-seed{seed}]   # tabulate those runs

Seed 0 is the demo itself (`make demo` runs the same config with seed 0); the teacher it trains is
reused by the other seeds. Each seed changes the student's initialisation, the data order and the
augmentation draws; baseline and distilled student share all three within a seed (the same stored
views, mixed or not). Test accuracy is reported, validation accuracy beside it (hyperparameters
were chosen on validation only). Cost: parameters, multiply-adds, and latency of both models in
deployed form (ONNX fp32 and int8 under onnxruntime, one thread), timed side by side in rounds
that alternate the models, median over rounds.

Prints tables and writes benchmarks/results/kd_fashion_mnist.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from distill.config import load_config
from distill.data.run_data import run_data
from distill.evaluate.checkpoint_eval import load_checkpoint_model
from distill.evaluate.cost import format_macs
from distill.pipeline.experiment import run_experiment
from distill.report.summary import gap_recovered

ROOT = Path(__file__).resolve().parents[1]


def mean_std(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def best_val(run_dir: Path, model: str) -> float | None:
    """The validation accuracy of the epoch whose checkpoint was kept (the selection metric)."""
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    values = [r["val_accuracy"] for r in lines if r["model"] == model]
    return max(values) if values else None


def cpu_ms(call, repeats: int, warmup: int = 3) -> float:
    """Median process CPU time of one call, in ms: on a shared machine wall-clock time mostly measures the others."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        call()
        times.append((time.process_time() - start) * 1000.0)
    return statistics.median(times)


def deployed_latency(run_dir: Path, rounds: int, repeats: int, batch: int, teacher: str | None = None) -> dict:
    """Teacher and student exported to ONNX (fp32, int8), timed under onnxruntime with one thread in
    rounds that alternate the four models; per model the median over rounds of the median CPU time."""
    import numpy as np

    from distill.export.macs import onnx_macs
    from distill.export.pipeline import export_model
    from distill.export.runtime import onnx_parameters, session

    data = run_data(run_dir)
    models, accuracy = {}, {}
    checkpoints = {role: run_dir / "checkpoints" / f"{role}-best.safetensors" for role in ("teacher", "student")}
    if teacher:  # a loaded teacher has no checkpoint of its own in the run folder
        checkpoints["teacher"] = Path(teacher)
    for role in ("teacher", "student"):
        model, _ = load_checkpoint_model(checkpoints[role])
        report = export_model(model, data, run_dir / "onnx", name=role, repeats=3, batch_size=batch)
        for kind, suffix in (("fp32", ""), ("int8", ".int8")):
            models[f"{role}_{kind}"] = run_dir / "onnx" / f"{role}{suffix}.onnx"
            accuracy[f"{role}_{kind}"] = report[kind]["accuracy"]
    one = np.ascontiguousarray(data.test.inputs[:1].numpy(), dtype=np.float32)
    many = np.ascontiguousarray(data.test.inputs[:batch].numpy(), dtype=np.float32)
    sessions = {key: session(path, threads=1) for key, path in models.items()}
    runs: dict[str, dict[str, list[float]]] = {key: {"b1": [], "bN": []} for key in models}
    for _ in range(rounds):
        for key, sess in sessions.items():
            name = sess.get_inputs()[0].name
            runs[key]["b1"].append(cpu_ms(lambda s=sess, n=name: s.run(None, {n: one}), repeats))
            runs[key]["bN"].append(cpu_ms(lambda s=sess, n=name: s.run(None, {n: many}), max(3, repeats // 5)))
    out = {"batch": batch, "rounds": rounds, "repeats": repeats, "threads": 1, "clock": "process CPU time"}
    for key, path in models.items():
        out[key] = {"latency_ms_b1": statistics.median(runs[key]["b1"]),
                    "latency_ms_bN": statistics.median(runs[key]["bN"]), "macs": onnx_macs(path),
                    "params": onnx_parameters(path), "size_bytes": path.stat().st_size, "accuracy": accuracy[key]}
    for kind in ("fp32", "int8"):
        t, s = out[f"teacher_{kind}"], out[f"student_{kind}"]
        out[f"speedup_{kind}"] = {"b1": t["latency_ms_b1"] / s["latency_ms_b1"],
                                  "bN": t["latency_ms_bN"] / s["latency_ms_bN"]}
    return out


def training_fields(cfg) -> dict:
    """What decides a run's numbers: everything but its name, runtime and evaluation settings, with the
    method's options as the method reads them (an older config's kd ``beta`` is its label weight)."""
    from distill.methods.base import build_method, method_options

    fields = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in ("name", "runtime", "evaluate")}
    fields["cache"] = {k: v for k, v in fields["cache"].items() if k != "dir"}  # where it lives changes nothing
    if cfg.distill.method != "combined":
        method = build_method(cfg.distill.method, cfg.distill.options)
        effective = {name: getattr(method, name, None) for name in method_options(type(method))}
        effective["label_weight"] = cfg.distill.label_weight if cfg.distill.label_weight is not None \
            else method.label_weight
        fields["distill"] = {**fields["distill"], "options": effective, "label_weight": None}
    return fields


def finished_run(run_dir: Path, cfg) -> dict | None:
    """The summary of a finished run of the same config in ``run_dir`` (seeds may run as parallel jobs), else None."""
    if not (run_dir / "summary.json").is_file():
        return None
    if training_fields(load_config(run_dir / "config.yaml")) != training_fields(cfg):
        raise SystemExit(f"{run_dir} holds a run of another config; remove it or pass --out elsewhere")
    return json.loads((run_dir / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "examples" / "fashion_mnist.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], help="config overrides, as for distill run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--name", default="kd_fashion_mnist", help="result file name (without .json)")
    parser.add_argument("--teacher-checkpoint", help="reuse this teacher (teacher-best.safetensors of an earlier "
                                                     "run of the same config) instead of training it")
    parser.add_argument("--latency-rounds", type=int, default=5, help="alternating timing rounds (0 = skip)")
    parser.add_argument("--runs", help="run folders to read instead of training, with {seed} in the path: the "
                                        "methods benchmark's runs of the demo recipe, e.g. benchmarks/results/"
                                        "methods_runs/kd_demo_recipe-seed{seed} (their config must be the demo's)")
    # Seeds can run as parallel one-thread jobs (--seeds 1 --name part1, ...); a later call with all seeds
    # finds their finished run folders (same config) and only tabulates and times them.
    args = parser.parse_args()
    out = Path(args.out)
    runs_dir = out / "runs"
    started = time.perf_counter()
    torch.set_num_threads(1)

    per_seed = []
    teacher_checkpoint = args.teacher_checkpoint
    summary, first_run = {}, None
    for seed in args.seeds:
        overrides = [*args.set, f"seed={seed}", "evaluate.latency=false"]
        if teacher_checkpoint:
            overrides.append(f"teacher.checkpoint={teacher_checkpoint}")
        cfg = load_config(args.config, overrides)
        run_dir = Path(args.runs.format(seed=seed)) if args.runs else runs_dir / f"{cfg.name}-seed{seed}"
        run_started, cpu_started = time.perf_counter(), time.process_time()
        summary = finished_run(run_dir, cfg)
        if summary is None and args.runs:
            raise SystemExit(f"{run_dir} has no finished run (summary.json)")
        if summary is None:
            summary = run_experiment(cfg, run_dir, quiet=True)
            timing = {"wall": time.perf_counter() - run_started, "cpu": time.process_time() - cpu_started}
            (run_dir / "bench_timing.json").write_text(json.dumps(timing))
        timing = json.loads((run_dir / "bench_timing.json").read_text()) if (run_dir / "bench_timing.json").is_file() \
            else {"wall": None, "cpu": None}
        run_seconds, cpu_seconds = timing["wall"], timing["cpu"]
        first_run = first_run or run_dir
        teacher_checkpoint = teacher_checkpoint or str(run_dir / "checkpoints" / "teacher-best.safetensors")
        models = summary["models"]
        per_seed.append({
            "seed": seed,
            **{role: models[role]["accuracy"] for role in ("teacher", "baseline", "student")},
            **{f"{role}_val": best_val(run_dir, role) for role in ("baseline", "student")},
            "gap_recovered": summary["gap_recovered"],
            **{f"{role}_seconds": models[role]["train_seconds"] for role in ("teacher", "baseline", "student")},
            "agreement": {role: models[role].get("agreement") for role in ("baseline", "student")},
            # seed 0 trains the teacher: its time is what the demo costs (less the latency timing)
            "run_wall_seconds": run_seconds, "run_cpu_seconds": cpu_seconds,
        })
        r = per_seed[-1]
        print(f"seed {seed}: teacher {r['teacher']:.4f}, baseline {r['baseline']:.4f}, student {r['student']:.4f}",
              flush=True)

    teacher_acc = per_seed[0]["teacher"]
    base, kd = mean_std([r["baseline"] for r in per_seed]), mean_std([r["student"] for r in per_seed])
    paired = mean_std([r["student"] - r["baseline"] for r in per_seed])
    models = summary["models"]
    result = {
        "config": args.config, "overrides": args.set, "seeds": args.seeds,
        "resolved_config": (first_run / "config.yaml").read_text() if first_run else None,
        "teacher_accuracy": teacher_acc,
        "baseline": base, "kd": kd,
        "baseline_val": mean_std([r["baseline_val"] for r in per_seed]),
        "kd_val": mean_std([r["student_val"] for r in per_seed]),
        "kd_minus_baseline": kd["mean"] - base["mean"],
        # Same seed = same initial weights, data order and views: the paired difference removes most seed noise.
        "paired_kd_minus_baseline": paired,
        "gap_recovered_of_means": gap_recovered(teacher_acc, base["mean"], kd["mean"]),
        "gap_recovered_per_seed": mean_std([r["gap_recovered"] for r in per_seed if r["gap_recovered"] is not None]),
        "per_seed": per_seed,
        "cost": {role: {k: models[role].get(k) for k in ("params", "macs", "size_bytes")}
                 for role in ("teacher", "student")},
    }
    result["cost"]["macs_ratio"] = models["teacher"]["macs"] / models["student"]["macs"]
    result["cost"]["params_ratio"] = models["teacher"]["params"] / models["student"]["params"]
    if args.latency_rounds > 0 and first_run is not None:
        result["deployed"] = deployed_latency(first_run, args.latency_rounds, repeats=50, batch=256,
                                              teacher=args.teacher_checkpoint)
    result["wall_seconds"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    print_tables(result)


def print_tables(result: dict) -> None:
    console, pct = Console(), lambda v: f"{v * 100:.2f}"
    cost = result["cost"]
    table = Table(title=f"KD on Fashion-MNIST, {len(result['seeds'])} seeds (test accuracy, mean ± std)")
    for column in ("model", "params", "MACs", "test accuracy", "val accuracy"):
        table.add_column(column, justify="right")
    table.add_row("teacher", f"{cost['teacher']['params']:,}", format_macs(cost["teacher"]["macs"]),
                  f"{pct(result['teacher_accuracy'])}%", "")
    for label, key in (("baseline", "baseline"), ("kd", "kd")):
        m, v = result[key], result[f"{key}_val"]
        table.add_row(label, f"{cost['student']['params']:,}", format_macs(cost["student"]["macs"]),
                      f"{pct(m['mean'])} ± {pct(m['std'])}%", f"{pct(v['mean'])} ± {pct(v['std'])}%")
    console.print(table)
    seeds = Table(title="per seed (test accuracy)")
    for column in ("seed", "baseline", "kd", "kd - baseline", "gap recovered"):
        seeds.add_column(column, justify="right")
    for r in result["per_seed"]:
        gap = "n/a" if r["gap_recovered"] is None else f"{r['gap_recovered'] * 100:.1f}%"
        seeds.add_row(str(r["seed"]), f"{pct(r['baseline'])}%", f"{pct(r['student'])}%",
                      f"{(r['student'] - r['baseline']) * 100:+.2f} pp", gap)
    paired, gap = result["paired_kd_minus_baseline"], result["gap_recovered_of_means"]
    seeds.add_row("mean ± std", "", "", f"{paired['mean'] * 100:+.2f} ± {paired['std'] * 100:.2f} pp",
                  "n/a" if gap is None else f"{gap * 100:.1f}% (of the means)")
    console.print(seeds)
    deployed = result.get("deployed")
    if deployed:
        lat = Table(title=f"deployed (onnxruntime, 1 thread, CPU ms, median of {deployed['rounds']} alternating rounds)")
        for column in ("model", "MACs", "test acc", "b1 ms", f"b{deployed['batch']} ms"):
            lat.add_column(column, justify="right")
        for role in ("teacher", "student"):
            for kind in ("fp32", "int8"):
                e = deployed[f"{role}_{kind}"]
                lat.add_row(f"{role} {kind}", format_macs(e["macs"]), f"{pct(e['accuracy'])}%",
                            f"{e['latency_ms_b1']:.3f}", f"{e['latency_ms_bN']:.2f}")
        for kind in ("fp32", "int8"):
            s = deployed[f"speedup_{kind}"]
            lat.add_row(f"teacher / student {kind}", f"{cost['macs_ratio']:.1f}x", "", f"{s['b1']:.1f}x",
                        f"{s['bN']:.1f}x")
        console.print(lat)


if __name__ == "__main__":
    main()
