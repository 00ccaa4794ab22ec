"""`distill evaluate`: rebuild a zoo model from a checkpoint's metadata and score it."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from distill.config.schema import DataConfig
from distill.data.bundle import load_data
from distill.errors import CheckpointError
from distill.evaluate.cost import model_cost
from distill.evaluate.metrics import classification_metrics
from distill.models.predict import predict
from distill.models.registry import MODELS, build_model, model_options
from distill.train.checkpoint import load_tensors, model_weights
from distill.train.trainer import input_preparer


def load_checkpoint_model(path: str | Path, context: dict | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the zoo model described in a distill checkpoint's metadata; return it and that description.

    ``context`` (a text DataBundle's ``meta["model_context"]``: vocab_size, pad_id, teacher_path)
    fills the options that the model takes and the checkpoint does not record; checkpoints
    written before the experiment recorded them need it to rebuild a text student.
    """
    tensors, meta = load_tensors(path)
    spec = meta.get("model")
    if not spec or "name" not in spec:
        raise CheckpointError(f"{path} has no model description in its metadata; it was not written by distill")
    accepted = model_options(spec["name"]) if spec["name"] in MODELS.names() else {}
    options = {**{k: v for k, v in (context or {}).items() if k in accepted}, **spec.get("options", {})}
    model = build_model(spec["name"], tuple(spec["input_shape"]), spec["num_classes"], **options)
    model.load_state_dict(model_weights(tensors))
    return model, spec


def evaluate_checkpoint(path: str | Path, data_root: str | None = None, split: str = "test",
                        batch_size: int = 1000, latency: bool = True) -> dict:
    model, spec = load_checkpoint_model(path)
    data = load_data(DataConfig(root=data_root, augment=None))
    part = data.test if split == "test" else data.val
    prepare = input_preparer(model, True)
    logits = predict(model, part.inputs, batch_size, prepare)
    result = {"checkpoint": str(path), "model": spec, "split": split, "samples": len(part)}
    result.update(classification_metrics(logits, part.targets, data.num_classes))
    result.update(model_cost(model, part.inputs[:1], measure_latency=latency, prepare=prepare))
    return result
