"""distill: knowledge distillation from a large teacher into a small, fast student."""

__version__ = "0.1.0"

from distill.api import distill_model, run, train_model  # noqa: E402
from distill.config import ExperimentConfig, TrainConfig, load_config  # noqa: E402
from distill.methods import Method, register_method  # noqa: E402
from distill.models import build_model, register_model  # noqa: E402
from distill.types import Batch, Needs, Outputs  # noqa: E402

__all__ = [
    "Batch", "ExperimentConfig", "Method", "Needs", "Outputs", "TrainConfig", "__version__", "build_model",
    "distill_model", "load_config", "register_method", "register_model", "run", "train_model",
]
