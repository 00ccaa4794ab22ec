"""Keyword-spotting models on log-mel spectrograms (input (1, mels, frames)).

- ``speech_cnn``: the teacher, a VGG-like CNN (two 3x3 conv-BN-ReLU per stage, max-pooled between
  stages, global average pool, dropout, linear head).
- ``ds_cnn``: the student, the depthwise-separable CNN of Zhang, Suda, Lai, Chandra 2017, "Hello
  Edge: Keyword Spotting on Microcontrollers": one strided full convolution, then blocks of a
  3x3 depthwise and a 1x1 pointwise convolution (each BN + ReLU), average pool, linear head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field
from torch import Tensor, nn

from distill.models.registry import register_model
from distill.models.zoo import CNN
from distill.options import Probability, Size, Sizes

# (height, width) of the first convolution's kernel or stride
Pair = Annotated[Sequence[Size], Field(min_length=2, max_length=2)]
Blocks = Annotated[int, Field(ge=1, le=64)]


@register_model("speech_cnn")
def speech_cnn(input_shape: tuple[int, ...], num_classes: int, channels: Sizes = (32, 64, 128),
               dropout: Probability = 0.2) -> nn.Module:
    """Keyword-spotting teacher: a VGG-like CNN over the log-mel image."""
    return CNN(input_shape[0], num_classes, channels, convs_per_stage=2, hidden=0, dropout=dropout)


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class DSCNN(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, channels: int, blocks: int,
                 first_kernel: tuple[int, int], first_stride: tuple[int, int], dropout: float):
        super().__init__()
        padding = (first_kernel[0] // 2, first_kernel[1] // 2)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, first_kernel, first_stride, padding, bias=False),
                                  *_bn_relu(channels))
        layers: list[nn.Module] = []
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False), *_bn_relu(channels),
                       nn.Conv2d(channels, channels, 1, bias=False), *_bn_relu(channels)]
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(self.pool(self.blocks(self.stem(x))).flatten(1)))


@register_model("ds_cnn")
def ds_cnn(input_shape: tuple[int, ...], num_classes: int, channels: Size = 32, blocks: Blocks = 3,
           first_kernel: Pair = (5, 3), first_stride: Pair = (2, 2), dropout: Probability = 0.0) -> nn.Module:
    """Keyword-spotting student: depthwise-separable CNN (Hello Edge, Zhang et al. 2017)."""
    if channels < 1 or blocks < 0:
        raise ValueError(f"ds_cnn needs channels >= 1 and blocks >= 0, got {channels}, {blocks}")
    return DSCNN(input_shape[0], num_classes, channels, blocks, tuple(first_kernel), tuple(first_stride), dropout)
