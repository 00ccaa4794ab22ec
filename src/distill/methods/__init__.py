"""Distillation methods: one file each, registered by name."""

from distill.methods import kd, supervised, tinybert  # noqa: F401  (registers the built-in methods)
from distill.methods.base import (
    METHODS,
    Batch,
    Method,
    Needs,
    Outputs,
    build_method,
    kl_with_temperature,
    method_options,
    register_method,
)

__all__ = [
    "METHODS", "Batch", "Method", "Needs", "Outputs", "build_method",
    "kl_with_temperature", "method_options", "register_method",
]
