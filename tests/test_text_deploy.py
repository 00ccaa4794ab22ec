"""Search, deploy, report on text runs: ONNX export of the text students (int64 token ids, dynamic
batch and sequence), int8, `distill export` / `bench` / `report` / `search`, on a tiny local BERT
and a few hundred made-up sentences (seconds on one thread)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from distill.cli import main
from distill.data.run_data import run_data
from distill.evaluate.checkpoint_eval import load_checkpoint_model
from distill.export.quantize import calibration_batches
from distill.export.runtime import example_input, metadata, op_types, run_batches, session
from distill.models import hf
from distill.models.predict import predict
from distill.models.registry import build_model
from distill.models.text import _OnnxPackedLSTM, onnx_lstm_weights
from distill.train.checkpoint import load_tensors, save_tensors

from .text_helpers import tiny_model_dir

pytest.importorskip("onnxruntime")
optuna = pytest.importorskip("optuna", reason="the search extra (optuna) is not installed")

POSITIVE, NEGATIVE = ("good", "great", "fun", "funny"), ("bad", "awful", "boring", "dull")
FILLER = "a the movie film is was very and it story acting".split()
MAX_LENGTH = 12
CLASSES = ["negative", "positive"]
STUDENTS = {  # each learns the task in a few epochs; int8 markers: what dynamic quantization must produce
    "textcnn": ({"filters": 8, "kernel_sizes": [2, 3]}, 3, 1e-2, "MatMulInteger"),
    "bilstm": ({"hidden": 16, "fc": 16, "dropout": 0.0}, 4, 1e-2, "DynamicQuantizeLSTM"),
    "text_transformer": ({"init_from_teacher": {"layers": [0]}}, 3, 1e-2, "MatMulInteger"),
}


def sentences(n: int, rng: random.Random) -> str:
    """``LABEL SENTENCE`` lines; the label is the sentiment of the one polar word among filler words."""
    lines = []
    for _ in range(n):
        label = rng.randrange(2)
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 6))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        lines.append(f"{label} {' '.join(words)}\n")
    return "".join(lines)


@pytest.fixture(scope="module")
def text_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    tiny_model_dir(root / "bert", layers=2)
    rng = random.Random(0)
    for split, n in (("train", 300), ("val", 80), ("test", 80)):
        (root / f"{split}.txt").write_text(sentences(n, rng))
    return root


def write_config(root, student: str, path, **extra) -> str:
    options, epochs, lr, _ = STUDENTS[student]
    cfg = {
        "name": f"tiny-{student}",
        "data": {"dataset": "text_files", "text": {"root": str(root), "train": "train.txt", "val": "val.txt",
                                                   "test": "test.txt", "max_length": MAX_LENGTH,
                                                   "label_names": CLASSES}},
        "teacher": {"model": {"name": "hf_classifier", "path": str(root / "bert")},
                    "train": {"epochs": 2, "batch_size": 32, "optimizer": "adamw", "lr": 3e-3}},
        "student": {"model": {"name": student, **options},
                    "train": {"epochs": epochs, "batch_size": 32, "optimizer": "adamw", "lr": lr}},
        "distill": {"method": "kd"}, "baseline": False, "evaluate": {"latency": False},
        "runtime": {"device": "cpu", "threads": 1},
        "export": {"enabled": True, "latency_repeats": 3, "latency_batch": 8},
        **extra,
    }
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def runs(text_root, tmp_path_factory):
    """One `distill run` per text student, each with the export block on."""
    out = tmp_path_factory.mktemp("runs")
    folders = {}
    before = set(Path.cwd().iterdir())
    for student in STUDENTS:
        config = write_config(text_root, student, out / f"{student}.yaml")
        folders[student] = out / student
        assert main(["run", config, "--out", str(folders[student]), "--quiet"]) == 0
    # nothing written outside the run folders (onnxruntime's shape inference can drop files in the cwd)
    assert set(Path.cwd().iterdir()) == before
    return folders


@pytest.mark.parametrize("student", sorted(STUDENTS))
def test_run_export_block_writes_verified_int64_onnx_and_int8(student, runs):
    run_dir = runs[student]
    summary = json.loads((run_dir / "summary.json").read_text())
    entry = summary["export"]
    assert entry["input"] == "token_ids" and entry["max_abs_diff"] <= entry["tolerance"]
    sess = session(run_dir / "student.onnx")
    assert sess.get_inputs()[0].type == "tensor(int64)" and sess.get_inputs()[0].shape == ["batch", "sequence"]

    # Independently of the exporter's own check: the run's test sentences, rebuilt from config.yaml,
    # through the checkpoint in PyTorch and through the file, padded as stored and trimmed to the longest.
    data = run_data(run_dir)
    model, _ = load_checkpoint_model(run_dir / "checkpoints" / "student-best.safetensors")
    ids = data.test.inputs
    expected = predict(model, ids).numpy()
    tolerance = 1e-4 * max(1.0, float(np.abs(expected).max()))
    trimmed = hf.trim(ids, model.pad_id)
    assert trimmed.shape[1] < ids.shape[1] == MAX_LENGTH
    for x in (ids, trimmed, ids[:1]):
        np.testing.assert_allclose(run_batches(sess, x.numpy(), 16), expected[: len(x)], rtol=0, atol=tolerance)

    accuracy = summary["models"]["student"]["accuracy"]
    assert accuracy > 0.8  # chance is 0.5: the student learned, so the int8 comparison means something
    assert entry["pytorch"]["accuracy"] == pytest.approx(accuracy)
    assert entry["fp32"]["accuracy"] == pytest.approx(accuracy, abs=1 / len(ids))
    assert entry["int8_method"] == "dynamic"
    assert abs(entry["int8_accuracy_drop"]) <= 0.05
    assert entry["int8"]["size_bytes"] < entry["fp32"]["size_bytes"]
    ops = op_types(run_dir / "student.int8.onnx")
    assert STUDENTS[student][3] in ops
    if student == "textcnn":  # its convolutions stay fp32 (ConvInteger is slow; see export/quantize.py)
        assert "Conv" in ops and "ConvInteger" not in ops
    print(f"{student}: pytorch {accuracy:.3f}, fp32 {entry['fp32']['accuracy']:.3f}, "
          f"int8 {entry['int8']['accuracy']:.3f}, max diff {entry['max_abs_diff']:.1e}")


def test_cli_export_and_bench_on_a_text_run(runs, text_root, tmp_path, capsys):
    run_dir = runs["textcnn"]
    summary = json.loads((run_dir / "summary.json").read_text())
    out = tmp_path / "exported"
    assert main(["export", str(run_dir), "--format", "onnx", "--quantize", "int8", "--out", str(out),
                 "--repeats", "3", "--batch", "8"]) == 0
    report = json.loads((out / "export.json").read_text())
    assert report["model_spec"]["name"] == "textcnn" and report["input"] == "token_ids"
    # run_data rebuilt the run's own sentences and tokenizer: the same accuracies as inside the run
    for key in ("pytorch", "fp32", "int8"):
        assert report[key]["accuracy"] == pytest.approx(summary["export"][key]["accuracy"])
    assert 0 < report["sequence"] < MAX_LENGTH  # timed on a real sentence without its padding

    # A checkpoint inside a text run's folder is evaluated on that run's data: the teacher (a BERT)
    teacher = run_dir / "checkpoints" / "teacher-best.safetensors"
    assert main(["export", str(teacher), "--out", str(tmp_path / "teacher"), "--repeats", "2", "--batch", "4"]) == 0
    teacher_report = json.loads((tmp_path / "teacher" / "export.json").read_text())
    assert teacher_report["max_abs_diff"] <= teacher_report["tolerance"]
    assert teacher_report["fp32"]["accuracy"] == pytest.approx(summary["models"]["teacher"]["accuracy"],
                                                               abs=1 / summary["test_samples"])

    # Checkpoints record the tokenizer context now; one written before (without it) still rebuilds
    # inside its run folder, from the run's config.yaml.
    checkpoint = run_dir / "checkpoints" / "student-best.safetensors"
    tensors, meta = load_tensors(checkpoint)
    assert meta["model"]["options"]["teacher_path"] == str(text_root / "bert")
    for key in ("teacher_path", "vocab_size", "pad_id"):
        del meta["model"]["options"][key]
    save_tensors(run_dir / "checkpoints" / "older-best.safetensors", tensors, meta)

    capsys.readouterr()
    files = [str(out / "student.onnx"), str(out / "student.int8.onnx"), str(checkpoint),
             str(run_dir / "checkpoints" / "older-best.safetensors")]
    for extra, length in (([], MAX_LENGTH), (["--seq-len", "5"], 5)):
        json_path = tmp_path / f"bench{length}.json"
        assert main(["bench", *files, "--repeats", "3", "--batch", "4", "--json", str(json_path), *extra]) == 0
        rows = json.loads(json_path.read_text())["rows"]
        assert [r["runtime"] for r in rows] == ["onnxruntime", "onnxruntime", "pytorch", "pytorch"]
        assert all(r["sequence"] == length and r["latency_ms_b1"] > 0 for r in rows)
    printed = capsys.readouterr().out
    assert "len" in printed and "student.int8.onnx" in printed

    meta = metadata(out / "student.onnx")
    assert meta["distill.input"] == "token_ids" and int(meta["distill.max_length"]) == MAX_LENGTH
    ids = example_input(out / "student.onnx", session(out / "student.onnx"), batch=2, sequence=7)
    assert ids.dtype == np.int64 and ids.shape == (2, 7)
    assert ids.min() >= 1 and ids.max() < int(meta["distill.vocab_size"])  # valid ids, no padding
    assert not (ids == int(meta["distill.pad_id"])).any()


def test_cli_evaluate_scores_text_checkpoints_on_their_own_data(runs, text_root, tmp_path, capsys):
    run_dir = runs["textcnn"]
    summary = json.loads((run_dir / "summary.json").read_text())
    checkpoints = run_dir / "checkpoints"

    def evaluate(*args) -> dict:
        capsys.readouterr()
        assert main(["evaluate", *args, "--no-latency"]) == 0
        return json.loads(capsys.readouterr().out)

    # Inside the run folder: the run's sentences and tokenizer, rebuilt from config.yaml; the same
    # accuracies as the run measured on its own models (not Fashion-MNIST).
    for role in ("student", "teacher"):
        result = evaluate(str(checkpoints / f"{role}-best.safetensors"))
        assert result["dataset"] == "text_files" and result["samples"] == summary["test_samples"]
        assert result["model"]["name"] == ("textcnn" if role == "student" else "hf_classifier")
        assert result["accuracy"] == pytest.approx(summary["models"][role]["accuracy"])
    accuracy = summary["models"]["student"]["accuracy"]
    assert accuracy > 0.8

    # Outside it the data cannot be guessed: a one-line error naming the options that say it.
    lone = tmp_path / "student.safetensors"
    shutil.copy(checkpoints / "student-best.safetensors", lone)
    capsys.readouterr()
    assert main(["evaluate", str(lone)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not inside a run folder" in err and "--config" in err and "--dataset" in err
    # ... which then give the same accuracy: the run's config, or a dataset by name and its directory
    # (tokenised with the tokenizer the checkpoint records)
    assert evaluate(str(lone), "--config", str(run_dir / "config.yaml"))["accuracy"] == pytest.approx(accuracy)
    sst2 = tmp_path / "sst2"
    sst2.mkdir()
    for split, name in (("train", "sst2.train.txt"), ("val", "sst2.dev.txt"), ("test", "sst2.test.txt")):
        shutil.copy(text_root / f"{split}.txt", sst2 / name)
    result = evaluate(str(lone), "--dataset", "sst2", "--data", str(sst2))
    assert result["dataset"] == "sst2" and result["accuracy"] == pytest.approx(accuracy)


def test_report_regenerates_for_a_text_run(runs):
    run_dir = runs["textcnn"]
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    html = (run_dir / "report.html").read_text()
    assert "student int8" in html and "Confusion matrices" in html
    assert "true negative, predicted positive" in html  # the dataset's class names label the matrices


def test_search_on_a_tiny_text_config(text_root, tmp_path):
    config = write_config(text_root, "textcnn", tmp_path / "search.yaml", search={
        "sampler": "grid", "space": {"distill.options.temperature": {"choices": [2.0, 4.0]}}})
    folder = tmp_path / "search"
    assert main(["search", config, "--out", str(folder), "--quiet", "--set", "export.enabled=false"]) == 0
    trials = json.loads((folder / "trials.json").read_text())
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]
    assert sorted(t["params"]["distill.options.temperature"] for t in trials) == [2.0, 4.0]
    assert all(0.5 < t["value"] <= 1 for t in trials)
    assert (folder / "best.yaml").is_file() and (folder / "report.html").is_file()
    assert (folder / "teacher.safetensors").is_file()  # trained once, shared by the second trial


def test_textcnn_logits_do_not_depend_on_the_batch(text_root):
    torch.manual_seed(0)
    model = build_model("textcnn", (MAX_LENGTH,), 2, kernel_sizes=[2, 4], filters=4, dropout=0.0,
                        teacher_path=str(text_root / "bert")).eval()
    short = torch.tensor([[2, 7, 8, 3, 0, 0, 0, 0, 0, 0, 0, 0]])
    long = torch.tensor([[2, 7, 8, 9, 10, 11, 12, 13, 3, 0, 0, 0]])
    with torch.no_grad():
        alone = model(short)
        batched = model(torch.cat([short, long]))[:1]
        full = model(torch.cat([long, long]))  # trimmed to 9 columns, then padded k - 1 = 3: all 12
    torch.testing.assert_close(alone, batched)
    torch.testing.assert_close(full[:1], model(long))


def test_onnx_lstm_stand_in_matches_the_packed_lstm(text_root):
    torch.manual_seed(0)
    model = build_model("bilstm", (MAX_LENGTH,), 2, hidden=6, fc=4, teacher_path=str(text_root / "bert")).eval()
    x = torch.randn(3, 5, model.lstm.input_size)
    lengths = torch.tensor([5, 2, 1])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        expected = model.lstm(packed)[1][0]
        got = _OnnxPackedLSTM.apply(x, lengths, *onnx_lstm_weights(model.lstm))
    torch.testing.assert_close(got, expected)


def test_calibration_batches_keep_token_ids_integer():
    ids = np.arange(40, dtype=np.int64).reshape(10, 4)
    batches = calibration_batches(ids, 2, 3)
    assert [b.dtype for b in batches] == [np.int64, np.int64] and [len(b) for b in batches] == [3, 3]
    rows = {tuple(r) for r in ids}
    assert all(tuple(r) in rows for b in batches for r in b)  # whole rows of ids, not converted to float
