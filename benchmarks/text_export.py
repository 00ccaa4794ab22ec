"""ONNX fp32 / int8 of the three text students on SST-2: accuracy, size, latency (docs/export.md).

    python benchmarks/text_export.py                 # all three students, about 6 minutes on one thread
    python benchmarks/text_export.py --students textcnn

Each student starts from the packaged all-MiniLM-L6-v2 (frozen token embeddings; the small
transformer also copies layers 0 and 5), trains alone (labels only, no teacher: this measures the
deployment path, not distillation) for one short epoch on the first N training sentences, then goes
through distill.export.pipeline.export_model exactly as `distill export` does: verified fp32 ONNX,
dynamic int8, accuracy on all 1821 SST-2 test sentences, latency at batch 1 and 64 on one thread.
Writes benchmarks/results/text_export_sst2.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import onnxruntime
import torch
from rich.console import Console

from distill.config.schema import DataConfig
from distill.data.bundle import load_data
from distill.export.pipeline import export_model
from distill.export.table import cost_table
from distill.models.registry import build_model, model_options

ROOT = Path(__file__).resolve().parent.parent
STUDENTS = {  # options, training sentences, learning rate
    "textcnn": ({"filters": 100, "freeze_embeddings": True}, 6920, 1e-3),
    "bilstm": ({"hidden": 100, "fc": 100, "freeze_embeddings": True}, 6920, 3e-3),
    "text_transformer": ({"init_from_teacher": {"layers": [0, 5]}, "freeze_embeddings": True}, 2000, 1e-4),
}


def train_alone(name: str, seed: int = 0) -> tuple[torch.nn.Module, object, float]:
    options, sentences, lr = STUDENTS[name]
    data = load_data(DataConfig(dataset="sst2", train_subset=sentences, text={"max_length": 64}))
    context = {k: v for k, v in data.meta["model_context"].items() if k in model_options(name)}
    torch.manual_seed(seed)
    model = build_model(name, data.input_shape, data.num_classes, **context, **options)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    x, y = data.train.inputs, data.train.targets
    start = time.perf_counter()
    model.train()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    for i in range(0, len(x), 50):
        batch = order[i : i + 50]
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), data, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", nargs="+", choices=sorted(STUDENTS), default=list(STUDENTS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "text_export_sst2.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    console = Console()
    results = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                           "onnxruntime": onnxruntime.__version__, "cpu": platform.processor() or platform.machine(),
                           "date": time.strftime("%Y-%m-%d")}, "students": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.students:
            model, data, seconds = train_alone(name)
            start = time.perf_counter()
            report = export_model(model, data, Path(tmp), name, "int8", batch_size=args.batch, repeats=args.repeats,
                                  threads=1)
            report.update({"train_seconds": seconds, "export_seconds": time.perf_counter() - start,
                           "train_sentences": len(data.train)})
            results["students"][name] = report
            rows = [report[k] for k in ("pytorch", "fp32", "int8")]
            console.print(cost_table(rows, f"{name}: {report['test_samples']} SST-2 test sentences, timed on a "
                                           f"{report['sequence']}-token sentence; max diff {report['max_abs_diff']:.1e}"))
    Path(args.out).write_text(json.dumps(results, indent=1))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
