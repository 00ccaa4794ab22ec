"""distill: knowledge distillation from a large teacher into a small, fast student."""

__version__ = "0.1.0"

from distill.api import cache_teacher, distill_model, run, train_model  # noqa: E402
from distill.config import ExperimentConfig, TrainConfig, load_config  # noqa: E402
from distill.methods import Batch, Method, Needs, Outputs, register_method  # noqa: E402
from distill.models import build_model, register_model  # noqa: E402
from distill.train.trackers import on_epoch  # noqa: E402

__all__ = [
    "Batch", "ExperimentConfig", "cache_teacher", "Method", "Needs", "Outputs", "TrainConfig", "__version__", "build_model",
    "distill_model", "load_config", "on_epoch", "register_method", "register_model", "run", "train_model",
]
