"""Distillation methods: one file each, registered by name."""

from distill.methods import (  # noqa: F401  (registers the built-in methods)
    at,
    combined,
    crd,
    dist,
    dkd,
    dml,
    fitnets,
    kd,
    lskd,
    pkt,
    regression,
    rkd,
    soft_tree,
    sp,
    supervised,
    tfkd,
    tinybert,
    two_way,
)
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
