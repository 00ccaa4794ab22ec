"""Models from the config: built with the data's context, described for their checkpoints, checked as a pair."""

from __future__ import annotations

import torch
from torch import nn

from distill.config.schema import ModelConfig
from distill.data.bundle import DataBundle
from distill.errors import CompatibilityError
from distill.models.causal_lm import head_size, is_causal_lm
from distill.models.registry import build_model, model_options


def data_context(spec: ModelConfig, data: DataBundle) -> dict:
    """Text data tells the models its tokenizer (vocab_size, pad_id, teacher_path) unless the config does,
    and the tokens of its training data to a student that keeps only those (``vocabulary: data``)."""
    context = {k: v for k, v in data.meta.get("model_context", {}).items()
               if k in model_options(spec.name) and k not in spec.options}
    if spec.options.get("vocabulary", "full") != "data":
        context.pop("data_vocabulary", None)  # not recorded in checkpoints of students that do not use it
    return context


def model_meta(spec: ModelConfig, data: DataBundle) -> dict:
    """The checkpoints' model description; with the data's context, so that it rebuilds on its own."""
    options = {**data_context(spec, data), **spec.options}
    return {"name": spec.name, "options": options, "input_shape": list(data.input_shape),
            "num_classes": options.pop("num_classes", data.num_classes)}


def build_from_spec(spec: ModelConfig, data: DataBundle, seed: int) -> nn.Module:
    torch.manual_seed(seed)  # baseline and distilled student start from the same weights
    options = {**data_context(spec, data), **spec.options}
    num_classes = options.pop("num_classes", data.num_classes)
    try:
        return build_model(spec.name, data.input_shape, num_classes, **options)
    except (ValueError, AssertionError, RuntimeError, TypeError, IndexError) as exc:
        # the options are valid one by one (checked before) but do not make a model for this data
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CompatibilityError(f"model '{spec.name}' cannot be built for {data.name} (inputs "
                                 f"{tuple(data.input_shape)}, {num_classes} outputs) with options {spec.options}: "
                                 f"{first}") from None


def check_lm_pair(teacher: nn.Module, student: nn.Module, data: DataBundle) -> None:
    """Both causal LMs, one vocabulary size, and the data's tokenizer within it."""
    for role, model in (("teacher", teacher), ("student", student)):
        if not is_causal_lm(model):
            raise CompatibilityError(f"task causal_lm needs a causal language model as the {role}, got "
                                     f"{type(model).__name__}; use model: {{name: causal_lm}}")
    sizes = {"teacher": head_size(teacher), "student": head_size(student)}
    if sizes["teacher"] != sizes["student"]:
        raise CompatibilityError(f"the teacher predicts {sizes['teacher']} tokens but the student {sizes['student']}; "
                                 f"token-level distillation needs one vocabulary (init_from_teacher, or a model of "
                                 f"the teacher's family)")


def check_compatible(teacher: nn.Module, student: nn.Module, data: DataBundle) -> None:
    """Refuse teacher/student pairs whose outputs differ, before any training starts."""
    if is_causal_lm(teacher) or is_causal_lm(student) or data.meta.get("lm"):
        return check_lm_pair(teacher, student, data)
    probe = data.val.inputs[:2]
    for role, model in (("teacher", teacher), ("student", student)):
        reads_ids = any(isinstance(m, nn.Embedding) for m in model.modules())
        if reads_ids and probe.is_floating_point():
            raise CompatibilityError(
                f"the {role} is a text model (it reads token ids) but {data.name} gives real-valued inputs of "
                f"shape {tuple(probe.shape[1:])}; use a text dataset (sst2, trec, text_files) or an image model")
    with torch.no_grad():
        shapes = {}
        for role, model in (("teacher", teacher), ("student", student)):
            was_training = model.training
            model.eval()
            try:
                shapes[role] = tuple(model(probe).shape)
            except Exception as exc:  # any failure of the forward pass on this data is a misfit, said in one line
                kind = "token ids" if not probe.is_floating_point() else "inputs"
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise CompatibilityError(
                    f"the {role} cannot take {kind} of shape {tuple(probe.shape[1:])} ({data.name}): {first}"
                ) from None
            finally:
                model.train(was_training)
    for role, shape in shapes.items():
        if shape[1:] != (data.num_classes,):
            raise CompatibilityError(
                f"the {role} outputs {shape[1:]} per sample but {data.name} has {data.num_classes} classes; "
                f"set its num_classes to {data.num_classes}"
            )
    if shapes["teacher"] != shapes["student"]:
        raise CompatibilityError(
            f"teacher outputs {shapes['teacher'][1:]} per sample but student outputs {shapes['student'][1:]}; "
            f"both must predict the same {data.num_classes} classes"
        )


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
