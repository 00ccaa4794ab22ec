"""Feature-based methods against NumPy references with explicit loops, and their shape errors."""


import numpy as np
import pytest
import torch

from distill.errors import CompatibilityError, ConfigError
from distill.methods import build_method

from .methods_support import fixed, run


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def block_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Average (C, H, W) over non-overlapping blocks down to (C, size, size)."""
    c, h, _ = x.shape
    k = h // size
    return np.array([[[x[ch, i * k:(i + 1) * k, j * k:(j + 1) * k].mean() for j in range(size)]
                      for i in range(size)] for ch in range(c)])


def huber(d: float) -> float:
    return 0.5 * d * d if abs(d) < 1 else abs(d) - 0.5


def test_fitnets_regresses_student_width_and_pools_to_the_teacher_size():
    s, t = fixed(2, 3, 4, 4, seed=1), fixed(2, 5, 2, 2, seed=2)
    method, out = run("fitnets", {"a": s}, {"b": t}, {"student_layer": "a", "teacher_layer": "b",
                                                      "regressor": "conv1x1"})  # distill's variant
    conv = method.regressors[0]
    assert isinstance(conv, torch.nn.Conv2d) and (conv.in_channels, conv.out_channels) == (3, 5)
    w, b = conv.weight.detach().double().numpy()[:, :, 0, 0], conv.bias.detach().double().numpy()
    errors = []
    for n in range(2):
        mapped = np.einsum("oc,chw->ohw", w, s[n].double().numpy()) + b[:, None, None]
        errors.append((block_mean(mapped, 2) - t[n].double().numpy()) ** 2)
    assert out["hint"].item() == pytest.approx(100 * np.mean(errors), rel=1e-5)


def test_fitnets_repdistiller_regressor_refuses_sizes_it_has_no_rule_for():
    with pytest.raises(CompatibilityError, match="set regressor: conv1x1"):
        run("fitnets", {"a": fixed(2, 3, 2, 2)}, {"b": fixed(2, 4, 3, 3)}, {"student_layer": "a", "teacher_layer": "b"})
    method, _ = run("fitnets", {"a": fixed(2, 3, 8, 8)}, {"b": fixed(2, 4, 4, 4)}, {"student_layer": "a",
                                                                                 "teacher_layer": "b"})
    conv = method.regressors[0][0]  # twice the teacher's size: RepDistiller's 3x3 stride-2 convolution
    assert (conv.kernel_size, conv.stride) == ((3, 3), (2, 2))


def test_fitnets_uses_a_linear_regressor_for_vectors():
    method, out = run("fitnets", {"a": fixed(3, 6, seed=1)}, {"b": fixed(3, 2, seed=2)},
                      {"student_layer": "a", "teacher_layer": "b", "hint_weight": 1.0})
    layer = method.regressors[0]
    assert isinstance(layer, torch.nn.Linear) and (layer.in_features, layer.out_features) == (6, 2)
    expected = ((layer(fixed(3, 6, seed=1)) - fixed(3, 2, seed=2)) ** 2).mean()
    assert out["hint"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_sp_matches_row_normalised_similarity_matrices():
    s, t = fixed(4, 3, 2, 2, seed=1), fixed(4, 5, seed=2)
    _, out = run("sp", {"pool": s}, {"pool": t})

    def gram(x):
        q = x.reshape(4, -1).double().numpy()
        g = np.array([[q[i] @ q[j] for j in range(4)] for i in range(4)])
        return np.array([unit(row) for row in g])

    expected = 3000 * np.sum((gram(s) - gram(t)) ** 2) / 16
    assert out["similarity"].item() == pytest.approx(expected, rel=1e-5)


def test_rkd_small_batches_give_zero_relational_loss_not_nan():
    _, out = run("rkd", {"pool": fixed(1, 3, seed=1)}, {"pool": fixed(1, 5, seed=2)})
    assert out["distance"].item() == 0.0 and out["angle"].item() == 0.0


def crd_reference(method, s, t, queue_s, queue_t):
    """Both directions of the InfoNCE loss, with embeddings recomputed from the heads' weights."""

    def embed(head, x):
        w, b = head.weight.detach().double().numpy(), head.bias.detach().double().numpy()
        return np.array([unit(w @ row + b) for row in x.reshape(len(x), -1).double().numpy()])

    z_s, z_t = embed(method.embed_s, s), embed(method.embed_t, t)

    def direction(anchors, positives, queue):
        total = 0.0
        for i, a in enumerate(anchors):
            scores = np.array([a @ p for p in positives] + [a @ q for q in queue]) / 0.07
            total += -scores[i] + np.log(np.exp(scores).sum())
        return total / len(anchors)

    return 0.8 * (direction(z_s, z_t, queue_t) + direction(z_t, z_s, queue_s)), z_s, z_t


def test_crd_contrasts_against_the_batch_then_the_fifo_queue():
    s1, t1 = fixed(2, 6, seed=1), fixed(2, 4, 3, 3, seed=2)
    s2, t2 = fixed(2, 6, seed=3), fixed(2, 4, 3, 3, seed=4)
    method, out1 = run("crd", {"pool": s1}, {"pool": t1}, {"queue_size": 3, "feat_dim": 5})
    expected1, z_s1, z_t1 = crd_reference(method, s1, t1, [], [])
    assert out1["contrastive"].item() == pytest.approx(expected1, rel=1e-5)

    from distill.methods import Batch, Outputs
    out2 = method.losses(Outputs(fixed(2, 4), {"pool": s2}), Outputs(fixed(2, 4), {"pool": t2}),
                         Batch(torch.zeros(2, 1), torch.tensor([0, 1])))
    expected2, z_s2, z_t2 = crd_reference(method, s2, t2, z_s1, z_t1)
    assert out2["contrastive"].item() == pytest.approx(expected2, rel=1e-5)
    # FIFO: three slots hold batch 2's second, batch 1's second and batch 2's first embeddings.
    assert method.queue_t.shape == (3, 5) and int(method.filled) == 3
    np.testing.assert_allclose(method.queue_t.double().numpy(), [z_t2[1], z_t1[1], z_t2[0]], rtol=1e-5, atol=1e-6)  # float32 queue vs float64 reference
    np.testing.assert_allclose(method.queue_s.double().numpy(), [z_s2[1], z_s1[1], z_s2[0]], rtol=1e-5, atol=1e-6)  # float32 queue vs float64 reference


def test_crd_does_not_enqueue_in_eval_mode():
    method = build_method("crd", {"queue_size": 4, "feat_dim": 3}).eval()
    from distill.methods import Batch, Outputs
    student, teacher = Outputs(fixed(2, 4), {"pool": fixed(2, 6)}), Outputs(fixed(2, 4), {"pool": fixed(2, 5)})
    method.setup(student, teacher)
    method.losses(student, teacher, Batch(torch.zeros(2, 1), torch.tensor([0, 1])))
    assert int(method.filled) == 0


SHAPE_ERRORS = [
    ("fitnets", fixed(2, 3, 4, 4), fixed(2, 5), "fitnets needs two (N, C, H, W) maps"),
    ("fitnets", fixed(2, 3, 6), fixed(2, 4, 6), "sequence lengths differ"),
    ("at", fixed(2, 3), fixed(2, 5, 2, 2), "needs (N, C, H, W) feature maps"),
    ("sp", fixed(2, 3), fixed(3, 3), "leading batch dimension"),
    ("rkd", fixed(2, 3), fixed(3, 3), "leading batch dimension"),
    ("pkt", fixed(2, 3), fixed(3, 3), "leading batch dimension"),
    ("crd", fixed(2, 3), fixed(3, 3), "leading batch dimension"),
]


@pytest.mark.parametrize("name,s,t,why", SHAPE_ERRORS)
def test_shape_mismatch_names_both_modules_and_shapes(name, s, t, why):
    with pytest.raises(CompatibilityError) as err:
        run(name, {"features.1": s}, {"layer3": t}, {"student_layer": "features.1", "teacher_layer": "layer3"})
    message = str(err.value)
    assert "\n" not in message and why in message
    for part in ("'features.1'", "'layer3'", str(tuple(s.shape)), str(tuple(t.shape))):
        assert part in message


def test_a_tapped_module_that_never_ran_is_named():
    with pytest.raises(CompatibilityError, match="teacher module 'layer3' produced no output"):
        run("sp", {"features.1": fixed(2, 3)}, {}, {"student_layer": "features.1", "teacher_layer": "layer3"})


@pytest.mark.parametrize("name,options,why", [
    ("at", {}, "needs option 'student_layer'"),
    ("fitnets", {"student_layer": "a"}, "needs option 'teacher_layer'"),
    ("sp", {"student_layer": ["a", "b"], "teacher_layer": ["c"]}, "one teacher layer per student layer"),
    ("rkd", {"student_layer": ["a", "b"], "teacher_layer": ["c", "d"]}, "compares one pair of layers"),
])
def test_layer_options_are_checked_when_the_method_is_built(name, options, why):
    with pytest.raises(ConfigError, match=why):
        build_method(name, options)


@pytest.mark.parametrize("name", ["fitnets", "crd"])
def test_methods_with_adapters_refuse_to_run_before_setup(name):
    with pytest.raises(RuntimeError, match="setup"):
        run(name, {"a": fixed(2, 3)}, {"b": fixed(2, 3)}, {"student_layer": "a", "teacher_layer": "b"}, setup=False)
