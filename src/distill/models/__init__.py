"""Model zoo and registry. Any ``torch.nn.Module`` works with the Python API as well."""

# registers the built-in models and the families of other libraries' models (torchvision:, timm:, hf:)
from distill.models import causal_lm, gbdt, hf, hf_auto, soft_tree, speech, text, vision_libs, zoo  # noqa: F401
from distill.models.registry import MODELS, build_model, count_parameters, model_options, register_model

__all__ = ["MODELS", "build_model", "count_parameters", "model_options", "register_model"]
