"""The dataset registry: each dataset registers its name, kind, task and loader once.

The config (``data.dataset``), ``distill run``, ``distill evaluate`` and ``distill export`` all
look datasets up here. A user registers their own from Python::

    from distill.data import DataBundle, Split, from_tensors, register_dataset

    @register_dataset("my_images", kind="image")
    def load_my_images(cfg, teacher_path=None) -> DataBundle:   # cfg: the config's data section
        ...
        return from_tensors("my_images", Split(x, y), Split(x_test, y_test), val_size=cfg.val_size)

and then writes ``data: {dataset: my_images}`` in a config run from that Python process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from distill.errors import ConfigError
from distill.registry import Registry

if TYPE_CHECKING:
    from distill.config.schema import DataConfig
    from distill.data.bundle import DataBundle

KINDS = ("image", "text", "tabular", "regression", "audio", "lm")
Loader = Callable[["DataConfig", "str | None"], "DataBundle"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str  # one of KINDS: what the inputs are (images, token ids, feature vectors, regression rows)
    loader: Loader  # loader(cfg: DataConfig, teacher_path: str | None) -> DataBundle
    task: str = "classification"
    # True when the name alone describes the data (fixed files, no options): `distill evaluate --dataset NAME`.
    named: bool = False
    summary: str = ""
    # True when the loader reads `data.unlabeled: <folder or file>` (an unlabelled pool of its own kind).
    reads_unlabeled: bool = False
    # The task when it depends on the dataset's options (a table: data.table.task), else `task` is it.
    task_of: Callable[[DataConfig], str] | None = None
    # The kind when it depends on the data (a Hugging Face dataset holds images, text or audio), else `kind`.
    kind_of: Callable[[DataConfig], str] | None = None

    def task_for(self, cfg: DataConfig) -> str:
        return self.task_of(cfg) if self.task_of is not None else self.task

    def kind_for(self, cfg: DataConfig) -> str:
        return self.kind_of(cfg) if self.kind_of is not None else self.kind

    @property
    def is_text(self) -> bool:
        return self.kind == "text"


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(name: str, kind: str, *, task: str | None = None, named: bool = False, summary: str = "",
                     reads_unlabeled: bool = False, task_of: Callable[[DataConfig], str] | None = None,
                     kind_of: Callable[[DataConfig], str] | None = None):
    """Decorator for a loader ``(cfg: DataConfig, teacher_path: str | None) -> DataBundle``.

    ``reads_unlabeled``: the loader reads ``data.unlabeled`` when it is a path (``distill.data.unlabeled``);
    ``task_of``: the task from the data options, for a dataset that can be either; ``kind_of``: the kind
    from the data options (or the data), for a dataset whose inputs can be of several kinds."""
    if kind not in KINDS:
        raise ConfigError(f"dataset '{name}': kind must be one of {', '.join(KINDS)}, not '{kind}'")

    def decorator(loader: Loader) -> Loader:
        spec = DatasetSpec(name, kind, loader, task or ("regression" if kind == "regression" else "classification"),
                           named, summary or (loader.__doc__ or "").strip().split("\n")[0], reads_unlabeled, task_of,
                           kind_of)
        if DATASETS._items.get(name) != spec:  # re-importing the same module registers the same spec again
            DATASETS.register(name)(spec)
        return loader

    return decorator


def dataset_spec(name: str) -> DatasetSpec:
    """The registered dataset ``name``; an unknown one is a one-line error listing the known names."""
    return DATASETS.get(name)


def is_text_dataset(name: str | None) -> bool:
    """True for a dataset that is always text (by its name); :func:`is_text_data` also asks the data."""
    return name in DATASETS and DATASETS.get(name).is_text


def is_text_data(cfg: DataConfig) -> bool:
    """True when the configured data is text (tokenised with the teacher's tokenizer), e.g. a Hugging
    Face dataset whose input column holds strings."""
    return cfg.dataset in DATASETS and DATASETS.get(cfg.dataset).kind_for(cfg) == "text"


def named_datasets() -> list[str]:
    return [n for n in DATASETS if DATASETS.get(n).named]
