"""`distill export` and `distill bench`: argument wiring only; the work is in the other modules."""

from __future__ import annotations

import argparse
from pathlib import Path

from distill.errors import ConfigError


def cmd_export(args: argparse.Namespace) -> int:

    from distill.data.run_data import enclosing_run, is_text_config, run_data
    from distill.evaluate.checkpoint_eval import load_checkpoint_model, shown_spec
    from distill.export.pipeline import export_model, resolve_target, write_report
    from distill.export.table import cost_table

    checkpoint, run_dir = resolve_target(args.target)
    if run_dir is not None and is_lm_run(run_dir):
        return export_lm_run(run_dir, checkpoint, args)
    data_dir = run_dir
    if data_dir is None and is_text_config(enclosing_run(checkpoint)):
        # A text model is only meaningful with its run's tokenizer and sentences.
        data_dir = enclosing_run(checkpoint)
    data = run_data(data_dir, args.data)
    model, spec = load_checkpoint_model(checkpoint, data.meta.get("model_context"))
    out = Path(args.out) if args.out else (run_dir or checkpoint.parent)
    from distill.rundir import check_writable_folder

    check_writable_folder(out)
    name = "student" if run_dir else checkpoint.stem.removesuffix("-best")
    report = export_model(model, data, out, name, args.quantize, args.opset, args.calibration_batches,
                          batch_size=args.batch, repeats=args.repeats, threads=args.threads or None)
    report = {"checkpoint": str(checkpoint), "model_spec": shown_spec(spec), **report}
    write_report(out / "export.json", report)
    summary_run = run_dir or (enclosing_run(checkpoint) if checkpoint.name == "student-best.safetensors" else None)
    # the run's summary.json gets the numbers; cli.py then rebuilds its report.html (report is not ours to import)
    args.updated_run = summary_run if summary_run is not None and merge_into_summary(summary_run, report) else None
    from distill.terminal import fit_table, output_console

    console = output_console()
    rows = [report[k] for k in ("pytorch", "fp32", "int8") if k in report]
    length = f", timed on a {report['sequence']}-token sentence" if "sequence" in report else ""
    console.print(fit_table(cost_table(rows, f"{name}: {report['test_samples']} test samples{length}"), console))
    console.print(f"max |onnxruntime - pytorch| = {report['max_abs_diff']:.2e} (tolerance {report['tolerance']:.1e}); "
                  f"wrote {out / 'export.json'}")
    return 0


def is_lm_run(run_dir: Path) -> bool:
    from distill.data.run_data import run_config

    return run_config(Path(run_dir)).get("task") == "causal_lm"


def export_lm_run(run_dir: Path, checkpoint: Path, args: argparse.Namespace) -> int:
    """causal_lm: the run's student as a Hugging Face directory (RUN/student-hf, or --out)."""
    from distill.data.run_data import run_data
    from distill.evaluate.checkpoint_eval import load_checkpoint_model
    from distill.export.hf_export import HF_DIR, export_hf
    from distill.models.causal_lm import load_lm_tokenizer
    from distill.terminal import output_console

    data = run_data(run_dir, None)
    model, _ = load_checkpoint_model(checkpoint, data.meta.get("model_context"))
    out = Path(args.out) if args.out else run_dir / HF_DIR
    report = export_hf(model, load_lm_tokenizer(data.meta["lm"]["tokenizer"]), out, data.test.inputs[:1, :16])
    report = {"checkpoint": str(checkpoint), **report}
    args.updated_run = run_dir if merge_into_summary(run_dir, report) else None
    output_console().print(f"wrote {out} ({', '.join(report['files'])}): transformers loads it (max |loaded - "
                           f"trained| logits {report['max_abs_diff']:.1e}) and generates", highlight=False)
    return 0


def merge_into_summary(run_dir: Path, report: dict) -> bool:
    """The run's summary.json gets the export's numbers, as an `export: {enabled: true}` run would write
    them (summary["export"]); False when the run has no summary.json."""
    import json

    from distill.io import atomic_write_text

    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        return False
    summary = json.loads(path.read_text())
    summary["export"] = json.loads(json.dumps(report, default=str))
    atomic_write_text(path, json.dumps(summary, indent=2))
    return True


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from distill.data.run_data import enclosing_run, text_context
    from distill.errors import DistillError
    from distill.evaluate.checkpoint_eval import load_checkpoint_model
    from distill.export.bench import bench_onnx, bench_torch
    from distill.export.pipeline import write_report
    from distill.export.table import cost_table
    from distill.models.predict import input_preparer

    rows, failed = [], []
    for item in args.models:
        path = Path(item)
        try:  # one file that cannot be timed does not stop the others
            if path.suffix == ".onnx":
                rows.append(bench_onnx(path, None, args.batch, args.repeats, args.threads or None, args.seq_len))
            elif path.suffix == ".safetensors":
                model, spec = load_checkpoint_model(path, text_context(enclosing_run(path)) if path.is_file() else None)
                example = torch_example(model, spec, args.seq_len)
                rows.append(bench_torch(model, example, args.batch, args.repeats, input_preparer(model, True),
                                        str(path), size_bytes=path.stat().st_size, threads=args.threads or None))
            else:
                raise ConfigError(f"{path}: distill bench takes .onnx or .safetensors files")
        except DistillError as exc:
            if len(args.models) == 1:
                raise  # the only file: its reason is the one-line error
            failed.append(str(exc))
    if not rows:  # nothing to show: one line, the file's own error (or each file's, joined)
        raise ConfigError(failed[0] if len(failed) == 1 else
                          f"none of the {len(failed)} model files could be timed: " + "; ".join(failed))
    for message in failed:  # the others were timed; say why these were not
        Console(stderr=True).print(f"[bold red]skipped:[/bold red] {escape(message)}", highlight=False,
                                   soft_wrap=True)
    threads = args.threads or "default"
    from distill.terminal import fit_table, output_console

    console = output_console()
    console.print(fit_table(cost_table(rows, f"{args.repeats} timed runs at batch 1, {max(3, args.repeats // 4)} "
                                             f"at batch {args.batch}, threads: {threads}"), console))
    if args.json:
        write_report(Path(args.json), {"rows": rows, "skipped": failed})
    return 2 if failed else 0  # 2: bad input (the exit code of one-line errors); the rest was timed


def torch_example(model, spec: dict, sequence: int | None = None):
    """A made-up input for timing a rebuilt checkpoint: noise for images; for token-id models (those
    with an embedding table) random ids of length ``sequence`` (default: the run's max_length)."""
    import torch

    from distill.export.runtime import DEFAULT_SEQUENCE, random_ids

    tables = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    if not tables:
        return torch.randn(1, *spec["input_shape"], generator=torch.Generator().manual_seed(0))
    length = sequence or (spec["input_shape"][0] if spec.get("input_shape") else DEFAULT_SEQUENCE)
    return torch.from_numpy(random_ids(tables[0].num_embeddings, length, getattr(model, "pad_id", None)))


def _at_least(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _common(parser: argparse.ArgumentParser) -> None:
    # --batch-size as in `distill evaluate`; --batch is the old spelling, kept working
    parser.add_argument("--batch-size", "--batch", dest="batch", type=_at_least(1), default=64, metavar="N",
                        help="batch size N for latency and throughput (default 64)")
    parser.add_argument("--repeats", type=_at_least(1), default=50,
                        help="timed runs at batch 1 after warm-up; a quarter of them at batch N (default 50)")
    parser.add_argument("--threads", type=_at_least(0), default=1,
                        help="intra-op threads of both runtimes while timing (default 1; 0 = the runtime's default)")


def add_commands(subparsers) -> None:
    """Register `export` and `bench` on the `distill` sub-command parser."""
    ex = subparsers.add_parser(
        "export", help="export a trained model to ONNX (optionally int8), verify it, measure it",
        description="Export a run's distilled student (RUN_DIR) or any distill checkpoint to ONNX, check it "
                    "against PyTorch, optionally quantize it to int8, and write export.json with accuracies, "
                    "sizes and latencies.")
    ex.add_argument("target", metavar="RUN_DIR|CHECKPOINT",
                    help="a run folder (uses checkpoints/student-best.safetensors) or a .safetensors checkpoint")
    ex.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default onnx)")
    ex.add_argument("--quantize", choices=["int8"], help="also write <name>.int8.onnx (post-training quantization)")
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    ex.add_argument("--out", help="output folder (default: the run folder, or the checkpoint's folder)")
    ex.add_argument("--data", help="directory of the Fashion-MNIST IDX files, or of a text run's sentence files "
                                   "(default: the run's, or the usual place)")
    ex.add_argument("--calibration-batches", type=_at_least(1), default=8, metavar="N",
                    help="training batches of 32 used to calibrate static int8 (image CNNs; default 8)")
    _common(ex)
    ex.set_defaults(func=cmd_export)

    be = subparsers.add_parser(
        "bench", help="latency and throughput of .onnx / .safetensors models",
        description="Time models on this CPU: median and p90 latency at batch 1 and batch N after warm-up, "
                    "throughput at batch N, parameters and size on disk. .onnx files run in onnxruntime, "
                    ".safetensors checkpoints in PyTorch. Inputs are made up: noise for image models, "
                    "random token ids (int64) for text models.")
    be.add_argument("models", nargs="+", metavar="MODEL", help=".onnx or .safetensors files")
    _common(be)
    be.add_argument("--seq-len", type=_at_least(1), metavar="L",
                    help="text models: token ids per made-up sentence (default: the model's max_length, else 64)")
    be.add_argument("--json", metavar="FILE", help="also write the measurements to this JSON file")
    be.set_defaults(func=cmd_bench)
