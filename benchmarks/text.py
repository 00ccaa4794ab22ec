"""Text distillation benchmark: one recipe (an experiment YAML), several datasets, 3 seeds, `distill run`'s path.

Every number comes from `distill.pipeline.experiment.run_experiment` on the config, exactly as
`distill run CONFIG --set ...` would produce it: per dataset and seed, one run trains the student
alone (the baseline) and distilled, from the same initial weights. The teacher is trained by the
first seed's run (or taken from --teacher-checkpoint) and reused by the others through
`teacher.checkpoint`; its outputs on the training set and transfer set are cached once per
dataset (`cache.dir`), so later seeds only train students.

    python benchmarks/text.py --config examples/sst2.yaml --datasets sst2 --cost
    python benchmarks/text.py --config examples/sst2.yaml --datasets trec mpqa subj --seeds 0 1 2
    python benchmarks/text.py ... --teacher-checkpoint sst2=runs/sst2/checkpoints/teacher-best.safetensors

`--cost` also exports the teacher and the seed-0 student of the first dataset to ONNX (fp32 and
dynamic int8) and times both in onnxruntime in this one process, one thread, batch 1 on the
median-length test sentence (median of `--repeats` runs): params, bytes, MACs and latency side by side.
A finished run folder (its summary.json) is read back instead of being run again. Writes
`--json` (default benchmarks/results/text_<datasets>.json) and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from distill.config import load_config
from distill.pipeline.experiment import run_experiment
from distill.rundir import read_records

ROOT = Path(__file__).resolve().parents[1]
# How each dataset is named in a config; SUBJ and MPQA get val and test carved with data.split_seed.
DATASETS = {name: [f"data.dataset={name}", f"name={name}"] for name in ("sst2", "trec", "subj", "mpqa")}


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def best_dev(run_dir: Path) -> dict[str, float]:
    """Each model's best validation (dev) accuracy, from the run's per-epoch metrics.jsonl."""
    best: dict[str, float] = {}
    for record in read_records(run_dir / "metrics.jsonl"):
        if record.get("val_accuracy") is not None:
            best[record["model"]] = max(best.get(record["model"], 0.0), record["val_accuracy"])
    return best


def run_one(config: str, overrides: list[str], run_dir: Path, log, quiet: bool = True) -> dict:
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        log(f"{run_dir}: finished earlier, read back")
        return json.loads(summary_path.read_text())
    cfg = load_config(config, overrides)
    started = time.process_time()
    summary = run_experiment(cfg, run_dir, quiet=quiet)
    summary["process_cpu_seconds"] = time.process_time() - started
    summary_path.write_text(json.dumps(summary, indent=1, default=str))
    return summary


def dataset_rows(args, dataset: str, log) -> dict:
    out = Path(args.out) / dataset
    teacher = args.teacher_checkpoints.get(dataset)
    seeds = []
    for seed in args.seeds:
        overrides = [*DATASETS[dataset], *args.set, f"seed={seed}", f"cache.dir={out / 'teacher-cache'}",
                     "evaluate.latency=false", "export.enabled=false"]
        if teacher:
            overrides.append(f"teacher.checkpoint={teacher}")
        summary = run_one(args.config, overrides, out / f"seed{seed}", log, quiet=not args.progress)
        models = summary["models"]
        teacher = teacher or str(out / f"seed{seed}" / "checkpoints" / "teacher-best.safetensors")
        row = {"seed": seed, "run_dir": str(out / f"seed{seed}"), **{
            f"{role}_{key}": models[role][key] for role in ("teacher", "baseline", "student")
            for key in ("accuracy", "params", "size_bytes", "train_seconds") if role in models}}
        row["process_cpu_seconds"] = summary.get("process_cpu_seconds")
        row.update({f"{role}_dev_accuracy": value for role, value in best_dev(out / f"seed{seed}").items()})
        seeds.append(row)
        log(f"{dataset} seed {seed}: teacher {row['teacher_accuracy']:.4f}, alone {row['baseline_accuracy']:.4f}, "
            f"distilled {row['student_accuracy']:.4f}")
    alone = [100 * r["baseline_accuracy"] for r in seeds]
    distilled = [100 * r["student_accuracy"] for r in seeds]
    gains = [d - a for d, a in zip(distilled, alone, strict=True)]
    dev = {role: mean_sd([100 * r[f"{role}_dev_accuracy"] for r in seeds if f"{role}_dev_accuracy" in r])
           for role in ("baseline", "student") if all(f"{role}_dev_accuracy" in r for r in seeds)}
    return {"dataset": dataset, "teacher_checkpoint": teacher, "seeds": seeds, "dev": dev,
            "teacher_accuracy": 100 * seeds[0]["teacher_accuracy"],
            "alone": mean_sd(alone), "distilled": mean_sd(distilled), "gain": mean_sd(gains),
            "gain_per_seed": gains}


def macs(model: torch.nn.Module, ids: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass (torch's FLOP counter / 2: matmuls, linears, convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.cpu().eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(ids)
    return counter.get_total_flops() // 2


def cpu_ms(path: Path, ids: torch.Tensor, repeats: int, warmup: int = 5) -> float:
    """Median process CPU time of one onnxruntime call (one intra-op thread: it runs on this thread),
    which other jobs on a shared machine do not inflate the way they inflate wall time."""
    from distill.export.runtime import session

    sess = session(path, 1)
    name = sess.get_inputs()[0].name
    x = ids.numpy()
    for _ in range(warmup):
        sess.run(None, {name: x})
    times = []
    for _ in range(repeats):
        start = time.process_time()
        sess.run(None, {name: x})
        times.append((time.process_time() - start) * 1000.0)
    return statistics.median(times)


def cost_rows(run_dir: Path, teacher_checkpoint: str, repeats: int, log) -> dict:
    """Teacher and student of one run: exported, timed side by side in onnxruntime (one thread)."""
    from distill.data.run_data import run_data
    from distill.evaluate.checkpoint_eval import load_checkpoint_model
    from distill.evaluate.cost import size_on_disk
    from distill.export.pipeline import export_model, timing_example
    from distill.models.registry import count_parameters

    data = run_data(run_dir)
    rows = {}
    checkpoints = {"teacher": Path(teacher_checkpoint), "student": run_dir / "checkpoints" / "student-best.safetensors"}
    for role, checkpoint in checkpoints.items():
        model, _ = load_checkpoint_model(checkpoint, data.meta.get("model_context"))
        model.eval()
        example = timing_example(model, data.test.inputs)
        log(f"cost: exporting and timing the {role} ({count_parameters(model):,} params)")
        report = export_model(model, data, run_dir / "onnx", role, "int8", batch_size=64, repeats=repeats, threads=1)
        rows[role] = {"params": count_parameters(model), "safetensors_bytes": size_on_disk(model),
                      "macs_b1": macs(model, example), "sequence": int(example.shape[1]),
                      "onnx_fp32_bytes": report["fp32"]["size_bytes"], "onnx_int8_bytes": report["int8"]["size_bytes"],
                      "ort_fp32_ms_b1": report["fp32"]["latency_ms_b1"], "ort_int8_ms_b1": report["int8"]["latency_ms_b1"],
                      "ort_fp32_ms_b64": report["fp32"]["latency_ms_bN"], "ort_int8_ms_b64": report["int8"]["latency_ms_bN"],
                      "torch_ms_b1": report["pytorch"]["latency_ms_b1"],
                      "ort_fp32_cpu_ms_b1": cpu_ms(run_dir / "onnx" / f"{role}.onnx", example, repeats),
                      "ort_int8_cpu_ms_b1": cpu_ms(run_dir / "onnx" / f"{role}.int8.onnx", example, repeats),
                      "accuracy_fp32": report["fp32"]["accuracy"], "accuracy_int8": report["int8"]["accuracy"]}
    return rows


def accuracy_table(results: list[dict]) -> str:
    lines = ["| dataset | seeds | teacher | alone (mean ± sd) | distilled (mean ± sd) | distilled - alone (paired, mean ± sd) "
             "| distilled - teacher | dev: alone / distilled |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['dataset']} | {len(r['seeds'])} | {r['teacher_accuracy']:.2f} | {r['alone'][0]:.2f} ± "
                     f"{r['alone'][1]:.2f} | {r['distilled'][0]:.2f} ± {r['distilled'][1]:.2f} | {r['gain'][0]:+.2f} ± "
                     f"{r['gain'][1]:.2f} | {r['distilled'][0] - r['teacher_accuracy']:+.2f} | {dev_cell(r)} |")
    return "\n".join(lines)


def dev_cell(result: dict) -> str:
    dev = result.get("dev") or {}
    if "baseline" not in dev or "student" not in dev:
        return ""
    return f"{dev['baseline'][0]:.2f} / {dev['student'][0]:.2f}"


def cost_table(cost: dict) -> str:
    t, s = cost["teacher"], cost["student"]
    keys = [("params", "params", "{:,}"), ("safetensors_bytes", "bytes (safetensors)", "{:,}"),
            ("onnx_fp32_bytes", "bytes (ONNX fp32)", "{:,}"), ("onnx_int8_bytes", "bytes (ONNX int8)", "{:,}"),
            ("macs_b1", "MACs, one median sentence", "{:,}"), ("ort_fp32_ms_b1", "onnxruntime fp32 ms, batch 1", "{:.3f}"),
            ("ort_int8_ms_b1", "onnxruntime int8 ms, batch 1", "{:.3f}"),
            ("ort_fp32_cpu_ms_b1", "onnxruntime fp32 CPU ms, batch 1", "{:.3f}"),
            ("ort_int8_cpu_ms_b1", "onnxruntime int8 CPU ms, batch 1", "{:.3f}"),
            ("ort_fp32_ms_b64", "onnxruntime fp32 ms, batch 64", "{:.2f}"),
            ("ort_int8_ms_b64", "onnxruntime int8 ms, batch 64", "{:.2f}"),
            ("accuracy_int8", "test accuracy, int8 ONNX", "{:.4f}")]
    lines = ["| | teacher | student | teacher / student |", "| --- | --- | --- | --- |"]
    for key, label, fmt in keys:
        ratio = f"{t[key] / s[key]:.1f}x" if s[key] and not key.startswith("accuracy") else ""
        lines.append(f"| {label} | {fmt.format(t[key])} | {fmt.format(s[key])} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "examples" / "sst2.yaml"))
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["sst2"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], help="config override for every run (as distill run)")
    parser.add_argument("--teacher-checkpoint", action="append", default=[], metavar="DATASET=PATH",
                        help="reuse this fine-tuned teacher for DATASET instead of training one")
    parser.add_argument("--cost", action="store_true", help="teacher vs student in onnxruntime (first dataset)")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per latency (median)")
    parser.add_argument("--out", default="runs/bench-text")
    parser.add_argument("--json", default=None)
    parser.add_argument("--progress", action="store_true", help="show each run's progress (epochs) as distill run does")
    args = parser.parse_args(argv)
    args.teacher_checkpoints = dict(item.split("=", 1) for item in args.teacher_checkpoint)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "log.txt", "a")

    def log(message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    json_path = Path(args.json or ROOT / "benchmarks" / "results" / f"text_{'_'.join(args.datasets)}.json")
    record = {"config": args.config, "overrides": args.set, "machine": {
        "python": platform.python_version(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")},
        "datasets": []}
    for dataset in args.datasets:
        record["datasets"].append(dataset_rows(args, dataset, log))
        json_path.write_text(json.dumps(record, indent=1))
    print(accuracy_table(record["datasets"]))
    if args.cost:
        first = record["datasets"][0]
        record["cost"] = cost_rows(Path(first["seeds"][0]["run_dir"]), first["teacher_checkpoint"], args.repeats, log)
        json_path.write_text(json.dumps(record, indent=1))
        print(cost_table(record["cost"]))
    log(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
