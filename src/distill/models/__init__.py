"""Model zoo and registry. Any ``torch.nn.Module`` works with the Python API as well."""

from distill.models import causal_lm, gbdt, hf, soft_tree, speech, text, zoo  # noqa: F401  (registers the built-in models)
from distill.models.registry import MODELS, build_model, count_parameters, model_options, register_model

__all__ = ["MODELS", "build_model", "count_parameters", "model_options", "register_model"]
