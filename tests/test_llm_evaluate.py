"""`distill evaluate` on causal-LM checkpoints: a tiny run's checkpoints scored again, against plain torch."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
import yaml
from torch.nn import functional as F

from distill.cli import main
from distill.pipeline.experiment import run_experiment
from tests.lm_helpers import lm_config, tiny_llama_dir, write_pairs


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    """A tiny causal_lm run (teacher: a random 2-layer llama; students: its layer 1) with its own val file."""
    tmp = tmp_path_factory.mktemp("lm-eval")
    cfg = lm_config(tmp)
    val = write_pairs(tmp / "val.jsonl", 6)
    cfg.data.lm.val = str(val)
    cfg.student.train.max_steps = 6
    summary = run_experiment(cfg, tmp / "run", quiet=True)
    return {"tmp": tmp, "run": tmp / "run", "summary": summary, "teacher": cfg.teacher.model.options["path"],
            "test": tmp / "test.jsonl", "val": val}


def evaluate(capsys, *argv: str) -> dict:
    assert main(["evaluate", *map(str, argv)]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def failure(capsys, *argv: str) -> str:
    assert main(["evaluate", *map(str, argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def plain_student(checkpoint, teacher_dir):
    """The 1-layer llama of the checkpoint, built with transformers and the raw safetensors file (no distill)."""
    from safetensors.torch import load_file
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig.from_pretrained(teacher_dir)
    config.num_hidden_layers = 1
    model = LlamaForCausalLM(config)
    state = {k.removeprefix("lm."): v for k, v in load_file(str(checkpoint)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}  # the tied head is stored once
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    return model.eval()


@torch.no_grad()
def reference_metrics(model, rows_file, teacher_dir, teacher=None) -> dict:
    """Cross-entropy, accuracy (and KL(teacher || model), agreement) over every response token, row by row:
    the chat template rendered whole, the response being what follows the prompt's generation prefix."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    ce, correct, kl, agree, tokens = 0.0, 0, 0.0, 0, 0
    for line in rows_file.read_text().splitlines():
        row = json.loads(line)
        messages = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["response"]}]
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        prefix = tokenizer.apply_chat_template(messages[:1], add_generation_prompt=True, tokenize=False)
        ids = torch.tensor([tokenizer(full, add_special_tokens=False)["input_ids"]])
        start = len(tokenizer(prefix, add_special_tokens=False)["input_ids"])
        labels = ids[0, start:]
        logits = model(input_ids=ids).logits[0, start - 1 : -1]
        ce += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(-1) == labels).sum())
        tokens += len(labels)
        if teacher is not None:
            t_logits = teacher(input_ids=ids).logits[0, start - 1 : -1]
            p_t, logp_t, logp_s = t_logits.softmax(-1), t_logits.log_softmax(-1), logits.log_softmax(-1)
            kl += float((p_t * (logp_t - logp_s)).sum())
            agree += int((logits.argmax(-1) == t_logits.argmax(-1)).sum())
    out = {"cross_entropy": ce / tokens, "perplexity": math.exp(ce / tokens), "accuracy": correct / tokens,
           "tokens": tokens}
    if teacher is not None:
        out.update(kl_to_teacher=kl / tokens, top1_agreement=agree / tokens)
    return out


def assert_metrics(result: dict, expected: dict) -> None:
    assert result["tokens"] == expected["tokens"]
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


def test_evaluate_scores_a_causal_lm_checkpoint_on_its_runs_test_references(lm_run, capsys):
    checkpoint = lm_run["run"] / "checkpoints" / "baseline-best.safetensors"
    result = evaluate(capsys, checkpoint)
    assert result["task"] == "causal_lm" and result["split"] == "test" and result["samples"] == 4
    assert result["data_from"] == str(lm_run["run"] / "config.yaml")
    assert "kl_to_teacher" not in result and "teacher" not in result  # the teacher is opt-in
    model = plain_student(checkpoint, lm_run["teacher"])
    expected = reference_metrics(model, lm_run["test"], lm_run["teacher"])
    assert expected["accuracy"] > 0  # a count that can be wrong
    assert_metrics(result, expected)
    assert result["params"] == sum(p.numel() for p in model.parameters())  # the tied head counted once
    # the rebuilt model is the trained one: the numbers the run reported for it
    reported = lm_run["summary"]["models"]["baseline"]
    for key in ("perplexity", "cross_entropy", "accuracy", "params", "size_bytes"):
        assert result[key] == pytest.approx(reported[key], rel=1e-6), key


def test_rebuilt_model_holds_exactly_the_checkpoint_weights(lm_run):
    from distill.checkpoint import load_tensors
    from distill.evaluate.checkpoint_eval import load_checkpoint_model

    checkpoint = lm_run["run"] / "checkpoints" / "student-best.safetensors"
    model, spec = load_checkpoint_model(checkpoint)
    assert spec["name"] == "causal_lm" and spec["options"]["init_from_teacher"] == {"layers": [1]}
    tensors, _ = load_tensors(checkpoint)
    state = model.state_dict()
    assert set(state) == set(tensors)
    assert all(torch.equal(state[k], tensors[k]) for k in state)
    lm = model.lm
    assert lm.lm_head.weight.data_ptr() == lm.model.embed_tokens.weight.data_ptr()  # still tied


def test_against_teacher_and_the_val_split(lm_run, capsys):
    from transformers import LlamaForCausalLM

    checkpoint = lm_run["run"] / "checkpoints" / "student-best.safetensors"
    result = evaluate(capsys, checkpoint, "--split", "val", "--against-teacher")
    assert result["split"] == "val" and result["samples"] == 6
    model = plain_student(checkpoint, lm_run["teacher"])
    teacher = LlamaForCausalLM.from_pretrained(lm_run["teacher"]).eval()
    expected = reference_metrics(model, lm_run["val"], lm_run["teacher"], teacher)
    assert expected["kl_to_teacher"] > 0.01 and expected["top1_agreement"] > 0
    assert_metrics(result, expected)
    alone = reference_metrics(teacher, lm_run["val"], lm_run["teacher"])
    assert result["teacher"]["model"] == {"name": "causal_lm", "options": {"path": lm_run["teacher"]}}
    for key in ("perplexity", "cross_entropy", "accuracy"):
        assert result["teacher"][key] == pytest.approx(alone[key], rel=1e-5, abs=1e-7)


def test_a_moved_run_reads_its_lm_files_from_data_dir(lm_run, tmp_path, capsys):
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("train.jsonl", "val.jsonl"):
        shutil.copy(lm_run["tmp"] / name, moved / name)
    test = write_pairs(moved / "test.jsonl", 3)
    checkpoint = lm_run["run"] / "checkpoints" / "baseline-best.safetensors"
    result = evaluate(capsys, checkpoint, "--data", moved)
    assert result["samples"] == 3
    assert_metrics(result, reference_metrics(plain_student(checkpoint, lm_run["teacher"]), test, lm_run["teacher"]))


def test_an_lm_checkpoint_with_classification_data_is_one_line(lm_run, tmp_path, capsys):
    checkpoint = lm_run["run"] / "checkpoints" / "student-best.safetensors"
    other = tmp_path / "fmnist.yaml"
    other.write_text(yaml.safe_dump({"data": {"dataset": "fashion_mnist"}}))
    err = failure(capsys, checkpoint, "--config", other)
    assert "is a causal language model but" in err and "classification run" in err and "--config" in err
    assert "is a causal language model but" in failure(capsys, checkpoint, "--dataset", "sst2")
    loose = tmp_path / "student.safetensors"  # outside its run folder: only --config tells its data
    shutil.copy(checkpoint, loose)
    err = failure(capsys, loose)
    assert "not inside a run folder" in err and "--config with the config.yaml of the causal_lm run" in err
    result = evaluate(capsys, loose, "--config", lm_run["run"])
    assert result["perplexity"] == pytest.approx(lm_run["summary"]["models"]["student"]["perplexity"], rel=1e-6)


def test_a_classification_checkpoint_with_lm_data_is_one_line(lm_run, tmp_path, capsys):
    from distill.checkpoint import save_tensors
    from distill.models.registry import build_model

    mlp = build_model("mlp", (4,), 3, hidden=[8])
    checkpoint = tmp_path / "mlp.safetensors"
    save_tensors(checkpoint, mlp.state_dict(), {"model": {"name": "mlp", "options": {"hidden": [8]},
                                                          "input_shape": [4], "num_classes": 3}})
    err = failure(capsys, checkpoint, "--config", lm_run["run"] / "config.yaml")
    assert "holds a mlp model, not a causal language model" in err
    fmnist = tmp_path / "fmnist.yaml"
    fmnist.write_text(yaml.safe_dump({"data": {"dataset": "fashion_mnist"}}))
    assert "--against-teacher compares a causal-LM checkpoint" in failure(
        capsys, checkpoint, "--config", fmnist, "--against-teacher")


def test_a_tokenizer_that_does_not_fit_the_head_is_one_line(lm_run, tmp_path, capsys):
    other = tiny_llama_dir(tmp_path, "other", layers=1, extra_words=("zebra",))
    cfg = yaml.safe_load((lm_run["run"] / "config.yaml").read_text())
    cfg["teacher"]["model"]["options"]["path"] = str(other)
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(cfg))
    checkpoint = lm_run["run"] / "checkpoints" / "student-best.safetensors"
    err = failure(capsys, checkpoint, "--config", path)
    assert "was trained with a 35-token tokenizer" in err and "36 tokens" in err and "data.lm.tokenizer" in err
