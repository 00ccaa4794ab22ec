"""Logit-based methods (dkd, dist, lskd, tfkd) against NumPy references written out by hand."""

import numpy as np
import pytest
import torch

from distill.methods import METHODS, Batch, Outputs, build_method

from .methods_support import NUM_CLASSES, fixed, np_cross_entropy, np_kl, np_softmax

S = fixed(5, NUM_CLASSES, seed=1) * 3
T = fixed(5, NUM_CLASSES, seed=2) * 3
Y = torch.tensor([0, 1, 2, 3, 1])


def losses(name: str, **options):
    return build_method(name, options).losses(Outputs(S), Outputs(T), Batch(torch.zeros(5, 1), Y))


def as_np(t: torch.Tensor) -> np.ndarray:
    return t.double().numpy()


def test_dkd_matches_the_decoupled_formula():
    temp = 4.0
    tckd = nckd = 0.0
    for i, c in enumerate(Y.tolist()):
        p_s, p_t = np_softmax(as_np(S[i]) / temp), np_softmax(as_np(T[i]) / temp)
        tckd += np_kl([p_t[c], 1 - p_t[c]], [p_s[c], 1 - p_s[c]])
        rest = [k for k in range(NUM_CLASSES) if k != c]
        nckd += np_kl(p_t[rest] / p_t[rest].sum(), p_s[rest] / p_s[rest].sum())
    out = losses("dkd")
    assert out["tckd"].item() == pytest.approx(1.0 * tckd / 5 * temp**2, rel=1e-5)
    assert out["nckd"].item() == pytest.approx(8.0 * nckd / 5 * temp**2, rel=1e-5)
    assert out["hard"].item() == pytest.approx(np_cross_entropy(as_np(S), Y.numpy()), rel=1e-5)


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


def test_dist_matches_pearson_correlations():
    y_s, y_t = np_softmax(as_np(S)), np_softmax(as_np(T))
    inter = np.mean([1 - np.corrcoef(y_s[i], y_t[i])[0, 1] for i in range(5)])
    intra = np.mean([1 - np.corrcoef(y_s[:, j], y_t[:, j])[0, 1] for j in range(NUM_CLASSES)])
    out = losses("dist", beta=2.0)
    assert out["inter"].item() == pytest.approx(2.0 * inter, rel=1e-5)
    assert out["intra"].item() == pytest.approx(intra, rel=1e-5)


def test_lskd_matches_kd_on_standardised_logits():
    temp = 2.0
    z = lambda a: (a - a.mean(1, keepdims=True)) / a.std(1, keepdims=True)  # noqa: E731  (population std)
    z_s, z_t = np_softmax(z(as_np(S)) / temp), np_softmax(z(as_np(T)) / temp)
    soft = np.mean([np_kl(z_t[i], z_s[i]) for i in range(5)]) * temp**2
    out = losses("lskd")
    assert out["soft"].item() == pytest.approx(9.0 * soft, rel=1e-4)
    assert out["hard"].item() == pytest.approx(0.1 * np_cross_entropy(as_np(S), Y.numpy()), rel=1e-5)


def test_lskd_ignores_logit_shift_and_scale_but_kd_does_not():
    batch = Batch(torch.zeros(5, 1), Y)
    for name, changes in (("lskd", False), ("kd", True)):
        method = build_method(name)
        before = method.losses(Outputs(S), Outputs(T), batch)["soft"]
        after = method.losses(Outputs(S * 3 + 5), Outputs(T), batch)["soft"]
        assert (abs(float(before) - float(after)) > 1e-3) == changes, name


def test_tfkd_matches_a_softened_virtual_teacher():
    a, temp, alpha = 0.9, 20.0, 0.95
    soft = 0.0
    for i, c in enumerate(Y.tolist()):
        virtual = np.full(NUM_CLASSES, (1 - a) / (NUM_CLASSES - 1))
        virtual[c] = a
        softened = virtual ** (1 / temp) / (virtual ** (1 / temp)).sum()
        soft += np_kl(softened, np_softmax(as_np(S[i]) / temp))
    out = build_method("tfkd").losses(Outputs(S), None, Batch(torch.zeros(5, 1), Y))
    assert out["soft"].item() == pytest.approx(alpha * soft / 5 * temp**2, rel=1e-4)
    assert out["hard"].item() == pytest.approx((1 - alpha) * np_cross_entropy(as_np(S), Y.numpy()), rel=1e-5)


def test_tfkd_needs_no_teacher_and_label_smoothing_is_its_alias():
    assert build_method("tfkd").needs().teacher is False
    assert METHODS.get("label_smoothing") is METHODS.get("tfkd")


@pytest.mark.parametrize("name,bad", [("dkd", {"temperature": 0}), ("dist", {"tau": -1}),
                                      ("lskd", {"temperature": 0}), ("tfkd", {"a": 1.0})])
def test_invalid_options_are_rejected(name, bad):
    with pytest.raises(ValueError):
        build_method(name, bad)
