"""Building blocks shared by the model families.

* :func:`conv_bn_act` -- ``Sequential(conv (no bias), batch norm, activation)``, the unit of
  MobileNet, EfficientNet and ResNet's projection shortcut (state-dict names ``0``, ``1``, ``2``).
* :func:`make_divisible` -- channel counts rounded to a multiple of 8 (MobileNet v2, EfficientNet).
"""
from __future__ import annotations

from .. import nn

__all__ = ["conv_bn_act", "make_divisible"]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` channels to the nearest multiple of ``divisor`` (at least ``min_value``,
    default ``divisor``), never more than 10% below ``v`` (torchvision / TF rule).

    >>> make_divisible(32 * 1.1)      # 35.2 -> 32
    """
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_bn_act(in_channels, out_channels, kernel_size, stride=1, depthwise=False, activation=nn.ReLU6,
                padding=None, bn_eps=1e-5, bn_momentum=0.1):
    """``Sequential(conv (no bias), BN, activation)``; ``depthwise=True`` uses one filter per channel
    (``out_channels`` must equal ``in_channels``); ``activation=None`` leaves it linear.
    ``padding`` defaults to ``(kernel_size - 1) // 2`` on every side.

    Parameters: ``k*k*in*out`` (``k*k*in`` depthwise) + ``2*out`` (BN's gamma and beta).
    """
    if padding is None:
        padding = (kernel_size - 1) // 2
    if depthwise:
        if out_channels != in_channels:
            raise ValueError(f"a depthwise convolution keeps the channels: received in_channels={in_channels}, "
                             f"out_channels={out_channels}")
        conv = nn.DepthwiseConv2d(in_channels, kernel_size, stride=stride, padding=padding, bias=False)
    else:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
    layers = [conv, nn.BatchNorm2d(out_channels, momentum=bn_momentum, eps=bn_eps)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)
