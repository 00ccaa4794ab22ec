"""Causal-LM models: the head at loss positions only, copied layer subsets, fresh configs, the vocabulary check."""

from __future__ import annotations

import pytest
import torch

from distill.errors import CompatibilityError, ConfigError
from distill.models.causal_lm import DEFAULT_GGUF, causal_lm, default_source, load_pretrained
from tests.lm_helpers import tiny_llama_dir


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    return str(tiny_llama_dir(tmp_path_factory.mktemp("lm"), layers=3))


def test_head_only_at_loss_positions_matches_full_logits(teacher_dir):
    model = causal_lm(path=teacher_dir).eval()
    ids = torch.randint(6, 30, (2, 7))
    targets = torch.full((2, 7), -100)
    targets[0, 2:5] = ids[0, 3:6]
    targets[1, 4:6] = ids[1, 5:7]
    picked = model(ids, targets)
    full = model(ids)  # (B, T, V)
    assert picked.shape == (5, full.shape[-1])
    torch.testing.assert_close(picked, full[targets != -100])
    # row-major: sample 0's positions 2, 3, 4 then sample 1's 4, 5
    torch.testing.assert_close(picked[3], full[1, 4])


def test_layer_subset_copies_layers_embeddings_norm_and_head(teacher_dir):
    teacher = causal_lm(path=teacher_dir)
    student = causal_lm(teacher_path=teacher_dir, init_from_teacher={"layers": [0, 2]})
    assert student.lm.config.num_hidden_layers == 2
    t, s = teacher.lm.state_dict(), student.lm.state_dict()
    torch.testing.assert_close(s["model.layers.1.mlp.up_proj.weight"], t["model.layers.2.mlp.up_proj.weight"])
    torch.testing.assert_close(s["model.layers.0.self_attn.q_proj.weight"], t["model.layers.0.self_attn.q_proj.weight"])
    torch.testing.assert_close(s["model.embed_tokens.weight"], t["model.embed_tokens.weight"])
    torch.testing.assert_close(s["model.norm.weight"], t["model.norm.weight"])
    # all layers copied = the teacher itself, output for output
    same = causal_lm(teacher_path=teacher_dir, init_from_teacher={"layers": [0, 1, 2]}).eval()
    ids = torch.randint(6, 30, (2, 6))
    torch.testing.assert_close(same(ids), teacher.eval()(ids))
    assert "quantization_config" not in same.lm.config.to_dict()


def test_layer_subset_refuses_bad_indices(teacher_dir):
    with pytest.raises(ConfigError, match="0..2"):
        causal_lm(teacher_path=teacher_dir, init_from_teacher={"layers": [0, 7]})
    with pytest.raises(ConfigError, match="twice"):
        causal_lm(teacher_path=teacher_dir, init_from_teacher={"layers": [1, 1]})


def test_fresh_config_of_the_teachers_architecture(teacher_dir):
    student = causal_lm(teacher_path=teacher_dir, num_layers=1, hidden_size=16, num_heads=2, intermediate_size=24)
    c = student.lm.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (1, 16, 2, 24)
    assert type(student.lm).__name__ == "LlamaForCausalLM"
    ids = torch.randint(0, 30, (1, 5))
    assert student(ids).shape == (1, 5, c.vocab_size)
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        causal_lm(teacher_path=teacher_dir, hidden_size=18, num_heads=4)


def test_other_model_needs_the_same_vocabulary(tmp_path, teacher_dir):
    same_vocab = tiny_llama_dir(tmp_path, "other", layers=1, seed=3)
    model = causal_lm(path=str(same_vocab), teacher_path=teacher_dir)
    assert model.lm.config.num_hidden_layers == 1
    other_vocab = tiny_llama_dir(tmp_path, "words", layers=1, extra_words=("zebra",))
    with pytest.raises(CompatibilityError, match="different vocabularies"):
        causal_lm(path=str(other_vocab), teacher_path=teacher_dir)


def test_gradient_checkpointing_gives_the_same_gradients(teacher_dir):
    ids = torch.randint(6, 30, (2, 6))
    targets = ids.roll(-1, 1)
    targets[:, -1] = -100
    grads = []
    for checkpointing in (False, True):
        model = causal_lm(path=teacher_dir, gradient_checkpointing=checkpointing).train()
        logits = model(ids, targets)
        torch.nn.functional.cross_entropy(logits, targets[targets != -100]).backward()
        grads.append(model.lm.model.layers[0].mlp.up_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_missing_path_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="neither a Hugging Face model directory"):
        load_pretrained(str(tmp_path))


@pytest.mark.slow
def test_smollm2_gguf_loads_and_copies_six_layers():
    assert default_source().endswith(DEFAULT_GGUF)
    student = causal_lm(init_from_teacher={"layers": [0, 6, 12, 18, 24, 29]})
    params = sum(p.numel() for p in student.parameters())
    assert 49e6 < params < 50.5e6  # 49.6M: the TRL reference student


def test_a_tied_embedding_and_head_are_stored_once_and_loaded_tied(tmp_path, teacher_dir):
    from safetensors import safe_open

    from distill.checkpoint import load_checked, load_tensors, save_tensors

    model = causal_lm(path=teacher_dir)
    state = model.state_dict()
    embed, head = "lm.model.embed_tokens.weight", "lm.lm_head.weight"
    assert state[embed].data_ptr() == state[head].data_ptr()  # the tiny llama ties them
    path = tmp_path / "tied.safetensors"
    save_tensors(path, state, {"model": {"name": "causal_lm"}})
    with safe_open(str(path), framework="pt") as f:
        stored = set(f.keys())
    assert embed in stored and head not in stored  # one copy on disk
    tensors, meta = load_tensors(path)
    assert set(tensors) == set(state) and meta == {"model": {"name": "causal_lm"}}  # the alias is not metadata
    torch.testing.assert_close(tensors[head], state[embed])
    other = causal_lm(path=teacher_dir)
    with torch.no_grad():
        other.lm.lm_head.weight.zero_()
    load_checked(other, tensors, path, None, "the model")
    assert other.lm.lm_head.weight is other.lm.model.embed_tokens.weight  # still tied after loading
    torch.testing.assert_close(other.lm.lm_head.weight, state[embed])
    # untied tensors with equal values are both stored
    separate = {"a": torch.ones(3), "b": torch.ones(3)}
    save_tensors(tmp_path / "two.safetensors", separate)
    with safe_open(str(tmp_path / "two.safetensors"), framework="pt") as f:
        assert set(f.keys()) == {"a", "b"}
