"""The data a run was trained and tested on, rebuilt from its config.yaml (or any experiment YAML).

`distill export` and `distill evaluate` both use it: a text checkpoint is only meaningful with
its run's sentences and tokenizer, a regression checkpoint with its run's split and scaling.
"""

from __future__ import annotations

from pathlib import Path

from distill.config.schema import DataConfig, tokenizer_home
from distill.data.bundle import DataBundle, load_data
from distill.data.registry import DATASETS, is_text_data
from distill.errors import ConfigError

# The built-in text datasets, for code written before the registry; use is_text_dataset(name).
TEXT_DATASETS = tuple(name for name in DATASETS if DATASETS.get(name).is_text)


def enclosing_run(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint was written into (RUN/checkpoints/NAME.safetensors), if it has a config."""
    run_dir = checkpoint.resolve().parent.parent
    if checkpoint.resolve().parent.name == "checkpoints" and (run_dir / "config.yaml").is_file():
        return run_dir
    return None


def run_config(run_dir: Path | None) -> dict:
    """A run's config.yaml as a dict; a corrupt or invalid file is a one-line error that names it."""
    if run_dir is None or not (run_dir / "config.yaml").is_file():
        return {}
    from distill.config.load import config_data, load_config

    path = run_dir / "config.yaml"
    load_config(path)  # validates: the error names the file and the key
    return config_data(path)


def is_text_config(run_dir: Path | None) -> bool:
    """True when the run's data is text (a text set, or a Hugging Face dataset of strings)."""
    return is_text_section(run_config(run_dir).get("data") or {})


def is_text_section(section: dict) -> bool:
    """True when a config's data section (a dict) describes text data."""
    if section.get("dataset", "fashion_mnist") not in DATASETS:
        return False
    return is_text_data(_data_config({**section, "augment": None, "unlabeled": None}))


def teacher_path(cfg: dict) -> str | None:
    """``teacher.model.path`` (or an ``hf:`` teacher's directory) of a run's config: the text tokenizer's home."""
    model = (cfg.get("teacher") or {}).get("model") or {}
    options = model.get("options", model) if isinstance(model, dict) else {}
    name = model.get("name", "") if isinstance(model, dict) else str(model or "")
    return tokenizer_home(name, options)


def text_context(run_dir: Path | None) -> dict | None:
    """The model context a text checkpoint may lack (checkpoints written before it was recorded), without
    tokenising the run's data: the teacher's directory, from which the models read pad id and vocabulary."""
    return {"teacher_path": teacher_path(run_config(run_dir))} if is_text_config(run_dir) else None


def config_data(cfg: dict, data_root: str | None = None) -> DataBundle:
    """The data an experiment config (a dict) describes, without augmentation.

    Text datasets are tokenised as in the run: with ``data.text.tokenizer``, else the teacher's
    model directory (``teacher.model.path``; null = the default MiniLM). The transfer set is not
    rebuilt: callers only evaluate. ``data_root`` replaces ``data.root`` (images) or
    ``data.text.root`` (text), or the folder of the ``data.lm`` files (language models, same names).
    """
    # callers only evaluate: no augmentation, no unlabelled pool (text: no transfer set)
    section = {**(cfg.get("data") or {}), "augment": None, "unlabeled": None}
    if is_text_section(section):
        section["text"] = {**(section.get("text") or {}), "transfer_set": None}
        if data_root:
            section["text"]["root"] = data_root
        return load_data(_data_config(section), teacher_path=teacher_path(cfg))
    if section.get("dataset") in DATASETS and DATASETS.get(section["dataset"]).kind == "lm":
        # language-model data: tokenised with the teacher's tokenizer, as in the run
        if data_root:  # the same file names in another folder (a run moved to another machine)
            files = section.get("lm") or {}
            section["lm"] = {**files, **{k: str(Path(data_root) / Path(files[k]).name)
                                         for k in ("train", "val", "test") if files.get(k)}}
        return load_data(_data_config(section), teacher_path=teacher_path(cfg))
    if data_root:
        section["root"] = data_root
    # the teacher's directory tokenises a Hugging Face dataset of text (hf_dataset); other loaders ignore it
    return load_data(_data_config(section), teacher_path=teacher_path(cfg))


def _data_config(section: dict) -> DataConfig:
    from pydantic import ValidationError

    from distill.config.load import format_validation_error

    try:
        return DataConfig(**section)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "data")) from None


def run_data(run_dir: Path | None, data_root: str | None = None) -> DataBundle:
    """The run's own data split (from its config.yaml, see :func:`config_data`), else the full Fashion-MNIST."""
    return config_data(run_config(run_dir), data_root)
