"""LeNet-5, the course's variant (ReLU and max pooling).

    input 32x32xC (28x28 is padded by 2 in the first convolution: same shapes)
    conv 5x5, 6   -> 28x28x6   -> ReLU -> max pool 2 -> 14x14x6
    conv 5x5, 16  -> 10x10x16  -> ReLU -> max pool 2 -> 5x5x16
    flatten 400 -> dense 120 -> ReLU -> dense 84 -> ReLU -> dense num_classes

61,706 parameters for one input channel and 10 classes.
"""
from __future__ import annotations

from .. import nn
from .registry import register


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 32):
        super().__init__()
        if input_size not in (28, 32):
            raise ValueError(f"LeNet-5 takes 28x28 or 32x32 images, received input_size={input_size}")
        self.input_size = input_size
        self.default_input_size = (input_size, input_size, in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2 if input_size == 28 else 0), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))

    def forward(self, x):
        if x.shape[1] != self.input_size or x.shape[2] != self.input_size:
            raise ValueError(f"LeNet5(input_size={self.input_size}) expects (N, {self.input_size}, "
                             f"{self.input_size}, C) images, received shape {tuple(x.shape)}")
        return self.classifier(self.features(x))


@register("lenet5")
def lenet5(num_classes: int = 10, in_channels: int = 1, input_size: int = 32):
    return LeNet5(num_classes, in_channels, input_size)
