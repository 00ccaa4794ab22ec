"""`distill evaluate`: rebuild a zoo model from a checkpoint's metadata and score it on its data."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from distill.checkpoint import load_checked, load_tensors, model_weights, non_finite
from distill.config import load_config
from distill.data.registry import dataset_spec, named_datasets
from distill.data.run_data import config_data, enclosing_run, run_config
from distill.errors import CheckpointError, ConfigError
from distill.evaluate.cost import model_cost
from distill.evaluate.lm_checkpoint import (
    LM_DATA,
    LM_MODEL,
    LM_TASK,
    check_lm_model,
    check_vocabulary,
    checked_task,
    lm_checkpoint_metrics,
)
from distill.evaluate.metrics import classification_metrics
from distill.evaluate.regression import regression_metrics
from distill.models.predict import input_preparer, predict
from distill.models.registry import MODELS, build_model, model_options, rebuild_options

FASHION_MNIST_SHAPE = [1, 28, 28]


def which_data() -> str:
    # --dataset takes the registered datasets that a name alone describes (fixed files, nothing to configure).
    return ("--config RUN/config.yaml (or the experiment YAML it was trained from)"
            f" or --dataset {{{','.join(named_datasets())}}}")


def _spec_problem(spec) -> str | None:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        return "it has no model description in its metadata"
    shape, classes = spec.get("input_shape"), spec.get("num_classes")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        return f"its input_shape {shape!r} is not a list of positive sizes"
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        return f"its num_classes {classes!r} is not a positive integer"
    if not isinstance(spec.get("options", {}), dict):
        return "its model options are not a mapping"
    return None


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A distill checkpoint's tensors and model description (name, options, input_shape, num_classes)."""
    tensors, meta = load_tensors(path)
    spec = meta.get("model")
    if spec and "name" not in spec and spec.get("class"):
        # train_model() on an own nn.Module: the weights are there, the recipe to rebuild the module is not.
        raise CheckpointError(
            f"{path} holds the weights of an own module ({spec['class']}) but not the registered model name "
            f"that rebuilds it; register its factory with @register_model('my_net'), train with "
            f"train_model(..., model_spec={{'name': 'my_net'}}) and pass --import MODULE")
    problem = _spec_problem(spec)
    if problem:
        raise CheckpointError(f"{path}: {problem}; it was not written by distill (or was edited): "
                              f"use a checkpoint from a run's checkpoints/ folder")
    bad = non_finite(model_weights(tensors))
    if bad:
        raise CheckpointError(f"{path} holds NaN or infinite weights ({', '.join(bad[:3])}): it comes from a "
                              f"diverged run; use an earlier checkpoint or train again with a lower learning rate")
    return tensors, spec


def shown_spec(spec: dict) -> dict:
    """The model description to print: a kept vocabulary (thousands of token ids) shown by its size."""
    options = spec.get("options", {})
    if not isinstance(options.get("data_vocabulary"), list):
        return spec
    return {**spec, "options": {**options, "data_vocabulary": f"{len(options['data_vocabulary'])} token ids"}}


def rebuild_model(tensors: dict[str, torch.Tensor], spec: dict, context: dict | None = None,
                  path: str | Path = "the checkpoint") -> nn.Module:
    accepted = model_options(spec["name"]) if spec["name"] in MODELS.names() else {}
    options = {**{k: v for k, v in (context or {}).items() if k in accepted},
               **rebuild_options(spec["name"], spec.get("options", {}))}
    try:
        model = build_model(spec["name"], tuple(spec["input_shape"]), spec["num_classes"], **options)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its recorded model cannot be built: {exc}") from None
    load_checked(model, model_weights(tensors), path, spec, f"the {spec['name']} its metadata describes")
    return model


def load_checkpoint_model(path: str | Path, context: dict | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the zoo model described in a distill checkpoint's metadata; return it and that description.

    ``context`` (a text DataBundle's ``meta["model_context"]``: vocab_size, pad_id, teacher_path)
    fills the options that the model takes and the checkpoint does not record; checkpoints
    written before the experiment recorded them need it to rebuild a text student.
    """
    tensors, spec = read_checkpoint(path)
    return rebuild_model(tensors, spec, context, path), spec


def named_dataset_config(name: str, spec: dict) -> dict:
    """The config of a dataset given by name: its default split; text is tokenised with the
    checkpoint's own tokenizer directory (its teacher's, or an HF classifier's model) and length."""
    if name not in named_datasets():
        raise ConfigError(f"--dataset {name}: expected one of {', '.join(named_datasets())}; "
                          f"for other data use --config")
    if not dataset_spec(name).is_text:
        return {"data": {"dataset": name}}
    options = spec.get("options", {})
    tokenizer = options.get("teacher_path", options.get("path"))
    return {"data": {"dataset": name, "text": {"max_length": spec["input_shape"][0]}},
            "teacher": {"model": {"path": tokenizer}}}


def checkpoint_data_config(path: Path, spec: dict, config: str | Path | None = None,
                           dataset: str | None = None) -> tuple[dict, str]:
    """(experiment config as a dict, where it came from) describing the data to evaluate ``path`` on.

    In order: ``config`` (an experiment YAML, or a run folder for its config.yaml), ``dataset``
    (a name), the run folder the checkpoint sits in (RUN/checkpoints/), else the full
    Fashion-MNIST for a 1x28x28 model. Anything else cannot be guessed: a one-line error.
    """
    if config is not None:
        file = Path(config) / "config.yaml" if Path(config).is_dir() else Path(config)
        return load_config(file).model_dump(mode="json"), str(file)
    if dataset is not None:
        return named_dataset_config(dataset, spec), f"--dataset {dataset}"
    run_dir = enclosing_run(path)
    if run_dir is not None:
        return run_config(run_dir), str(run_dir / "config.yaml")
    if list(spec.get("input_shape", [])) == FASHION_MNIST_SHAPE:
        return {}, "fashion_mnist (default)"
    raise ConfigError(f"cannot tell which data {path} ({spec['name']}, input shape {tuple(spec.get('input_shape', ()))})"
                      f" belongs to: it is not inside a run folder (RUN/checkpoints/ next to RUN/config.yaml); "
                      f"pass {LM_DATA if spec['name'] == LM_MODEL else which_data()}")


def check_fits(path: Path, spec: dict, data, source: str) -> None:
    """The checkpoint's outputs and vocabulary match the data's, else a one-line error naming the fix."""
    shape = list(spec.get("input_shape", []))
    if spec["num_classes"] != data.num_classes or (not data.meta.get("text") and shape != list(data.input_shape)):
        raise ConfigError(f"{path} ({shape} in, {spec['num_classes']} out) does not fit its data ({data.name} from "
                          f"{source}: {list(data.input_shape)} in, {data.num_classes} out); pass {which_data()}")
    vocab = spec.get("options", {}).get("vocab_size")
    data_vocab = data.meta.get("model_context", {}).get("vocab_size")
    if vocab is not None and data_vocab is not None and vocab != data_vocab:
        raise ConfigError(f"{path} was trained on token ids of a {vocab}-word vocabulary but the tokenizer from "
                          f"{source} has {data_vocab}; set teacher.model.path or data.text.tokenizer in --config")


def evaluate_checkpoint(path: str | Path, data_root: str | None = None, split: str = "test",
                        batch_size: int = 1000, latency: bool = True, config: str | Path | None = None,
                        dataset: str | None = None, against_teacher: bool = False) -> dict:
    """Metrics of a distill checkpoint on its own data (see :func:`checkpoint_data_config`).

    ``data_root`` replaces the data's directory (``data.root``, ``data.text.root`` for text, the
    folder of the ``data.lm`` files for language models). Classification gives accuracy,
    cross-entropy, ECE and the rest; regression (``task: regression``) MAE, MSE (in the targets'
    units) and R^2; a causal LM (``task: causal_lm``) perplexity, cross-entropy, next-token accuracy
    on the reference tokens and, with ``against_teacher``, KL to the config's pretrained teacher and
    top-1 agreement with it.
    """
    path = Path(path)
    tensors, spec = read_checkpoint(path)
    cfg, source = checkpoint_data_config(path, spec, config, dataset)
    task = checked_task(path, spec, cfg, source, against_teacher)
    data = config_data(cfg, data_root)
    part = data.test if split == "test" else data.val
    result = {"checkpoint": str(path), "model": shown_spec(spec), "dataset": data.name, "data_from": source, "task": task,
              "split": split, "samples": len(part)}
    if task == LM_TASK:
        if spec["name"] == LM_MODEL:  # before the model is built: that loads its source model (seconds)
            check_vocabulary(path, spec, data, source)
        model = rebuild_model(tensors, spec, data.meta.get("model_context"), path)
        check_lm_model(path, spec, model, data, source)
        return {**result, **lm_checkpoint_metrics(model, cfg, data, part, batch_size, against_teacher)}
    check_fits(path, spec, data, source)
    model = rebuild_model(tensors, spec, data.meta.get("model_context"), path)
    prepare = input_preparer(model, True)
    logits = predict(model, part.inputs, batch_size, prepare)
    if task == "regression":
        result.update(regression_metrics(logits, part.targets, data.meta.get("target_std", 1.0)))
    else:
        result.update(classification_metrics(logits, part.targets, data.num_classes))
    result.update(model_cost(model, part.inputs[:1], measure_latency=latency, prepare=prepare))
    return result
