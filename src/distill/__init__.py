"""distill: knowledge distillation from a large teacher into a small, fast student.

The names below are imported on first use (PEP 562), so ``import distill`` (and ``distill --help``)
does not pay for torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "distill_model": "distill.api", "run": "distill.api", "train_model": "distill.api",
    "cache_teacher": "distill.api", "on_epoch": "distill.train.trackers",
    "ExperimentConfig": "distill.config", "TrainConfig": "distill.config", "load_config": "distill.config",
    "Method": "distill.methods", "register_method": "distill.methods",
    "build_model": "distill.models", "register_model": "distill.models",
    "Batch": "distill.types", "Needs": "distill.types", "Outputs": "distill.types",
}

__all__ = [
    "Batch", "ExperimentConfig", "Method", "Needs", "Outputs", "TrainConfig", "__version__", "build_model",
    "cache_teacher", "distill_model", "load_config", "on_epoch", "register_method", "register_model", "run",
    "train_model",
]

if TYPE_CHECKING:
    from distill.api import cache_teacher, distill_model, run, train_model
    from distill.config import ExperimentConfig, TrainConfig, load_config
    from distill.methods import Method, register_method
    from distill.models import build_model, register_model
    from distill.train.trackers import on_epoch
    from distill.types import Batch, Needs, Outputs


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'distill' has no attribute '{name}'")


def __dir__() -> list[str]:
    return __all__
