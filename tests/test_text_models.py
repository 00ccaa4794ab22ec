"""Text students and the HF teacher wrapper, on a tiny local BERT (no download, fast)."""

from __future__ import annotations

import pytest
import torch

from distill.errors import ConfigError
from distill.knowledge.taps import Taps
from distill.models.registry import build_model

from .text_helpers import tiny_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny-bert")))


def ids_batch():
    # Right-padded token ids (pad 0), lengths 6, 3 and 1 (after [CLS]).
    return torch.tensor([[2, 5, 6, 7, 8, 3, 0, 0, 0, 0],
                         [2, 9, 10, 3, 0, 0, 0, 0, 0, 0],
                         [2, 3, 0, 0, 0, 0, 0, 0, 0, 0]])


@pytest.mark.parametrize("name,options", [
    ("bilstm", {"hidden": 8, "fc": 6}),
    ("textcnn", {"filters": 4, "kernel_sizes": [2, 3]}),
    ("text_transformer", {"layers": 1}),
    ("text_transformer", {"init_from_teacher": {"layers": [1, 3]}}),
    ("hf_classifier", {}),
])
def test_students_give_logits_and_ignore_padding(model_dir, name, options):
    key = "path" if name == "hf_classifier" else "teacher_path"
    torch.manual_seed(0)
    model = build_model(name, (10,), 3, **{key: model_dir}, **options).eval()
    ids = ids_batch()
    with torch.no_grad():
        logits = model(ids)
        more_padding = model(torch.cat([ids, torch.zeros(3, 5, dtype=torch.long)], dim=1))
    assert logits.shape == (3, 3) and logits.dtype == torch.float32
    assert torch.allclose(logits, more_padding, atol=1e-5)


def test_embeddings_start_from_the_teacher(model_dir):
    from distill.models.hf import load_encoder

    teacher_emb = load_encoder(model_dir).get_input_embeddings().weight
    for name in ("bilstm", "textcnn"):
        model = build_model(name, (10,), 2, teacher_path=model_dir, init_embeddings_from_teacher=True)
        assert torch.equal(model.embedding.weight, teacher_emb)
        fresh = build_model(name, (10,), 2, teacher_path=model_dir, init_embeddings_from_teacher=False,
                            embedding_dim=16)
        assert fresh.embedding.weight.shape == (teacher_emb.shape[0], 16)
    frozen = build_model("textcnn", (10,), 2, teacher_path=model_dir, freeze_embeddings=True)
    assert not frozen.embedding.weight.requires_grad
    with pytest.raises(ConfigError, match="embedding_dim <= 32"):  # narrower ones start from the PCA
        build_model("bilstm", (10,), 2, teacher_path=model_dir, embedding_dim=33)


def test_init_from_teacher_copies_the_chosen_layers(model_dir):
    from distill.models.hf import load_encoder

    teacher = load_encoder(model_dir)
    student = build_model("text_transformer", (10,), 2, teacher_path=model_dir,
                          init_from_teacher={"layers": [0, 3, 2]})
    layers = student.encoder.encoder.layer
    assert len(layers) == 3 and student.encoder.config.num_hidden_layers == 3
    for s, t in enumerate([0, 3, 2]):
        for (name, p), (tname, tp) in zip(layers[s].state_dict().items(),
                                          teacher.encoder.layer[t].state_dict().items(), strict=True):
            assert name == tname and torch.equal(p, tp), f"student layer {s} {name} differs from teacher layer {t}"
    assert not torch.equal(layers[0].attention.self.query.weight, teacher.encoder.layer[1].attention.self.query.weight)
    for key, value in teacher.embeddings.state_dict().items():
        assert torch.equal(student.encoder.embeddings.state_dict()[key], value)
    # The copy is deep: training the student leaves the teacher untouched.
    assert layers[0].attention.self.query.weight.data_ptr() != teacher.encoder.layer[0].attention.self.query.weight.data_ptr()


def test_init_from_teacher_rejects_bad_layers(model_dir):
    with pytest.raises(ConfigError, match="0..3"):
        build_model("text_transformer", (10,), 2, teacher_path=model_dir, init_from_teacher={"layers": [0, 4]})
    with pytest.raises(ConfigError, match="init_from_teacher takes"):
        build_model("text_transformer", (10,), 2, teacher_path=model_dir, init_from_teacher={"layer": [0]})


def test_trainable_layers_freezes_the_bottom(model_dir):
    model = build_model("hf_classifier", (10,), 2, path=model_dir, trainable_layers=1)
    trainable = {n.split(".")[2] if n.startswith("encoder.encoder") else n.split(".")[1]
                 for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.")}
    assert trainable == {"layer"}
    assert all(p.requires_grad for p in model.encoder.encoder.layer[3].parameters())
    assert not any(p.requires_grad for p in model.encoder.encoder.layer[2].parameters())
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    assert model.classifier.weight.requires_grad


def test_taps_expose_hidden_states_and_attention_scores(model_dir):
    transformers = pytest.importorskip("transformers")
    model = build_model("hf_classifier", (10,), 2, path=model_dir).eval()
    ids = ids_batch()
    with Taps(model, ["hidden.0", "hidden.4", "attention.2"]) as taps, torch.no_grad():
        model(ids)
        out = taps.pop()
    assert out["hidden.0"].shape == (3, 6, 32) and out["attention.2"].shape == (3, 4, 6, 6)
    # Independent check: softmax of the tapped scores = the eager attention probabilities HF reports.
    eager = transformers.AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    mask = ids[:, :6] != 0
    with torch.no_grad():
        ref = eager(input_ids=ids[:, :6], attention_mask=mask.long(), output_attentions=True,
                    output_hidden_states=True)
    scores = out["attention.2"].masked_fill(~mask[:, None, None, :], float("-inf"))
    valid = mask[:, None, :, None].expand_as(scores)
    assert torch.allclose(scores.softmax(-1)[valid], ref.attentions[1][valid], atol=1e-5)
    assert torch.allclose(out["hidden.4"], ref.hidden_states[4], atol=1e-5)
    assert (out["attention.2"][~mask[:, None, :, None].expand_as(scores)] == 0).all()
