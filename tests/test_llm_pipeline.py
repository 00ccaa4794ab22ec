"""task: causal_lm end to end on a tiny random llama: teacher not trained, baseline and distilled student, report."""

from __future__ import annotations

import json

import pytest
import torch

from distill.config.schema import ExperimentConfig
from distill.errors import CompatibilityError
from distill.pipeline.experiment import run_experiment
from tests.lm_helpers import lm_config, tiny_llama_dir


def test_causal_lm_defaults():
    cfg = ExperimentConfig.model_validate({"task": "causal_lm"})
    assert cfg.teacher.model.name == "causal_lm" and cfg.distill.method == "forward_kl"
    assert cfg.student.model.options["init_from_teacher"] == {"layers": [0, 6, 12, 18, 24, 29]}
    assert cfg.student.train.optimizer == "adamw" and cfg.data.dataset == "lm_jsonl" and cfg.data.augment is None
    again = ExperimentConfig.model_validate(cfg.model_dump())
    assert again == cfg


def test_offline_causal_lm_run(tmp_path):
    cfg = lm_config(tmp_path)
    summary = run_experiment(cfg, tmp_path / "run", quiet=True)
    models = summary["models"]
    assert set(models) == {"teacher", "baseline", "student"}
    for role in ("baseline", "student"):
        e = models[role]
        assert 0 <= e["top1_agreement"] <= 1 and e["kl_to_teacher"] >= 0 and e["perplexity"] > 1
        assert 0 <= e["rouge_l"] <= 1 and e["gen_tokens_per_s"] > 0
        assert e["params"] < models["teacher"]["params"]
    assert "kl_to_teacher" not in models["teacher"]
    assert len(summary["generations"]) == 2 and {"prompt", "reference", "teacher", "student"} <= set(
        summary["generations"][0])
    run = tmp_path / "run"
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["task"] == "causal_lm"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["model"] for r in records} == {"baseline", "student"}  # the teacher is not trained
    assert all("val_perplexity" in r for r in records)
    html = (run / "report.html").read_text()
    assert "Generations" in html and "perplexity" in html
    # baseline and distilled student: the same steps (max_steps), checkpoints of the pair
    from distill.checkpoint import load_tensors

    steps = [load_tensors(run / "checkpoints" / f"{r}-last.safetensors")[1]["trainer_state"]["step"]
             for r in ("baseline", "student")]
    assert steps == [3, 3]
    cache = on_disk["teacher_cache"]  # cache.mode auto: the teacher's top-32 over the training tokens, once
    assert cache["k"] == 32 and cache["tokens"] == on_disk["train_response_tokens"]
    assert (run / "cache" / "meta.json").is_file()


def test_cached_teacher_with_the_whole_vocabulary_trains_as_the_live_one(tmp_path):
    summaries = {}
    for mode in ("off", "on"):
        cfg = lm_config(tmp_path, cache={"mode": mode, "top_k": 64, "dtype": "float32"}, baseline=False)
        summaries[mode] = run_experiment(cfg, tmp_path / f"run-{mode}", quiet=True)["models"]["student"]
    assert summaries["off"]["kl_to_teacher"] > 0.01  # a real difference to preserve, not two zeros
    assert summaries["on"]["kl_to_teacher"] == pytest.approx(summaries["off"]["kl_to_teacher"], rel=1e-4)
    assert summaries["on"]["perplexity"] == pytest.approx(summaries["off"]["perplexity"], rel=1e-4)


@pytest.mark.parametrize("distill, live", [({"method": "reverse_kl"}, True),
                                           ({"method": "skew_reverse_kl"}, True),
                                           ({"method": "gkd", "options": {"beta": 1.0}}, True),
                                           ({"method": "gkd", "options": {"beta": 0.5}}, True),
                                           ({"method": "gkd", "options": {"beta": 0.0}}, False),
                                           ({"method": "forward_kl"}, False)])
def test_cache_auto_uses_the_live_teacher_for_divergences_weighing_the_student(tmp_path, capsys, distill, live):
    from distill.methods import build_method

    method = build_method(distill["method"], distill.get("options", {}))
    assert method.top_k_cache_fits is not live
    if distill["method"] not in ("reverse_kl", "forward_kl"):
        return  # the run itself, once per behaviour
    summary = run_experiment(lm_config(tmp_path, distill=distill, baseline=False), tmp_path / "auto", quiet=False)
    assert (summary["teacher_cache"] is None) is live
    assert ("teacher: live for reverse_kl" in capsys.readouterr().err) is live
    if live:  # cache.mode: on still uses the cache
        forced = run_experiment(lm_config(tmp_path, distill=distill, baseline=False, cache={"mode": "on"}),
                                tmp_path / "on", quiet=True)
        assert forced["teacher_cache"] is not None


def test_method_not_for_causal_lm_is_one_line(tmp_path):
    cfg = lm_config(tmp_path, distill={"method": "kd"})
    with pytest.raises(CompatibilityError, match="method 'kd' is for classification but task is 'causal_lm'"):
        run_experiment(cfg, tmp_path / "run", quiet=True)


def test_classification_mode_is_refused_for_causal_lm(tmp_path):
    cfg = lm_config(tmp_path, distill={"method": "forward_kl", "mode": "online"})
    with pytest.raises(CompatibilityError, match="does not train language models"):
        run_experiment(cfg, tmp_path / "run", quiet=True)


def test_vocabulary_size_mismatch_is_one_line(tmp_path):
    other = tiny_llama_dir(tmp_path, "other", layers=1, extra_words=("zebra",))
    cfg = lm_config(tmp_path)
    cfg.student.model.options = {"path": str(other)}
    with pytest.raises(CompatibilityError, match="different vocabularies"):
        run_experiment(cfg, tmp_path / "run", quiet=True)


def test_export_is_a_hugging_face_directory_that_transformers_generates_with(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distill.cli import main

    cfg = lm_config(tmp_path, export={"enabled": True}, baseline=False)
    summary = run_experiment(cfg, tmp_path / "run", quiet=True)
    out = tmp_path / "run" / "student-hf"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(summary["export"]["files"])
    assert summary["export"]["max_abs_diff"] < 1e-5
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.num_hidden_layers == 1 and "quantization_config" not in model.config.to_dict()
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "is this review positive"}],
                                           add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    new = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert new.shape[1] > ids.shape[1]
    # `distill export RUN` rebuilds the student from its checkpoint and writes the same directory again
    again = tmp_path / "again"
    assert main(["export", str(tmp_path / "run"), "--out", str(again)]) == 0
    reloaded = AutoModelForCausalLM.from_pretrained(again).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_sequence_kd_trains_on_the_teachers_generations_once(tmp_path):
    cfg = lm_config(tmp_path, distill={"method": "forward_kl", "mode": "sequence_kd",
                                       "lm": {"max_new_tokens": 5, "batch_size": 8}}, baseline=False)
    summary = run_experiment(cfg, tmp_path / "run", quiet=True)
    info = summary["teacher_sequences"]
    assert info["responses"] == 16 and not info["reused"] and 0 < info["tokens"] <= 16 * 5
    # the stored responses are the teacher's greedy continuations of the prompts
    from distill.checkpoint import load_tensors
    from distill.config.schema import DataConfig
    from distill.data.bundle import load_data
    from distill.data.lm_data import prompts_of
    from distill.models.causal_lm import causal_lm

    tensors, _ = load_tensors(tmp_path / "run" / "cache" / "sequences.safetensors")
    teacher = causal_lm(path=cfg.teacher.model.options["path"]).eval()
    data = load_data(DataConfig(**cfg.data.model_dump()), cfg.teacher.model.options["path"])
    prompt = prompts_of(data.train.inputs, data.train.targets)[0]
    first = tensors["tokens"][: int(tensors["offsets"][1])]
    expected = teacher.generate(prompt[None], len(first), eos_id=2)[0]
    assert torch.equal(first, expected[: len(first)])
    # a second run with the same teacher, prompts and settings reads them back instead of generating
    cfg.cache.dir = str(tmp_path / "run" / "cache")
    assert run_experiment(cfg, tmp_path / "run2", quiet=True)["teacher_sequences"]["reused"]


def test_on_policy_samples_student_responses_scored_by_the_live_teacher(tmp_path):
    cfg = lm_config(tmp_path, distill={"method": "forward_kl", "mode": "on_policy",
                                       "lm": {"max_new_tokens": 4, "lmbda": 0.5}}, baseline=False,
                    runtime={"threads": 1, "precision": "bf16"})  # bf16 autocast on a CPU, too
    summary = run_experiment(cfg, tmp_path / "run", quiet=True)
    assert 0 < summary["on_policy"]["sampled_batches"] < 3  # 3 steps, lmbda 0.5, seed 0: some of each
    assert summary["teacher_cache"] is not None  # the data's batches still read the cache
    assert summary["models"]["student"]["kl_to_teacher"] > 0


def test_check_only_builds_and_probes_the_pair_and_writes_nothing(tmp_path, capsys):
    import yaml

    from distill.cli import main

    cfg = lm_config(tmp_path)
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert main(["run", str(path), "--check", "--out", str(tmp_path / "run")]) == 0
    assert not (tmp_path / "run").exists()
    bad = cfg.model_dump(mode="json")
    bad["student"]["model"]["options"]["init_from_teacher"] = {"layers": [0, 9]}
    path.write_text(yaml.safe_dump(bad))
    assert main(["run", str(path), "--check", "--out", str(tmp_path / "run")]) == 2
    assert "init_from_teacher.layers must be indices of the source's 2 layers" in capsys.readouterr().err
