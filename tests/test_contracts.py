"""Contract tests over every registered method and model (as timm does for its models).

A method or model added to the registries is tested here without writing a new test. One that
cannot run on the tiny generic inputs below gets an entry in ``METHOD_CASES``/``MODEL_CASES``
(the inputs it needs) or in ``*_SKIPS`` with the reason and the test that covers it instead.
"""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from distill.checkpoint import load_tensors, save_tensors
from distill.knowledge.taps import Taps
from distill.knowledge.teacher import LiveTeacher
from distill.methods import METHODS, Method, build_method, method_options
from distill.models import MODELS, build_model, model_options
from distill.models.cohort import Cohort
from distill.train.label_loss import label_loss
from distill.types import Batch, Needs, Outputs, TokenTopK

from .methods_support import IMAGE, LAYER_OPTIONS, NUM_CLASSES, tiny_models

# -- methods -----------------------------------------------------------------------------------------
METHOD_SKIPS = {
    # hooks transformer layers (hidden.N, attention.N) of text models: tests/test_text_tinybert.py
    "tinybert": "needs a transformer teacher and student",
    # hooks the query/key/value maps of BERT-style layers: tests/test_text_minilm.py
    "minilm": "needs a transformer teacher and student",
}


def image_pair():
    student, teacher = tiny_models()
    x, y = torch.randn(6, *IMAGE), torch.arange(6) % NUM_CLASSES
    return student, teacher, x, y


def cohort_pair():  # dml trains a cohort of peers (logits N x P x C) and has no teacher
    student, _, x, y = image_pair()
    return Cohort([student, build_model("cnn", IMAGE, NUM_CLASSES, channels=[4, 8])]), None, x, y


def regression_pair():  # one output, float targets
    torch.manual_seed(0)
    student, teacher = build_model("mlp", (5,), 1, hidden=[8]), build_model("mlp", (5,), 1, hidden=[16])
    return student, teacher, torch.randn(6, 5), torch.randn(6)


def soft_tree_pair():  # soft_tree hooks a soft decision tree student's gates, routing and leaves
    _, teacher, x, y = image_pair()
    return build_model("soft_tree", IMAGE, NUM_CLASSES, depth=2), teacher, x, y


def two_way_pair():  # two_way trains a (teacher, student) pair that is one module; no frozen teacher
    from distill.models.cohort import TwoWayPair

    student, teacher, x, y = image_pair()
    return TwoWayPair(teacher, student), None, x, y


# name -> (options, pair): the inputs a method needs beyond the defaults
METHOD_CASES = {
    **{name: (options, image_pair) for name, options in LAYER_OPTIONS.items()},
    "combined": ({"methods": [{"method": "kd"}, {"method": "at", "weight": 0.5, "options": LAYER_OPTIONS["at"]}]},
                 image_pair),
    "dml": ({}, cohort_pair),
    "mse_kd": ({}, regression_pair),
    "mae_kd": ({}, regression_pair),
    "supervised_regression": ({}, regression_pair),
    "soft_tree": ({}, soft_tree_pair),
    "two_way": ({}, two_way_pair),
}


def method_params():
    return [pytest.param(name, marks=pytest.mark.skip(reason=METHOD_SKIPS[name])) if name in METHOD_SKIPS else name
            for name in METHODS.names()]


def run_method(name: str):
    options, pair = METHOD_CASES.get(name, ({}, image_pair))
    student, teacher, x, y = pair()
    method = build_method(name, options)
    needs = method.needs()
    live = LiveTeacher(teacher, needs.teacher_modules) if needs.teacher else None
    with Taps(student, needs.student_modules, "student") as taps:
        probe = Outputs(student(x[:2]), taps.pop())
        method.setup(probe, live(Batch(x[:2], y[:2])) if live else None)
        out = Outputs(student(x), taps.pop())
        losses = method.losses(out, live(Batch(x, y)) if live else None, Batch(x, y))
    if live:
        live.close()
    assert "hard" not in losses and "label" not in losses, f"{name}: the trainer owns the label loss"
    if method.label_weight:  # the one label term the trainer adds (distill.train.label_loss)
        task = "regression" if pair is regression_pair else "classification"
        losses = {"label": method.label_weight * label_loss(out.logits, y, task, method.label_loss), **losses}
    return method, needs, losses, student, teacher


@pytest.mark.parametrize("name", method_params())
def test_method_is_described_and_takes_keyword_options(name):
    cls = METHODS.get(name)
    # an alias (label_smoothing -> tfkd) is registered under a second name for the same class
    assert issubclass(cls, Method) and METHODS.get(cls.name) is cls
    assert cls.summary, f"{name}: set a one-line `summary` (distill methods lists it)"
    assert isinstance(cls.paper, str)
    assert all(key.isidentifier() for key in method_options(cls))


@pytest.mark.parametrize("name", method_params())
def test_method_losses_are_finite_scalars_whose_gradients_reach_only_the_student(name):
    method, needs, losses, student, teacher = run_method(name)
    assert isinstance(needs, Needs)
    if not losses:
        # Only a method with no distillation term (supervised) may return nothing: the trainer adds
        # the one label loss, so such a method must ask for a positive label weight.
        assert not needs.teacher and method.label_weight > 0, f"{name} returned no terms"
        return
    assert all(isinstance(k, str) for k in losses)
    for key, value in losses.items():
        assert value.dim() == 0 and value.is_floating_point(), f"{name}.{key} is not a scalar"
        assert math.isfinite(value.item()), f"{name}.{key} = {value.item()}"
    sum(losses.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    if teacher is not None:
        assert all(p.grad is None for p in teacher.parameters()), "the frozen teacher must get no gradient"


@pytest.mark.parametrize("name", method_params())
def test_method_state_round_trips_through_the_checkpoint_format(name, tmp_path):
    method, *_ = run_method(name)  # after setup, adapters exist
    state = method.state_dict()
    if not state:  # stateless (most logit methods): nothing goes into the checkpoint
        assert not list(method.parameters()) and not list(method.buffers())
        return
    save_tensors(tmp_path / "m.safetensors", {f"method.{k}": v for k, v in state.items()})
    loaded, _ = load_tensors(tmp_path / "m.safetensors")
    again = build_method(name, METHOD_CASES.get(name, ({}, None))[0])
    assert {k[len("method."):] for k in loaded} == set(state)
    assert all(torch.equal(loaded[f"method.{k}"], v) for k, v in state.items())
    assert isinstance(again, Method)


def causal_lm_methods() -> list[str]:
    return [name for name in METHODS.names() if "causal_lm" in getattr(METHODS.get(name), "tasks", ())]


@pytest.mark.parametrize("name", causal_lm_methods())
def test_causal_lm_method_takes_a_full_or_a_top_k_teacher_and_needs_no_label_term(name):
    """(N, V) student logits at the loss tokens against (N, V) teacher logits or a (k + 1)-bucket top-k teacher."""
    torch.manual_seed(0)
    n, vocab, k = 7, 11, 3
    method = build_method(name)
    assert method.label_weight == 0.0 and method.needs().teacher
    teacher_logits = torch.randn(n, vocab)
    log_p = torch.log_softmax(teacher_logits, -1)
    top, idx = log_p.topk(k, -1)
    tail = torch.log1p(-top.exp().sum(-1))
    targets = torch.full((2, 6), -100)
    targets[0, 1:5], targets[1, 2:5] = 1, 2  # 7 loss tokens
    for teacher in (Outputs(teacher_logits), Outputs(None, topk=TokenTopK(idx, top, tail))):
        student = torch.randn(n, vocab, requires_grad=True)
        losses = method.losses(Outputs(student), teacher, Batch(torch.zeros(2, 6, dtype=torch.long), targets))
        assert losses and all(v.dim() == 0 and math.isfinite(v.item()) for v in losses.values())
        sum(losses.values()).backward()
        assert student.grad is not None and student.grad.abs().sum() > 0
        same = method.losses(Outputs(teacher_logits.clone()), teacher, Batch(targets, targets))
        assert all(abs(v.item()) < 1e-5 for v in same.values()), f"{name}: a student equal to its teacher"


# -- models ------------------------------------------------------------------------------------------
MODEL_SKIPS = {
    # both load a Hugging Face model directory (tokenizer + weights): tests/test_text_models.py
    "hf_classifier": "needs a Hugging Face model directory",
    "text_transformer": "needs a Hugging Face teacher directory to copy layers from",
    "causal_lm": "a language model (token ids in, (N, V) logits at loss positions): tests/test_llm_models.py",
}
TOKENS = {"vocab_size": 40, "pad_id": 0, "init_embeddings_from_teacher": False, "embedding_dim": 8}
# name -> (input shape, dtype of inputs, options): models that do not take the default image input
MODEL_CASES = {
    "bilstm": ((12,), torch.long, {**TOKENS, "hidden": 8, "fc": 8}),
    "textcnn": ((12,), torch.long, {**TOKENS, "filters": 4}),
}


# models of other libraries by name (distill/models/vision_libs.py): one or two of each family, tiny inputs
LIBRARY_MODELS = {"torchvision": ["torchvision:resnet18", "torchvision:mobilenet_v3_small"],
                  "timm": ["timm:test_resnet", "timm:test_vit"]}


def model_params():
    names = [pytest.param(name, marks=pytest.mark.skip(reason=MODEL_SKIPS[name])) if name in MODEL_SKIPS else name
             for name in MODELS.names()]
    for library, models in LIBRARY_MODELS.items():
        installed = importlib.util.find_spec(library) is not None
        names += [name if installed else pytest.param(name, marks=pytest.mark.skip(reason=f"{library} missing"))
                  for name in models]
    return names


def build_case(name: str, seed: int = 0):
    shape, dtype, options = MODEL_CASES.get(name, (IMAGE, torch.float32, {}))
    torch.manual_seed(seed)
    model = build_model(name, shape, NUM_CLASSES, **options)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(1, 40, (3, *shape), generator=g) if dtype == torch.long else torch.randn(3, *shape, generator=g)
    return model.eval(), x


@pytest.mark.parametrize("name", model_params())
def test_model_outputs_one_logit_per_class(name):
    model, x = build_case(name)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, NUM_CLASSES) and out.is_floating_point() and torch.isfinite(out).all()
    # gbdt's trees (thresholds, leaf values) exist only once fitted: tests/test_gbdt.py
    assert sum(p.numel() for p in model.parameters()) > 0 or getattr(model, "fits_without_gradients", False)
    assert all(key.isidentifier() for key in model_options(name))


@pytest.mark.parametrize("name", model_params())
def test_model_builds_the_same_weights_from_the_same_seed(name):
    a, _ = build_case(name, seed=3)
    b, _ = build_case(name, seed=3)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("name", model_params())
def test_model_round_trips_through_the_checkpoint_format(name, tmp_path):
    model, x = build_case(name, seed=0)
    save_tensors(tmp_path / "w.safetensors", model.state_dict(), {"model": {"name": name}})
    other, _ = build_case(name, seed=1)
    tensors, meta = load_tensors(tmp_path / "w.safetensors")
    other.load_state_dict(tensors)
    with torch.no_grad():
        assert torch.equal(model(x), other(x)) and meta["model"]["name"] == name
