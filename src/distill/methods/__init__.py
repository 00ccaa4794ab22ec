"""Distillation methods: one file each, registered by name."""

from distill.methods import (  # noqa: F401  (registers the built-in methods)
    at,
    combined,
    crd,
    dist,
    dkd,
    dml,
    fitnets,
    forward_kl,
    gkd,
    kd,
    lskd,
    minilm,
    pkt,
    regression,
    reverse_kl,
    rkd,
    skew_forward_kl,
    skew_reverse_kl,
    soft_tree,
    sp,
    supervised,
    tfkd,
    tinybert,
    tvd,
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
