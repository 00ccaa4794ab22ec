"""Small models for small images: MLP, plain CNN and CIFAR-style ResNets (He et al. 2016)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

from pydantic import Field
from torch import Tensor, nn

from distill.models.registry import register_model
from distill.options import Count, Probability, Size, Sizes, check

# Declared constraints (see distill/options.py): checked before a model is built.
Depth = Annotated[int, check(lambda d: d >= 8 and (d - 2) % 6 == 0, "resnet depth must be 6n+2 (8, 14, 20, 32, ...)")]
Width = Annotated[float, Field(gt=0, le=64, description="channel multiplier")]


@register_model("mlp")
def mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: Sequence[Size] = (256, 128),
    dropout: Probability = 0.0,
) -> nn.Module:
    """Multi-layer perceptron on the flattened input: Linear+ReLU per hidden width, then a linear head."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class CNN(nn.Module):
    """Stages of ``convs_per_stage`` 3x3 conv-BN-ReLU, max-pooled between stages, then a linear head.

    The head sees the globally average-pooled features, or with ``flatten`` the whole last feature
    map: more parameters, but on 28x28 images it keeps where things are, which is worth about two
    points of Fashion-MNIST accuracy for a teacher at little extra compute.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: Sequence[int], convs_per_stage: int,
                 hidden: int, dropout: float, flatten: bool = False, image_size: tuple[int, int] = (28, 28)):
        super().__init__()
        stages = []
        cin = in_channels
        for i, cout in enumerate(channels):
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if i > 0 else []
            for _ in range(convs_per_stage):
                layers += _conv_bn_relu(cin, cout)
                cin = cout
            stages.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*stages)
        self.pool: nn.Module = nn.AdaptiveAvgPool2d(1)
        if flatten:
            self.pool = nn.Identity()
            height, width = image_size
            for _ in channels[1:]:
                height, width = height // 2, width // 2
            cin *= height * width
        head: list[nn.Module] = [nn.Flatten()]
        if hidden:
            head += [nn.Linear(cin, hidden), nn.ReLU(inplace=True)]
            cin = hidden
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(cin, num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.features(x)))


@register_model("cnn")
def cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: Sizes = (32, 64, 128),
    convs_per_stage: Annotated[int, Field(ge=1, le=64)] = 1,
    hidden: Count = 0,
    dropout: Probability = 0.0,
    flatten: bool = False,
) -> nn.Module:
    """Plain CNN: stages of 3x3 conv-BN-ReLU, max-pooled between stages, then a linear head."""
    image_size = tuple(input_shape[1:3]) if len(input_shape) == 3 else (28, 28)
    return CNN(input_shape[0], num_classes, channels, convs_per_stage, hidden, dropout, flatten, image_size)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet: depth = 6n + 2, three stages (``layer1..3``) of n basic blocks."""

    def __init__(self, in_channels: int, num_classes: int, depth: int, width: float, base: int = 16):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"resnet depth must be 6n+2 (8, 14, 20, 32, ...), got {depth}")
        n = (depth - 2) // 6
        widths = [max(1, round(base * width * m)) for m in (1, 2, 4)]
        self.stem = nn.Sequential(*_conv_bn_relu(in_channels, widths[0]))
        cin = widths[0]
        stages = []
        for i, w in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.pool(x).flatten(1))


@register_model("resnet")
def resnet(input_shape: tuple[int, ...], num_classes: int, depth: Depth = 20, width: Width = 1.0) -> nn.Module:
    """CIFAR-style ResNet (He et al. 2016) of any depth 6n+2."""
    return ResNet(input_shape[0], num_classes, depth, width)


def _named_resnet(depth: int):
    def factory(input_shape: tuple[int, ...], num_classes: int, width: Width = 1.0) -> nn.Module:
        return ResNet(input_shape[0], num_classes, depth, width)

    factory.__doc__ = f"ResNet-{depth} for small images."
    return factory


for _depth in (8, 14, 20, 32, 44, 56):
    register_model(f"resnet{_depth}")(_named_resnet(_depth))
