"""Every method against an independent transcription of its authors' official code, value and gradient.

Each reference below is written out with loops and NumPy in float64 from the official code named in
its docstring (never by calling distill's helpers). The gradient of the method's total with respect
to the student's logits or features is checked against central differences of that reference.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from distill.methods import Batch, Outputs, build_method

N, K = 5, 4
RNG = np.random.default_rng(0)
S_LOGITS = RNG.normal(size=(N, K)) * 3
T_LOGITS = RNG.normal(size=(N, K)) * 3
Y = np.array([0, 1, 2, 3, 1])


# -- NumPy building blocks, float64 ------------------------------------------------------------
def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def unit(v: np.ndarray) -> np.ndarray:
    """torch.nn.functional.normalize: v / max(|v|, 1e-12)."""
    return v / max(np.linalg.norm(v), 1e-12)


def huber(d: float) -> float:
    return 0.5 * d * d if abs(d) < 1 else abs(d) - 0.5


def numeric_gradient(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (f(up) - f(down)) / (2 * h)
    return grad


def check(total_of, reference, x0: np.ndarray, rel: float = 1e-6, grad_atol: float = 1e-6) -> None:
    """``total_of(tensor)`` is the method's summed terms; ``reference(array)`` the transcription's value."""
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    total = total_of(x)
    total.backward()
    assert total.item() == pytest.approx(reference(x0), rel=rel, abs=1e-9)
    expected = numeric_gradient(reference, x0)
    assert np.allclose(x.grad.double().numpy(), expected, rtol=1e-4, atol=grad_atol), (x.grad, expected)


def logit_total(name: str, options: dict | None = None, teacher=T_LOGITS, targets=Y, method=None):
    method = method or build_method(name, options)
    t = Outputs(torch.tensor(teacher)) if teacher is not None else None
    batch = Batch(torch.zeros(len(targets), 1), torch.tensor(targets))
    return lambda s: sum(method.losses(Outputs(s), t, batch).values())


# -- logit methods ------------------------------------------------------------------------------
def test_kd_is_repdistillers_distill_kl():
    """RepDistiller distiller_zoo/KD.py: kl_div(log_softmax(s/T), softmax(t/T), sum) * T^2 / batch; alpha 0.9."""
    temp, alpha = 4.0, 0.9

    def reference(s):
        total = 0.0
        for i in range(N):
            p_s, p_t = softmax(s[i] / temp), softmax(T_LOGITS[i] / temp)
            total += sum(p_t[k] * (np.log(p_t[k]) - np.log(p_s[k])) for k in range(K))
        return alpha * total * temp**2 / N

    check(logit_total("kd"), reference, S_LOGITS)


def dkd_reference(s: np.ndarray, t: np.ndarray, y: np.ndarray, alpha=1.0, beta=8.0, temp=4.0, ramp=1.0) -> float:
    """mdistiller distillers/DKD.py dkd_loss, literally: cat_mask of softmaxes, and the -1000 target mask."""
    tckd = nckd = 0.0
    for i in range(len(y)):
        gt = np.zeros(K)
        gt[y[i]] = 1.0
        p_s, p_t = softmax(s[i] / temp), softmax(t[i] / temp)
        b_s = np.array([(p_s * gt).sum(), (p_s * (1 - gt)).sum()])
        b_t = np.array([(p_t * gt).sum(), (p_t * (1 - gt)).sum()])
        tckd += sum(b_t[j] * (np.log(b_t[j]) - np.log(b_s[j])) for j in range(2))
        q_t = softmax(t[i] / temp - 1000.0 * gt)
        log_q_s = log_softmax(s[i] / temp - 1000.0 * gt)
        nckd += sum(q_t[k] * (np.log(q_t[k]) - log_q_s[k]) for k in range(K) if q_t[k] > 0)
    scale = temp**2 / len(y)
    return ramp * (alpha * tckd * scale + beta * nckd * scale)


def test_dkd_is_mdistillers_dkd_loss():
    check(logit_total("dkd"), lambda s: dkd_reference(s, T_LOGITS, Y), S_LOGITS)


def test_dkd_warms_up_over_its_first_20_epochs_as_mdistiller():
    """mdistiller: min(epoch / WARMUP, 1) * dkd_loss with epochs counted from 1, WARMUP = 20."""
    method = build_method("dkd")
    method.train()
    for epoch, ramp in ((0, 1 / 20), (9, 10 / 20), (19, 1.0), (30, 1.0)):
        method.start_epoch(epoch)  # the trainer's 0-based epoch
        check(logit_total("dkd", method=method), lambda s, r=ramp: dkd_reference(s, T_LOGITS, Y, ramp=r), S_LOGITS)


def test_dkd_uses_only_labelled_rows_for_its_target_terms():
    targets = np.array([0, -1, 2, -1, 1])
    keep = targets >= 0

    def reference(s):
        return dkd_reference(s[keep], T_LOGITS[keep], targets[keep])

    check(logit_total("dkd", targets=targets), reference, S_LOGITS)
    only_unlabelled = logit_total("dkd", targets=np.full(N, -1))(torch.tensor(S_LOGITS, requires_grad=True))
    assert float(only_unlabelled.detach()) == 0.0


def lskd_reference(s: np.ndarray, t: np.ndarray, temp=2.0, weight=9.0) -> float:
    """logit-standardization-KD mdistiller/distillers/KD.py: (x - mean) / (1e-7 + x.std(-1)), unbiased std."""

    def normalize(row):
        mean = row.mean()
        std = np.sqrt(sum((v - mean) ** 2 for v in row) / (len(row) - 1))
        return (row - mean) / (1e-7 + std)

    total = 0.0
    for i in range(len(s)):
        p_s, p_t = softmax(normalize(s[i]) / temp), softmax(normalize(t[i]) / temp)
        total += sum(p_t[k] * (np.log(p_t[k]) - np.log(p_s[k])) for k in range(K))
    return weight * total / len(s) * temp**2


def test_lskd_standardises_with_the_unbiased_std_as_the_official_code():
    check(logit_total("lskd"), lambda s: lskd_reference(s, T_LOGITS), S_LOGITS)


def test_lskd_distils_unlabelled_rows_too():
    targets = np.array([0, -1, 2, -1, 1])
    check(logit_total("lskd", targets=targets), lambda s: lskd_reference(s, T_LOGITS), S_LOGITS)


def dist_reference(s: np.ndarray, t: np.ndarray, beta=2.0, gamma=2.0, tau=4.0) -> float:
    """hunto/DIST_KD dist_kd.py: 1 - mean Pearson, cosine = (a.b) / (|a||b| + 1e-8), rows then columns."""
    y_s, y_t = softmax(s / tau), softmax(t / tau)

    def relation(a, b):  # one minus the mean Pearson correlation of the rows of a and b
        corr = []
        for u, v in zip(a, b, strict=True):
            u, v = u - u.mean(), v - v.mean()
            corr.append((u @ v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-8))
        return 1 - np.mean(corr)

    return beta * tau**2 * relation(y_s, y_t) + gamma * tau**2 * relation(y_s.T, y_t.T)


def test_dist_defaults_are_the_official_cifar_recipe():
    """CE + 2 * DIST (beta = gamma = 1 inside) is beta = gamma = 2 here; tau = 4 on CIFAR-100."""
    check(logit_total("dist"), lambda s: dist_reference(s, T_LOGITS), S_LOGITS)


def test_dist_with_unlabelled_rows_is_the_same_loss():
    check(logit_total("dist", targets=np.array([-1, -1, 2, 0, -1])), lambda s: dist_reference(s, T_LOGITS), S_LOGITS)


def tfkd_reference(s: np.ndarray, y: np.ndarray, correct_prob=0.99, temp=20.0, alpha=0.1, multiplier=100.0) -> float:
    """Teacher-free-KD my_loss_function.py loss_kd_regularization, without its (1 - alpha) * CE (the trainer's)."""
    total = 0.0
    for i in range(len(y)):
        teacher_soft = np.full(K, (1 - correct_prob) / (K - 1))
        teacher_soft[y[i]] = correct_prob
        q = softmax(teacher_soft / temp)  # softmax of the probabilities over T
        log_p = log_softmax(s[i])  # the student is not divided by T
        total += sum(q[k] * (np.log(q[k]) - log_p[k]) for k in range(K))
    return alpha * multiplier * total / (len(y) * K)  # nn.KLDivLoss(): the mean over all N x K entries


def test_tfkd_is_the_official_loss_kd_regularization():
    check(logit_total("tfkd", teacher=None), lambda s: tfkd_reference(s, Y), S_LOGITS)
    assert build_method("tfkd").label_weight == pytest.approx(0.9)  # (1 - alpha) * CE
    assert build_method("label_smoothing", {"alpha": 0.95}).label_weight == pytest.approx(0.05)


def test_tfkd_leaves_unlabelled_rows_out():
    targets = np.array([0, -1, 2, -1, 1])
    keep = targets >= 0
    check(logit_total("tfkd", teacher=None, targets=targets), lambda s: tfkd_reference(s[keep], targets[keep]),
          S_LOGITS)


@pytest.mark.parametrize("reduction,per_peer", [("sum", 1.0), ("mean", 0.5)])
def test_dml_is_the_official_kl_loss_compute_summed_over_the_other_peers(reduction, per_peer):
    """Deep-Mutual-Learning train_models.py: net_loss_i = CE_i + sum_{j != i} kl_loss_compute(logits_i, logits_j),
    kl_loss_compute = mean_n sum_k p_j log(1e-8 + p_j / (p_i + 1e-8)); each net's gradient for its own
    variables only (the others fixed). At T = 1 as the code, and at T = 2 with distill's T^2 factor."""
    cohort = RNG.normal(size=(N, 3, K))
    batch = Batch(torch.zeros(N, 1), torch.tensor(Y))
    for temp in (1.0, 2.0):
        method = build_method("dml", {"temperature": temp, "alpha": 0.5, "reduction": reduction})

        def reference(student, targets=cohort, temp=temp):
            total = 0.0
            for i, j in itertools.permutations(range(3), 2):
                kl = np.mean([sum(softmax(targets[n, j] / temp) * np.log(1e-8 + softmax(targets[n, j] / temp)
                                                                           / (softmax(student[n, i] / temp) + 1e-8)))
                              for n in range(N)])
                total += 0.5 * per_peer * kl * temp**2
            return total

        check(lambda s, m=method: sum(m.losses(Outputs(s), None, batch).values()), reference, cohort, rel=1e-6)


# -- feature methods ----------------------------------------------------------------------------
def feature_total(name: str, options: dict, t_feature: np.ndarray, n: int = N):
    method = build_method(name, options)
    batch = Batch(torch.zeros(n, 1), torch.tensor(np.arange(n) % K))
    t_logits = torch.tensor(RNG.normal(size=(n, K)))
    teacher = Outputs(t_logits, {"t": torch.tensor(t_feature)})

    def total(s):
        student = Outputs(torch.zeros(n, K, dtype=torch.float64), {"s": s})
        return sum(method.losses(student, teacher, batch).values())

    return method, total, teacher, batch


def at_map(x: np.ndarray) -> np.ndarray:
    """attention-transfer cifar.py at(x): normalize(x.pow(2).mean(1).view(N, -1)), one sample."""
    return unit(np.array([[sum(x[c, h, w] ** 2 for c in range(x.shape[0])) / x.shape[0]
                           for w in range(x.shape[2])] for h in range(x.shape[1])]).ravel())


def test_at_is_beta_times_the_official_at_loss():
    """attention-transfer: distillation(...) + beta * sum(at_loss(x, y)), at_loss = mean((at(x) - at(y))^2)."""
    s0, t0 = RNG.normal(size=(3, 2, 4, 4)), RNG.normal(size=(3, 5, 4, 4))
    _, total, _, _ = feature_total("at", {"student_layer": "s", "teacher_layer": "t"}, t0, n=3)

    def reference(s):
        diffs = [(at_map(s[n]) - at_map(t0[n])) ** 2 for n in range(3)]
        return 1000.0 * np.mean(diffs)

    check(total, reference, s0, rel=1e-6, grad_atol=1e-5)


def test_at_pools_the_larger_map_as_repdistiller():
    """RepDistiller AT.py: adaptive_avg_pool2d of the larger map to the smaller, then at_loss."""
    s0, t0 = RNG.normal(size=(2, 3, 4, 4)), RNG.normal(size=(2, 6, 2, 2))
    _, total, _, _ = feature_total("at", {"student_layer": "s", "teacher_layer": "t", "beta": 10.0}, t0, n=2)

    def pooled(x):  # 4x4 -> 2x2 by 2x2 block means
        return np.array([[[x[c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean() for j in range(2)] for i in range(2)]
                         for c in range(x.shape[0])])

    def reference(s):
        return 10.0 * np.mean([(at_map(pooled(s[n])) - at_map(t0[n])) ** 2 for n in range(2)])

    check(total, reference, s0)


def test_sp_is_repdistillers_similarity_loss():
    """RepDistiller SP.py: G = normalize(f f^T) per row; sum((G_t - G_s)^2) / bsz^2; gamma 3000."""
    s0, t0 = RNG.normal(size=(4, 2, 2, 2)), RNG.normal(size=(4, 5))
    _, total, _, _ = feature_total("sp", {"student_layer": "s", "teacher_layer": "t"}, t0, n=4)

    def gram(x):
        f = x.reshape(4, -1)
        return np.array([unit(np.array([f[i] @ f[j] for j in range(4)])) for i in range(4)])

    check(total, lambda s: 3000.0 * np.sum((gram(t0) - gram(s)) ** 2) / 16, s0)


def rkd_reference(s: np.ndarray, t: np.ndarray, w_d=25.0, w_a=50.0) -> float:
    """lenscloth/RKD metric/loss.py (= RepDistiller RKD.py): every N^2 and N^3 entry, diagonal included."""
    n = len(s)

    def pdist(e):
        d = np.zeros((n, n))
        for i, j in itertools.product(range(n), repeat=2):
            if i != j:
                d[i, j] = np.sqrt(max(e[i] @ e[i] + e[j] @ e[j] - 2 * e[i] @ e[j], 1e-12))
        return d / d[d > 0].mean()

    d_s, d_t = pdist(s), pdist(t)
    distance = np.mean([huber(d_s[i, j] - d_t[i, j]) for i, j in itertools.product(range(n), repeat=2)])
    angles = []
    for j, i, k in itertools.product(range(n), repeat=3):  # angle at j; i == j or k == j give zero vectors
        cos_s = unit(s[i] - s[j]) @ unit(s[k] - s[j])
        cos_t = unit(t[i] - t[j]) @ unit(t[k] - t[j])
        angles.append(huber(cos_s - cos_t))
    return w_d * distance + w_a * np.mean(angles)


def test_rkd_averages_over_all_entries_as_the_official_code():
    s0, t0 = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 6))
    _, total, _, _ = feature_total("rkd", {"student_layer": "s", "teacher_layer": "t"}, t0, n=4)
    check(total, lambda s: rkd_reference(s, t0), s0, rel=1e-5, grad_atol=1e-4)


@pytest.mark.parametrize("case", ["offset", "equal rows", "zero rows"])
def test_rkd_angles_from_the_gram_matrix_equal_the_official_unit_vectors(case):
    """distill computes RKD-A's cosines from the Gram matrix (N^2 D + N^3 work, not N^3 D): it must give
    the official normalised-difference cosines, also where differences cancel or vanish."""
    from distill.methods.rkd import angle_potential

    x = RNG.normal(size=(6, 40))
    if case == "offset":  # large common part, small differences: the Gram entries nearly cancel
        x = 100.0 + 0.01 * x
    elif case == "equal rows":
        x[3] = x[1]
    else:
        x[2] = x[4] = 0.0
    x = x.astype(np.float32).astype(np.float64)  # what a float32 feature holds
    n = len(x)
    expected = np.zeros((n, n, n))
    for j, i, k in itertools.product(range(n), repeat=3):
        expected[j, i, k] = unit(x[i] - x[j]) @ unit(x[k] - x[j])
    got = angle_potential(torch.tensor(x, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_rkd_distinct_entries_variant():
    s0, t0 = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 6))
    pairs = [(i, j) for i in range(4) for j in range(4) if i != j]

    def reference(s):
        def dist(x):
            d = {p: np.linalg.norm(x[p[0]] - x[p[1]]) for p in pairs}
            mu = np.mean(list(d.values()))
            return {p: v / mu for p, v in d.items()}

        d_s, d_t = dist(s), dist(t0)
        distance = np.mean([huber(d_s[p] - d_t[p]) for p in pairs])
        angle = np.mean([huber(unit(s[i] - s[j]) @ unit(s[k] - s[j]) - unit(t0[i] - t0[j]) @ unit(t0[k] - t0[j]))
                         for i, j, k in itertools.permutations(range(4), 3)])
        return 25 * distance + 50 * angle

    _, total, _, _ = feature_total("rkd", {"student_layer": "s", "teacher_layer": "t", "entries": "distinct"}, t0, n=4)
    check(total, reference, s0, rel=1e-5, grad_atol=1e-4)


def pkt_reference(s: np.ndarray, t: np.ndarray, weight=30000.0, eps=1e-7) -> float:
    """passalis/probabilistic_kt nn/pkt.py cosine_similarity_loss: kernel with its diagonal, mean over N^2."""
    n = len(s)

    def probabilities(x):
        q = np.array([row / (np.sqrt(np.sum(row**2)) + eps) for row in x])
        kernel = np.array([[(q[i] @ q[j] + 1) / 2 for j in range(n)] for i in range(n)])
        return kernel / kernel.sum(1, keepdims=True)

    p_s, p_t = probabilities(s), probabilities(t)
    return weight * np.mean([[p_t[i, j] * np.log((p_t[i, j] + eps) / (p_s[i, j] + eps)) for j in range(n)]
                             for i in range(n)])


def test_pkt_is_the_official_cosine_similarity_loss():
    s0, t0 = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 6))
    _, total, _, _ = feature_total("pkt", {"student_layer": "s", "teacher_layer": "t"}, t0, n=4)
    check(total, lambda s: pkt_reference(s, t0), s0, rel=1e-5, grad_atol=1e-3)


def test_fitnets_is_the_mse_of_repdistillers_regressed_hint():
    """RepDistiller FitNet.py HintLoss: nn.MSELoss()(ConvReg(f_s), f_t), weight 100 (-b 100); ConvReg of equal
    sizes is a 1x1 convolution, BatchNorm (training mode: batch statistics) and ReLU."""
    s0, t0 = RNG.normal(size=(2, 3, 2, 2)), RNG.normal(size=(2, 4, 2, 2))
    method, total, teacher, _ = feature_total("fitnets", {"student_layer": "s", "teacher_layer": "t"}, t0, n=2)
    method.setup(Outputs(torch.zeros(2, K), {"s": torch.tensor(s0)}), teacher)
    method.double()
    conv = method.regressors[0][0]
    w, b = conv.weight.detach().numpy()[:, :, 0, 0], conv.bias.detach().numpy()

    def reference(s):
        out = np.array([[[[w[o] @ s[n, :, h, x] + b[o] for x in range(2)] for h in range(2)] for o in range(4)]
                        for n in range(2)])
        for o in range(4):  # BatchNorm2d in training mode (weight 1, bias 0 at init), then ReLU
            mean, var = out[:, o].mean(), out[:, o].var()
            out[:, o] = np.maximum((out[:, o] - mean) / np.sqrt(var + 1e-5), 0.0)
        return 100.0 * np.mean((out - t0) ** 2)

    check(total, reference, s0)


def test_crd_is_the_documented_infonce_variant_with_the_papers_queue():
    """Not the official NCE loss (see the docstring): InfoNCE over the batch and FIFO queues, both directions."""
    assert build_method("crd").queue_s.shape == (16384, 128)  # RepDistiller: nce_k 16384, feat_dim 128
    s0, t0 = RNG.normal(size=(3, 6)), RNG.normal(size=(3, 4))
    method, total, teacher, _ = feature_total("crd", {"student_layer": "s", "teacher_layer": "t", "queue_size": 4,
                                                      "feat_dim": 5}, t0, n=3)
    method.setup(Outputs(torch.zeros(3, K), {"s": torch.tensor(s0).float()}), teacher)
    method.double().eval()  # eval: the queue is not filled, so each call sees the same (empty) queue
    ws, bs = method.embed_s.weight.detach().numpy(), method.embed_s.bias.detach().numpy()
    wt, bt = method.embed_t.weight.detach().numpy(), method.embed_t.bias.detach().numpy()

    def reference(s):
        z_s = [unit(ws @ row + bs) for row in s]
        z_t = [unit(wt @ row + bt) for row in t0]

        def direction(anchors, positives):
            total = 0.0
            for i, a in enumerate(anchors):
                scores = np.array([a @ p for p in positives]) / 0.07
                total += -scores[i] + np.log(np.exp(scores).sum())
            return total / len(anchors)

        return 0.8 * (direction(z_s, z_t) + direction(z_t, z_s))

    check(total, reference, s0, rel=1e-6, grad_atol=1e-5)


def test_crd_memory_bank_is_repdistillers_contrast_memory_and_nce_loss():
    """RepDistiller crd/memory.py ContrastMemory + crd/criterion.py ContrastLoss, for fixed contrast indices:
    out = exp(<bank[idx], anchor> / T) / Z with Z = mean * n_data set once; P_n = 1 / n_data;
    loss = -(sum log(P_pos / (P_pos + K P_n + eps)) + sum log(K P_n / (P_neg + K P_n + eps))) / B."""
    n_data, k, dim, temp, eps = 10, 3, 4, 0.07, 1e-7
    s0, t0 = RNG.normal(size=(3, 6)), RNG.normal(size=(3, 5))
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    options = {"student_layer": "s", "teacher_layer": "t", "queue_size": k, "feat_dim": dim,
               "negatives": "memory_bank"}
    method, _, teacher, _ = feature_total("crd", options, t0, n=3)
    method.setup(Outputs(torch.zeros(3, K), {"s": torch.tensor(s0).float()}), teacher)
    method.setup_data(labels)
    method.double()
    bank_s, bank_t = method.memory_s.numpy().copy(), method.memory_t.numpy().copy()
    index, idx = np.array([4, 0, 7]), np.array([[4, 0, 2, 9], [0, 1, 5, 8], [7, 2, 3, 6]])
    method.contrast_indices = lambda index_, targets_: torch.tensor(idx)
    ws, bs = method.embed_s.weight.detach().numpy(), method.embed_s.bias.detach().numpy()
    wt, bt = method.embed_t.weight.detach().numpy(), method.embed_t.bias.detach().numpy()
    z_t = [unit(wt @ row + bt) for row in t0]

    def scores(bank, anchors):
        return np.array([[np.exp(bank[j] @ anchors[b] / temp) for j in idx[b]] for b in range(3)])

    def contrast_loss(x):
        m, pn = x.shape[1] - 1, 1 / n_data
        d1 = sum(np.log(x[b, 0] / (x[b, 0] + m * pn + eps)) for b in range(len(x)))
        d0 = sum(np.log(m * pn / (x[b, j] + m * pn + eps)) for b in range(len(x)) for j in range(1, m + 1))
        return -(d1 + d0) / len(x)

    out_t = scores(bank_s, z_t)  # the teacher anchors against the student bank
    z_const_t = out_t.mean() * n_data

    def reference(s):
        z_s = [unit(ws @ row + bs) for row in s]
        out_s = scores(bank_t, z_s)  # the student anchors against the teacher bank
        return 0.8 * (contrast_loss(out_s / reference.z_s) + contrast_loss(out_t / z_const_t))

    reference.z_s = scores(bank_t, [unit(ws @ row + bs) for row in s0]).mean() * n_data  # Z: set on the first batch
    batch = Batch(torch.zeros(3, 1), torch.tensor([0, 1, 2]), index=torch.tensor(index))
    method.eval()  # no memory update inside the gradient check; Z stays fixed after the first call

    def total(s):
        student = Outputs(torch.zeros(3, K, dtype=torch.float64), {"s": s})
        return sum(method.losses(student, teacher, batch).values())

    check(total, reference, s0, rel=1e-6, grad_atol=1e-5)
    method.train()  # a training step refreshes the bank rows of the batch with momentum 0.5
    total(torch.tensor(s0))
    z_s = np.array([unit(ws @ row + bs) for row in s0])
    for b, i in enumerate(index):
        assert np.allclose(method.memory_s[i].numpy(), unit(0.5 * bank_s[i] + 0.5 * z_s[b]))
        assert np.allclose(method.memory_t[i].numpy(), unit(0.5 * bank_t[i] + 0.5 * z_t[b]))


def test_crd_memory_bank_draws_negatives_from_other_classes_without_replacement():
    from distill.methods.crd_memory import contrast_indices

    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, -1])
    idx = contrast_indices(torch.tensor([0, 4, 9]), torch.tensor([0, 1, -1]), labels, k=5)
    assert idx[:, 0].tolist() == [0, 4, 9]
    for row, label in ((0, 0), (1, 1)):
        assert all(int(labels[j]) != label for j in idx[row, 1:]) and len(set(idx[row, 1:].tolist())) == 5
    assert 9 not in idx[2, 1:].tolist()  # an unlabelled row draws from every other sample


def test_tinybert_is_the_official_mse_and_soft_cross_entropy():
    """TinyBERT task_distill.py: MSE of attention scores and (projected) hidden states; soft_cross_entropy
    = (-softmax(t/T) * log_softmax(s/T)).sum(-1).mean(), no T^2."""
    temp = 2.0
    hidden_t, att_t = RNG.normal(size=(N, 3, 4)), RNG.normal(size=(N, 2, 3, 3))
    hidden_s, att_s = RNG.normal(size=(N, 3, 4)), RNG.normal(size=(N, 2, 3, 3))
    method = build_method("tinybert", {"layers": [[1, 1]], "temperature": temp, "hidden_weight": 0.5,
                                       "attention_weight": 2.0, "alpha": 0.7})
    teacher = Outputs(torch.tensor(T_LOGITS), {"hidden.1": torch.tensor(hidden_t), "attention.1": torch.tensor(att_t)})
    batch = Batch(torch.zeros(N, 1), torch.tensor(Y))

    def total(s):
        student = Outputs(s, {"hidden.1": torch.tensor(hidden_s), "attention.1": torch.tensor(att_s)})
        return sum(method.losses(student, teacher, batch).values())

    def reference(s):
        soft = np.mean([-sum(softmax(T_LOGITS[i] / temp) * log_softmax(s[i] / temp)) for i in range(N)])
        return 0.5 * np.mean((hidden_s - hidden_t) ** 2) + 2.0 * np.mean((att_s - att_t) ** 2) + 0.7 * soft

    check(total, reference, S_LOGITS)
    assert build_method("tinybert").label_weight == 0.0


@pytest.mark.parametrize("name,distance", [("mse_kd", lambda d: d**2), ("mae_kd", np.abs)])
def test_regression_kd_is_the_distance_to_the_teachers_predictions(name, distance):
    s0, t0 = RNG.normal(size=(N, 2)), RNG.normal(size=(N, 2))
    method = build_method(name, {"alpha": 0.3})
    batch = Batch(torch.zeros(N, 1), torch.tensor(RNG.normal(size=(N, 2))))
    check(lambda s: sum(method.losses(Outputs(s), Outputs(torch.tensor(t0)), batch).values()),
          lambda s: 0.3 * np.mean(distance(s - t0)), s0)


# -- defaults that define each method's recipe --------------------------------------------------
@pytest.mark.parametrize("name,label_weight", [
    ("kd", 0.1), ("dkd", 1.0), ("lskd", 0.1), ("dist", 1.0), ("tfkd", 0.9), ("at", 1.0), ("sp", 1.0),
    ("rkd", 1.0), ("pkt", 1.0), ("fitnets", 1.0), ("crd", 1.0), ("dml", 1.0), ("tinybert", 0.0),
    ("mse_kd", 0.5), ("supervised", 1.0)])
def test_each_method_declares_its_recipes_label_weight(name, label_weight):
    from distill.methods import METHODS

    assert METHODS.get(name).label_weight == pytest.approx(label_weight)


# -- the trainer's one label term ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["kd", "dkd", "dist", "lskd", "tfkd"])
def test_every_logit_method_trains_on_a_transfer_set_with_one_masked_label_term(name):
    """Rows with target -1 (unlabelled) get no label loss; the label term is CE over the labelled rows."""
    from distill.config.schema import TrainConfig
    from distill.train.trainer import Trainer

    method = build_method(name)
    targets = np.array([0, -1, 2, -1, 1])
    trainer = Trainer("student", torch.nn.Identity(), TrainConfig(), method,
                            teacher=(lambda b: Outputs(torch.tensor(T_LOGITS))) if method.needs().teacher else None)
    x = torch.tensor(S_LOGITS, requires_grad=True)  # the identity "model" returns its input as the logits
    losses = trainer._step(Batch(x, torch.tensor(targets)))
    assert [k for k in losses if k == "label" or "hard" in k] == ["label"]
    keep = targets >= 0
    ce = np.mean([-log_softmax(S_LOGITS[i])[targets[i]] for i in np.flatnonzero(keep)])
    assert losses["label"].item() == pytest.approx(method.label_weight * ce, rel=1e-6)
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(x.grad).all()


def test_supervised_is_the_trainers_label_term_alone_with_label_smoothing():
    """cross_entropy(label_smoothing=e): (1 - e) * -log p_y + e * mean_k -log p_k, over the labelled rows."""
    from distill.config.schema import TrainConfig
    from distill.train.trainer import Trainer

    method = build_method("supervised", {"label_smoothing": 0.2})
    targets = np.array([0, -1, 2, 3, 1])
    trainer = Trainer("baseline", torch.nn.Identity(), TrainConfig(), method)
    assert method.losses(Outputs(torch.tensor(S_LOGITS)), None, Batch(torch.zeros(N, 1), torch.tensor(targets))) == {}

    def reference(s):
        rows = [i for i in range(N) if targets[i] >= 0]
        return np.mean([0.8 * -log_softmax(s[i])[targets[i]] + 0.2 * np.mean(-log_softmax(s[i])) for i in rows])

    check(lambda s: sum(trainer._step(Batch(s, torch.tensor(targets))).values()), reference, S_LOGITS)


@pytest.mark.parametrize("loss,distance", [("mse", lambda d: d**2), ("l1", np.abs)])
def test_supervised_regression_is_the_trainers_label_term_on_rows_with_a_target(loss, distance):
    from distill.config.schema import TrainConfig
    from distill.train.trainer import Trainer

    targets = RNG.normal(size=(N, 2))
    targets[1, 0] = np.nan  # a row without a target is masked
    keep = ~np.isnan(targets).any(1)
    trainer = Trainer("baseline", torch.nn.Identity(), TrainConfig(),
                            build_method("supervised_regression", {"loss": loss}), task="regression")
    check(lambda s: sum(trainer._step(Batch(s, torch.tensor(targets))).values()),
          lambda s: np.mean(distance(s[keep] - targets[keep])), RNG.normal(size=(N, 2)))


# -- token divergences for causal language models -----------------------------------------------
# A batch of B sequences of T positions over a vocabulary of V, labels -100 where no loss is taken;
# distill's methods see the (N, V) rows of the loss positions, flattened row-major.
LM_B, LM_T, LM_V = 2, 4, 6
LM_S = RNG.normal(size=(LM_B, LM_T, LM_V)) * 2
LM_T_LOGITS = RNG.normal(size=(LM_B, LM_T, LM_V)) * 2
LM_LABELS = np.array([[-100, 3, 1, -100], [2, 5, -100, -100]])
LM_MASK = LM_LABELS != -100
TOKEN_METHODS = {"forward_kl": {}, "reverse_kl": {}, "gkd": {"beta": 0.3}, "skew_forward_kl": {"alpha": 0.1},
                 "skew_reverse_kl": {"alpha": 0.1}, "tvd": {}}


def token_total(name: str, options: dict | None = None, teacher: Outputs | None = None):
    """The method's summed terms as a function of the (B, T, V) student logits (the loss rows picked inside)."""
    method = build_method(name, options)
    mask = torch.tensor(LM_MASK)
    teacher = teacher or Outputs(torch.tensor(LM_T_LOGITS)[mask])
    batch = Batch(torch.zeros(LM_B, LM_T, dtype=torch.long), torch.tensor(LM_LABELS))
    return lambda s: sum(method.losses(Outputs(s[mask]), teacher, batch).values())


def trl_generalized_jsd_loss(student_logits, teacher_logits, labels=None, beta=0.5, temperature=1.0):
    """TRL 1.x trl/experimental/gkd/gkd_trainer.py GKDTrainer.generalized_jsd_loss, reduction batchmean,
    transcribed op for op (torch: it is the authors' torch code)."""
    f = torch.nn.functional
    student_logits = student_logits / temperature
    teacher_logits = teacher_logits / temperature
    student_log_probs = f.log_softmax(student_logits, dim=-1)
    teacher_log_probs = f.log_softmax(teacher_logits, dim=-1)
    if beta == 0:
        jsd = f.kl_div(student_log_probs, teacher_log_probs, reduction="none", log_target=True)
    elif beta == 1:
        jsd = f.kl_div(teacher_log_probs, student_log_probs, reduction="none", log_target=True)
    else:
        beta = torch.tensor(beta, dtype=student_log_probs.dtype)
        mixture_log_probs = torch.logsumexp(
            torch.stack([student_log_probs + torch.log1p(-beta), teacher_log_probs + torch.log(beta)]), dim=0)
        kl_teacher = f.kl_div(mixture_log_probs, teacher_log_probs, reduction="none", log_target=True)
        kl_student = f.kl_div(mixture_log_probs, student_log_probs, reduction="none", log_target=True)
        jsd = beta * kl_teacher + (1 - beta) * kl_student
    if labels is not None:
        mask = labels != -100
        jsd = jsd[mask]
    denom = mask.sum().clamp_min(1) if labels is not None else max(jsd.size(0), 1)
    return jsd.sum() / denom


@pytest.mark.parametrize("beta,temperature", list(itertools.product([0.0, 0.2, 0.5, 1.0], [1.0, 2.0])))
def test_gkd_is_trls_generalized_jsd_loss_on_the_masked_tokens(beta, temperature):
    """TRL computes over (B, T, V) and masks labels == -100; distill gets the loss rows alone: equal value
    and equal gradient on every student logit (zero at the masked positions)."""
    name, options = {0.0: ("forward_kl", {}), 1.0: ("reverse_kl", {})}.get(beta, ("gkd", {"beta": beta}))
    for method, opts in ((name, options), ("gkd", {"beta": beta})):
        ours = torch.tensor(LM_S, requires_grad=True)
        theirs = torch.tensor(LM_S, requires_grad=True)
        value = token_total(method, {**opts, "temperature": temperature})(ours)
        expected = trl_generalized_jsd_loss(theirs, torch.tensor(LM_T_LOGITS), torch.tensor(LM_LABELS), beta,
                                            temperature)
        value.backward()
        expected.backward()
        assert value.item() == pytest.approx(expected.item(), rel=1e-10)
        assert torch.allclose(ours.grad, theirs.grad, rtol=1e-8, atol=1e-12)
        assert (ours.grad[torch.tensor(~LM_MASK)] == 0).all()


def distillm_rows(s: np.ndarray, t: np.ndarray, per_row) -> float:
    """DistiLLM distillm/losses.py's reduction: sum(x * mask) / sum(mask) over the flattened positions."""
    x = np.array([per_row(softmax(s[b, i]), log_softmax(s[b, i]), softmax(t[b, i]), log_softmax(t[b, i]))
                  for b in range(LM_B) for i in range(LM_T)])
    mask = LM_MASK.reshape(-1).astype(float)
    return float((x * mask).sum() / mask.sum())


def distillm_skewed_forward_kl(s, t, lam=0.1):
    """losses.py skewed_forward_kl: mixed = lam p_t + (1 - lam) p_s; -sum p_t log(mixed)."""
    return -distillm_rows(s, t, lambda ps, lps, pt, lpt: sum(pt[v] * np.log(lam * pt[v] + (1 - lam) * ps[v])
                                                             for v in range(LM_V)))


def distillm_skewed_reverse_kl(s, t, lam=0.1):
    """losses.py skewed_reverse_kl: mixed = (1 - lam) p_t + lam p_s; -sum (p_s log mixed - p_s log p_s)."""
    return -distillm_rows(s, t, lambda ps, lps, pt, lpt: sum(ps[v] * np.log((1 - lam) * pt[v] + lam * ps[v])
                                                             - ps[v] * lps[v] for v in range(LM_V)))


def distillm_tv_distance(s, t):
    """losses.py tv_distance: sum 0.5 |p_t - p_s|."""
    return distillm_rows(s, t, lambda ps, lps, pt, lpt: sum(0.5 * abs(pt[v] - ps[v]) for v in range(LM_V)))


def teacher_entropy(t):
    return -distillm_rows(t, t, lambda ps, lps, pt, lpt: sum(pt[v] * lpt[v] for v in range(LM_V)))


@pytest.mark.parametrize("alpha", [0.1, 0.5])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_skew_kls_and_tvd_are_distillms_losses(alpha, temperature):
    """DistiLLM's skewed_forward_kl returns the cross-entropy -sum p log m: distill's value is that minus the
    teacher's entropy (a constant, so the gradient is DistiLLM's). DistiLLM has no temperature: distill
    divides both logits by T before its formula."""
    t = LM_T_LOGITS / temperature
    check(token_total("skew_forward_kl", {"alpha": alpha, "temperature": temperature}),
          lambda s: distillm_skewed_forward_kl(s / temperature, t, alpha) - teacher_entropy(t), LM_S)
    check(token_total("skew_reverse_kl", {"alpha": alpha, "temperature": temperature}),
          lambda s: distillm_skewed_reverse_kl(s / temperature, t, alpha), LM_S)
    check(token_total("tvd", {"temperature": temperature}), lambda s: distillm_tv_distance(s / temperature, t),
          LM_S, grad_atol=1e-5)


def test_skew_kls_at_alpha_0_are_the_plain_kls():
    for skew, plain in (("skew_forward_kl", "forward_kl"), ("skew_reverse_kl", "reverse_kl")):
        s = torch.tensor(LM_S)
        assert token_total(skew, {"alpha": 0.0})(s).item() == pytest.approx(token_total(plain)(s).item(), rel=1e-12)


# -- the same divergences against a top-k teacher (k tokens + one tail bucket) ----------------------
def hand_topk(k: int, temperature: float = 1.0):
    """The teacher's k most likely tokens per loss row and the exact tail, computed here in float64."""
    from distill.types import TokenTopK

    rows = LM_T_LOGITS[LM_MASK] / temperature
    idx = np.argsort(-rows, axis=1, kind="stable")[:, :k]
    logp = np.stack([log_softmax(r) for r in rows])
    top = np.take_along_axis(logp, idx, 1)
    rest = 1 - np.exp(top).sum(1)
    tail = np.log(rest) if k < LM_V else np.full(len(rows), -np.inf)
    return idx, TokenTopK(torch.tensor(idx), torch.tensor(top), torch.tensor(tail), temperature)


def bucket_divergence(name: str, options: dict, q: np.ndarray, p: np.ndarray) -> float:
    """The divergence between two distributions on the same buckets, straight from the formulas."""
    def kl_(a, b):
        return sum(a[i] * (np.log(a[i]) - np.log(b[i])) for i in range(len(a)) if a[i] > 0)

    if name == "forward_kl":
        return kl_(p, q)
    if name == "reverse_kl":
        return kl_(q, p)
    if name == "gkd":
        beta = options["beta"]
        m = beta * p + (1 - beta) * q
        return beta * kl_(p, m) + (1 - beta) * kl_(q, m)
    if name == "skew_forward_kl":
        return kl_(p, options["alpha"] * p + (1 - options["alpha"]) * q)
    if name == "skew_reverse_kl":
        return kl_(q, options["alpha"] * q + (1 - options["alpha"]) * p)
    return 0.5 * np.abs(p - q).sum()


@pytest.mark.parametrize("name", TOKEN_METHODS)
def test_top_k_teacher_with_every_token_is_the_full_teacher(name):
    """k = V: the k + 1 buckets are the vocabulary (reordered) plus an empty tail: same value, same gradient."""
    _, topk = hand_topk(LM_V, temperature=2.0)
    options = {**TOKEN_METHODS[name], "temperature": 2.0}
    full, cached = torch.tensor(LM_S, requires_grad=True), torch.tensor(LM_S, requires_grad=True)
    value_full = token_total(name, options)(full)
    value_cached = token_total(name, options, teacher=Outputs(None, topk=topk))(cached)
    value_full.backward()
    value_cached.backward()
    assert torch.isfinite(value_cached) and torch.isfinite(cached.grad).all()
    assert value_cached.item() == pytest.approx(value_full.item(), rel=1e-10, abs=1e-14)
    assert torch.allclose(cached.grad, full.grad, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("name", TOKEN_METHODS)
@pytest.mark.parametrize("k", [1, 2])
def test_top_k_teacher_compares_k_plus_one_buckets(name, k):
    """Small k: the divergence between [p_top-k..., 1 - sum] and the student's [q at those tokens..., 1 - sum]."""
    idx, topk = hand_topk(k)
    options = TOKEN_METHODS[name]
    teacher_rows = LM_T_LOGITS[LM_MASK]

    def reference(s):
        values = []
        for r, srow in enumerate(s[LM_MASK]):
            p, q = softmax(teacher_rows[r]), softmax(srow)
            p_b = np.append(p[idx[r]], 1 - p[idx[r]].sum())
            q_b = np.append(q[idx[r]], 1 - q[idx[r]].sum())
            values.append(bucket_divergence(name, options, q_b, p_b))
        return float(np.mean(values))

    check(token_total(name, options, teacher=Outputs(None, topk=topk)), reference, LM_S, grad_atol=1e-5)


def test_top_k_teacher_at_another_temperature_is_refused_in_one_line():
    from distill.errors import ConfigError

    _, topk = hand_topk(2, temperature=1.0)
    with pytest.raises(ConfigError, match="temperature is 2 but the teacher's top-k cache holds .* temperature 1"):
        token_total("forward_kl", {"temperature": 2.0}, teacher=Outputs(None, topk=topk))(torch.tensor(LM_S))
