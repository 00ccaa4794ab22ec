"""Logit-based methods (dkd, dist, lskd, tfkd) against NumPy references written out by hand."""

import numpy as np
import pytest
import torch

from distill.methods import METHODS, Batch, Outputs, build_method

from .methods_support import NUM_CLASSES, fixed

S = fixed(5, NUM_CLASSES, seed=1) * 3
T = fixed(5, NUM_CLASSES, seed=2) * 3
Y = torch.tensor([0, 1, 2, 3, 1])


def losses(name: str, **options):
    return build_method(name, options).losses(Outputs(S), Outputs(T), Batch(torch.zeros(5, 1), Y))


def as_np(t: torch.Tensor) -> np.ndarray:
    return t.double().numpy()


def test_dkd_warmup_ramps_with_training_steps_only():
    method = build_method("dkd", {"warmup_steps": 4})
    batch = Batch(torch.zeros(5, 1), Y)
    full = losses("dkd")["nckd"]
    method.train()
    first = method.losses(Outputs(S), Outputs(T), batch)["nckd"]
    assert float(first) == pytest.approx(float(full) / 4, rel=1e-5)
    method.eval()
    method.losses(Outputs(S), Outputs(T), batch)
    assert int(method.state_dict()["steps"]) == 1  # eval calls do not advance the warm-up


def test_lskd_ignores_logit_shift_and_scale_but_kd_does_not():
    batch = Batch(torch.zeros(5, 1), Y)
    for name, changes in (("lskd", False), ("kd", True)):
        method = build_method(name)
        before = method.losses(Outputs(S), Outputs(T), batch)["soft"]
        after = method.losses(Outputs(S * 3 + 5), Outputs(T), batch)["soft"]
        assert (abs(float(before) - float(after)) > 1e-3) == changes, name


def test_tfkd_needs_no_teacher_and_label_smoothing_is_its_alias():
    assert build_method("tfkd").needs().teacher is False
    assert METHODS.get("label_smoothing") is METHODS.get("tfkd")


@pytest.mark.parametrize("name,bad", [("dkd", {"temperature": 0}), ("dist", {"tau": -1}),
                                      ("lskd", {"temperature": 0}), ("tfkd", {"a": 1.0})])
def test_invalid_options_are_rejected(name, bad):
    with pytest.raises(ValueError):
        build_method(name, bad)
