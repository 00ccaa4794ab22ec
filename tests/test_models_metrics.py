import pytest
import torch

from distill.errors import ConfigError
from distill.evaluate.metrics import classification_metrics
from distill.models import MODELS, build_model, count_parameters


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet8", "resnet14", "resnet20", "resnet32"])
@pytest.mark.parametrize("channels", [1, 3])
def test_zoo_shapes(name, channels):
    model = build_model(name, (channels, 28, 28), 10)
    assert model(torch.randn(3, channels, 28, 28)).shape == (3, 10)


def test_resnet_depth_and_width():
    assert count_parameters(build_model("resnet32", (1, 28, 28), 10)) > count_parameters(
        build_model("resnet20", (1, 28, 28), 10))
    assert count_parameters(build_model("resnet", (1, 28, 28), 10, depth=8, width=2.0)) > count_parameters(
        build_model("resnet8", (1, 28, 28), 10))
    with pytest.raises(ConfigError, match="6n\\+2"):  # declared in the signature, checked before building
        build_model("resnet", (1, 28, 28), 10, depth=10)


@pytest.mark.parametrize("size", [28, 32])
def test_cnn_flatten_head_sees_the_whole_last_feature_map(size):
    model = build_model("cnn", (3, size, size), 10, channels=[4, 8, 16], flatten=True, hidden=5)
    assert model(torch.randn(2, 3, size, size)).shape == (2, 10)
    spatial = (size // 4) ** 2  # two 2x2 max-pools
    assert model.head[1].in_features == 16 * spatial
    pooled = build_model("cnn", (3, size, size), 10, channels=[4, 8, 16], hidden=5)
    assert count_parameters(model) - count_parameters(pooled) == 16 * (spatial - 1) * 5


def test_unknown_model_and_option():
    with pytest.raises(KeyError, match="unknown model 'resnt20' \\(did you mean 'resnet20'\\?\\)"):
        build_model("resnt20", (1, 28, 28), 10)
    with pytest.raises(ConfigError, match="model 'mlp' has no option 'hiden'"):
        build_model("mlp", (1, 28, 28), 10, hiden=[3])
    assert "cnn" in MODELS


def test_metrics_against_hand_values():
    # 4 samples, 2 classes; predictions: 0, 1, 1, 0; targets: 0, 1, 0, 0 -> accuracy 3/4.
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
    targets = torch.tensor([0, 1, 0, 0])
    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # agrees on samples 0 and 1
    m = classification_metrics(logits, targets, 2, teacher)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["per_class_accuracy"] == pytest.approx([2 / 3, 1.0])
    assert m["agreement"] == pytest.approx(0.5)
    assert m["confusion_matrix"] == [[2, 1], [0, 1]]
    probs = logits.softmax(-1)
    ce = -sum(torch.log(probs[i, targets[i]]) for i in range(4)) / 4
    assert m["cross_entropy"] == pytest.approx(float(ce), rel=1e-5)
    # ECE by hand: 15 equal-width confidence bins, sum of |accuracy - confidence| weighted by bin size.
    conf = probs.max(-1).values.tolist()
    correct = [1.0, 1.0, 0.0, 1.0]
    bins: dict[int, list[int]] = {}
    for i, c in enumerate(conf):
        bins.setdefault(min(14, int(c * 15)), []).append(i)
    assert len(bins) == 3  # samples 0 and 1 share a bin, so the weighting matters
    ece = sum(abs(sum(correct[i] for i in idx) / len(idx) - sum(conf[i] for i in idx) / len(idx)) * len(idx) / 4
              for idx in bins.values())
    assert m["ece"] == pytest.approx(ece, rel=1e-4)
    assert sum(b["count"] for b in m["reliability"]) == 4
