"""runtime.parallel: fsdp: two gloo processes shard the student (FSDP2) and train it as DDP / one process would.

A tiny image student (an MLP with a FitNets regressor, so the method's trainable part is sharded
too) against one process on the same global batch, interrupted and resumed in one process from
the full checkpoint FSDP wrote; a tiny random llama student against DDP on the same batches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from distill.checkpoint import load_tensors
from distill.models.registry import build_model
from distill.train.checkpoint import save_tensors
from tests.lm_helpers import tiny_llama_dir, write_pairs

ROOT = Path(__file__).resolve().parents[1]
STOP = "DISTILL_TEST_STOP_AFTER_EPOCH"
PLUGIN = f'''
import os
import distill

@distill.on_epoch
def stop(trainer, record):  # a kill after epoch N's checkpoint (only where the test sets {STOP})
    if os.environ.get("{STOP}") == str(record["epoch"]):
        raise KeyboardInterrupt
'''


def launch(config: Path, out: Path, nproc: int, *extra: str, env_extra: dict | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env.update({"PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1", **(env_extra or {})})
    cmd = [sys.executable, "-m", "distill", "run", str(config), "--out", str(out), "--quiet", "--nproc", str(nproc),
           *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def weights(run: Path, name: str = "student") -> dict[str, torch.Tensor]:
    tensors, _ = load_tensors(run / "checkpoints" / f"{name}-last.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "method."))}


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=atol, msg=k)


def image_config(tmp_path: Path, parallel: str) -> Path:
    torch.manual_seed(0)
    teacher = build_model("mlp", (1, 28, 28), 10, hidden=[32])
    save_tensors(tmp_path / "teacher.safetensors", teacher.state_dict())
    (tmp_path / "stop_plugin.py").write_text(PLUGIN)
    cfg = {
        "name": "fsdp", "seed": 1, "imports": [str(tmp_path / "stop_plugin.py")],
        "data": {"train_subset": 256, "val_size": 100, "test_subset": 100},
        "teacher": {"model": {"name": "mlp", "hidden": [32]}, "checkpoint": str(tmp_path / "teacher.safetensors")},
        "student": {"model": {"name": "mlp", "hidden": [16]},
                    "train": {"epochs": 3, "batch_size": 64, "lr": 0.1}},
        "baseline": False,
        "distill": {"method": "fitnets", "options": {"student_layer": "2", "teacher_layer": "2", "hint_weight": 1.0}},
        "cache": {"mode": "on", "dtype": "float32"},
        "evaluate": {"latency": False},
        "runtime": {"device": "cpu", "threads": 1, "parallel": parallel},
    }
    path = tmp_path / f"image-{parallel}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_fsdp_image_student_matches_one_process_and_resumes_in_one(tmp_path, fashion_mnist_root):
    config = image_config(tmp_path, "fsdp")
    # Two processes, killed after epoch 2's checkpoint.
    two = launch(config, tmp_path / "fsdp", 2, env_extra={STOP: "2"})
    assert two.returncode == 1 and "exitcode  : 130" in two.stderr, two.stderr[-3000:]  # both ranks stopped
    ckpt = tmp_path / "fsdp" / "checkpoints"
    assert json.loads((ckpt / "student-trainer-state.json").read_text())["epoch"] == 2
    # The checkpoint is full: it loads into a fresh student in this one process.
    tensors, meta = load_tensors(ckpt / "student-best.safetensors")
    build_model("mlp", (1, 28, 28), 10, hidden=[16]).load_state_dict(tensors)  # strict: every tensor whole
    assert meta["model"]["name"] == "mlp"
    # The reference: one process, the same global batch of 64, uninterrupted.
    one = launch(image_config(tmp_path, "ddp"), tmp_path / "one", 1)
    assert one.returncode == 0, one.stderr[-3000:]
    # Resumed in one process (another world size, parallel ddp) from the FSDP checkpoint, to the end.
    resumed = launch(image_config(tmp_path, "ddp"), tmp_path / "fsdp", 1, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_weights(weights(tmp_path / "fsdp"), weights(tmp_path / "one"), atol=1e-5)
    records = [json.loads(line) for line in (tmp_path / "fsdp" / "metrics.jsonl").read_text().splitlines()]
    reference = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3] and reference[-1]["train_loss"] < reference[0]["train_loss"]
    for r, ref in zip(records, reference, strict=True):
        assert r["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-4)
    summary = json.loads((tmp_path / "fsdp" / "summary.json").read_text())
    assert summary["models"]["student"]["accuracy"] == pytest.approx(
        json.loads((tmp_path / "one" / "summary.json").read_text())["models"]["student"]["accuracy"], abs=0.011)


def lm_config(tmp_path: Path, parallel: str, precision: str = "fp32") -> Path:
    teacher = tiny_llama_dir(tmp_path, "teacher", layers=3)
    train = write_pairs(tmp_path / "train.jsonl", 16)
    test = write_pairs(tmp_path / "test.jsonl", 4)
    cfg = {
        "name": "lm", "task": "causal_lm", "seed": 0,
        "data": {"dataset": "lm_jsonl", "lm": {"train": str(train), "val": str(test), "test": str(test)}},
        "teacher": {"model": {"name": "causal_lm", "path": str(teacher)}},
        # the student: two of the teacher's three layers (two decoder blocks to shard, tied embeddings and head)
        "student": {"model": {"name": "causal_lm", "init_from_teacher": {"layers": [0, 2]}},
                    "train": {"max_steps": 4, "epochs": 2, "batch_size": 4, "lr": 3e-3}},
        "baseline": False,
        "distill": {"method": "forward_kl"},
        "cache": {"mode": "off"},
        "evaluate": {"generations": 1, "max_new_tokens": 2, "latency": False},
        "runtime": {"device": "cpu", "threads": 1, "parallel": parallel, "precision": precision},
    }
    path = tmp_path / f"lm-{parallel}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_fsdp_causal_lm_student_matches_ddp(tmp_path):
    ddp = launch(lm_config(tmp_path, "ddp"), tmp_path / "ddp", 2)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    fsdp = launch(lm_config(tmp_path, "fsdp"), tmp_path / "fsdp", 2)
    assert fsdp.returncode == 0, fsdp.stderr[-3000:]
    a, b = weights(tmp_path / "fsdp"), weights(tmp_path / "ddp")
    assert_same_weights(a, b, atol=1e-5)
    # it did train (so equal weights mean something), and the summary was written from the gathered student
    from distill.models.causal_lm import load_pretrained

    start = load_pretrained(str(tmp_path / "teacher")).state_dict()
    assert (a["model.lm.model.layers.0.mlp.up_proj.weight"] - start["model.layers.0.mlp.up_proj.weight"]).abs().max() > 1e-3
    summary = json.loads((tmp_path / "fsdp" / "summary.json").read_text())
    assert summary["models"]["student"]["perplexity"] == pytest.approx(
        json.loads((tmp_path / "ddp" / "summary.json").read_text())["models"]["student"]["perplexity"], rel=1e-3)


def test_fsdp_refuses_what_it_cannot_shard_in_one_line(tmp_path):
    from distill.config.schema import ExperimentConfig
    from distill.errors import ConfigError
    from distill.preflight import check_config

    def refused(**over):
        raw = {"runtime": {"parallel": "fsdp", **over.pop("runtime", {})}, **over}
        with pytest.raises(ConfigError) as err:
            check_config(ExperimentConfig.model_validate(raw))
        assert "\n" not in str(err.value) and "parallel: ddp" in str(err.value)
        return str(err.value)

    assert "on_policy" in refused(task="causal_lm", distill={"mode": "on_policy"})
    assert "'online'" in refused(distill={"mode": "online"})
    assert "compile" in refused(runtime={"compile": True})
    assert "crd" in refused(distill={"method": "crd"})


def test_fsdp_helpers_keep_ties_and_refuse_bare_method_tensors():
    from torch import nn

    from distill.errors import ConfigError
    from distill.methods.base import Method
    from distill.train import fsdp

    model = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False))
    model[1].weight = model[0].weight  # tied, as a causal LM's embeddings and head
    plain = fsdp.meta_copy(model)
    assert plain[0].weight.is_meta and plain[0].weight is plain[1].weight
    fsdp.materialize(plain, model.state_dict())
    assert plain[0].weight is plain[1].weight and torch.equal(plain[0].weight, model[0].weight)
    assert fsdp.block_modules(model) == [model[0], model[1]]
    bf16, fp32 = fsdp.mixed_precision("bf16"), fsdp.mixed_precision("fp32")
    assert (bf16.param_dtype, bf16.reduce_dtype, fp32.param_dtype) == (torch.bfloat16, torch.float32, None)

    class Bare(Method):
        name = "bare"

        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

    with pytest.raises(ConfigError, match="trainable tensor 'scale'"):
        fsdp.shard_method(Bare(), mesh=None, precision="fp32")
