"""Teacher vs distilled student vs int8 student: accuracy, size and latency, in PyTorch and onnxruntime.

    python benchmarks/export_bench.py                      # runs examples/quick.yaml first
    python benchmarks/export_bench.py --run runs/quick-... # or measure an existing run folder

Prints a table and writes the numbers to benchmarks/results/export_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

from distill.cli import main as distill_main
from distill.data.run_data import run_data
from distill.evaluate.checkpoint_eval import load_checkpoint_model
from distill.export.pipeline import export_model, write_report
from distill.export.table import cost_table

ROOT = Path(__file__).resolve().parent.parent


def measure(run_dir: Path, out_dir: Path, batch: int, repeats: int, threads: int) -> dict:
    data = run_data(run_dir)
    results = {}
    for role in ("teacher", "student"):
        model, spec = load_checkpoint_model(run_dir / "checkpoints" / f"{role}-best.safetensors",
                                            data.meta.get("model_context"))
        results[role] = {"model_spec": spec, **export_model(model, data, out_dir, role, "int8", batch_size=batch,
                                                            repeats=repeats, threads=threads)}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing run folder (default: run --config first)")
    parser.add_argument("--config", default=str(ROOT / "examples" / "quick.yaml"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="default benchmarks/results/export_<run name>.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run
        if run_dir is None:
            run_dir = Path(tmp) / "run"
            if distill_main(["run", args.config, "--out", str(run_dir), "--quiet"]) != 0:
                return 1
        results = measure(run_dir, Path(tmp) / "onnx", args.batch, args.repeats, args.threads)
    rows = [results[role][key] for role in ("teacher", "student") for key in ("pytorch", "fp32", "int8")]
    name = json.loads((Path(run_dir) / "summary.json").read_text())["name"] if args.run else Path(args.config).stem
    Console().print(cost_table(rows, f"{name}: {results['student']['test_samples']} test samples, "
                                     f"{args.threads} thread(s)"))
    report = {"run": name, "config": args.config if args.run is None else str(args.run),
              "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "threads": args.threads, "rows": rows, "details": results}
    out = args.json or ROOT / "benchmarks" / "results" / f"export_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_report(out, report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
