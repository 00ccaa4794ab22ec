"""Export one trained model: fp32 ONNX (verified), optional int8, accuracy and cost of each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distill.data.bundle import DataBundle
from distill.data.lazy import is_lazy
from distill.data.text import is_token_ids, length_order
from distill.errors import CheckpointError
from distill.export.bench import bench_onnx, bench_torch
from distill.export.onnx_export import export_onnx
from distill.export.quantize import calibration_batches, choose_method, quantize_int8
from distill.export.runtime import accuracy, session
from distill.io import atomic_write_text
from distill.models.predict import input_preparer, predict
from distill.models.text_vocab import find_token_map

VERIFY_SAMPLES = 32


def resolve_target(target: str | Path) -> tuple[Path, Path | None]:
    """(checkpoint, run folder or None) for a run folder (its student) or a checkpoint file."""
    target = Path(target)
    if target.is_dir():
        checkpoint = target / "checkpoints" / "student-best.safetensors"
        if not checkpoint.is_file():
            raise CheckpointError(f"{target} is not a finished run folder: {checkpoint} is missing")
        return checkpoint, target
    if not target.exists():
        raise CheckpointError(f"checkpoint or run folder not found: {target}")
    return target, None


def _torch_accuracy(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    logits = predict(model, inputs, 1000, input_preparer(model, True))
    return float((logits.argmax(1) == targets).float().mean())


def timing_example(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The sample the latencies are measured on: the first test image, or for token ids the test
    sentence of median length with its padding columns dropped (both runtimes then see the same
    ids; PyTorch text models drop them by themselves, the ONNX graph keeps whatever it is given)."""
    pad_id = getattr(model, "pad_id", None)
    if not is_token_ids(inputs) or pad_id is None:
        return inputs[:1]
    index = int(length_order(inputs, pad_id)[len(inputs) // 2])
    return inputs[index : index + 1, : max(1, int((inputs[index] != pad_id).sum()))]


def onnx_metadata(model: nn.Module, data: DataBundle) -> dict:
    """What a later `distill bench` needs to make up inputs: for text, the ids' range and length."""
    meta = {"distill.dataset": data.name, "distill.classes": json.dumps(list(data.class_names))}
    if is_token_ids(data.test.inputs):
        context = data.meta.get("model_context", {})
        meta.update({"distill.input": "token_ids", "distill.max_length": data.test.inputs.shape[1],
                     "distill.pad_id": getattr(model, "pad_id", context.get("pad_id")),
                     "distill.vocab_size": context.get("vocab_size")})
        token_map = find_token_map(model)
        if token_map is not None:
            # The graph maps the tokenizer's ids to its own rows itself; this records which tokens it kept
            # (row i is tokenizer id kept[i]; every other id is read as [UNK]).
            meta.update({"distill.vocabulary": json.dumps(token_map.kept.tolist()),
                         "distill.unk_id": token_map.unk_id})
    else:
        meta["distill.input"] = "float"
    return meta


def export_model(model: nn.Module, data: DataBundle, out_dir: str | Path, name: str = "student",
                 quantize: str | None = "int8", opset: int = 17, calibration: int = 8,
                 calibration_batch_size: int = 32, batch_size: int = 64, repeats: int = 50,
                 threads: int | None = 1) -> dict:
    """Write ``<name>.onnx`` (and ``<name>.int8.onnx``) under ``out_dir``; return what was measured.

    Latencies use ``threads`` intra-op threads in both runtimes (None: each runtime's default).
    Accuracies are on the whole test split, in PyTorch and in onnxruntime.
    """
    out_dir = Path(out_dir)
    model = model.cpu().eval()
    test_x, test_y = _test_inputs(data.test.inputs), data.test.targets.cpu()
    example = timing_example(model, test_x)
    fp32 = export_onnx(model, data.val.inputs[:VERIFY_SAMPLES].cpu(), out_dir / f"{name}.onnx", opset,
                       metadata=onnx_metadata(model, data))
    report = {"opset": opset, "test_samples": len(test_y), "batch": batch_size, "max_abs_diff": fp32.max_abs_diff,
              "tolerance": fp32.tolerance, "input": "token_ids" if is_token_ids(test_x) else "float"}
    if is_token_ids(test_x):
        report["sequence"] = int(example.shape[1])  # token ids in the timed sentence
    report["pytorch"] = bench_torch(model, example, batch_size, repeats, input_preparer(model, True), name,
                                    threads=threads)
    report["pytorch"]["accuracy"] = _torch_accuracy(model, test_x, test_y)
    files = {"fp32": fp32.path}
    if quantize == "int8":
        files["int8"] = out_dir / f"{name}.int8.onnx"
        batches = None
        if choose_method(fp32.path) == "static":
            batches = calibration_batches(_host(data.train.inputs), calibration, calibration_batch_size)
        report["int8_method"] = quantize_int8(fp32.path, files["int8"], batches)
    for key, path in files.items():
        entry = bench_onnx(path, example.numpy(), batch_size, repeats, threads)
        entry["model"] = path.name
        entry["accuracy"] = accuracy(session(path), test_x.numpy(), test_y.numpy())
        report[key] = entry
    if "int8" in report:
        report["int8_accuracy_drop"] = report["fp32"]["accuracy"] - report["int8"]["accuracy"]
    return report


def write_report(path: Path, report: dict) -> None:
    atomic_write_text(path, json.dumps(report, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


def _host(inputs):
    """Training inputs for calibration: a numpy array, or the files on disk as they are (decoded there)."""
    return inputs if is_lazy(inputs) else inputs.cpu().numpy()


def _test_inputs(inputs):
    """The test inputs on the host; a streamed test split is decoded here (the ONNX checks need an array)."""
    return inputs.cpu()[slice(None)] if is_lazy(inputs) else inputs.cpu()
