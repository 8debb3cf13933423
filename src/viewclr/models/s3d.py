"""S3D (Xie et al. 2018, "Rethinking Spatiotemporal Feature Learning"), the encoder of CoCLR and ViewCLR.

Separable 3D convolutions (a 1×k×k spatial convolution, then a k×1×1 temporal one) in an Inception layout. A
width multiplier scales every convolution's channels (1.0 = the paper's 8M-parameter network; 0.25 and 0.5 for CPU
presets). The module tree and parameter names follow torchvision's `s3d` (`features.<i>…`, `classifier.1…`), so at
width 1.0 torchvision's Kinetics-400 weights load with `strict=True` into `S3D(num_classes=400)`.

ViewCLR splits the encoder after Mixed_3c: `f1` = stem … Mixed_3c (`features[0:7]`, 480 channels at width 1,
T/2 × H/8 × W/8), `f2` = the rest (`features[7:]`, 1024 channels, T/8 × H/32 × W/32); `f2(f1(x))` is the whole
network.
"""

from __future__ import annotations

import torch
from torch import nn

# Index in `features` after which f1 ends (features[:SPLIT] = stem … Mixed_3c).
SPLIT = 7
# torchvision's (CoCLR's) BatchNorm epsilon; momentum is PyTorch's default 0.1 (torchvision's 0.001 suits
# finetuning pretrained statistics, not learning them from scratch).
BN_EPS = 1e-3


def scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class ConvBNReLU(nn.Sequential):
    """Conv3d (no bias) → BatchNorm3d → ReLU; the parameter names of torchvision's Conv3dNormActivation."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size=1, stride=1, padding=0):
        super().__init__(
            nn.Conv3d(in_planes, out_planes, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm3d(out_planes, eps=BN_EPS),
            nn.ReLU(inplace=True),
        )


class SeparableConv(nn.Sequential):
    """A 1×k×k spatial convolution followed by a k×1×1 temporal one, each with BatchNorm and ReLU."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, stride: int, padding: int):
        super().__init__(
            ConvBNReLU(
                in_planes, out_planes, (1, kernel_size, kernel_size), (1, stride, stride), (0, padding, padding)
            ),
            ConvBNReLU(out_planes, out_planes, (kernel_size, 1, 1), (stride, 1, 1), (padding, 0, 0)),
        )


class InceptionBlock(nn.Module):
    """Four parallel branches (1×1; 1×1 → separable 3×3; 1×1 → separable 3×3; max-pool → 1×1), concatenated."""

    def __init__(self, in_planes: int, b0: int, b1_mid: int, b1: int, b2_mid: int, b2: int, b3: int):
        super().__init__()
        self.branch0 = ConvBNReLU(in_planes, b0)
        self.branch1 = nn.Sequential(ConvBNReLU(in_planes, b1_mid), SeparableConv(b1_mid, b1, 3, 1, 1))
        self.branch2 = nn.Sequential(ConvBNReLU(in_planes, b2_mid), SeparableConv(b2_mid, b2, 3, 1, 1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), ConvBNReLU(in_planes, b3))
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


# (name, b0, b1_mid, b1, b2_mid, b2, b3) of each Inception block, at width 1.0
INCEPTION = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


class S3D(nn.Module):
    """S3D with a width multiplier and the f1 / f2 split of ViewCLR.

    `forward(x)` maps clips [B, 3, T, H, W] to pooled features [B, C] (or class logits when `num_classes` is set);
    `forward_features(x)` to the last feature map; `f1(x)` / `f2(h)` are the two halves."""

    def __init__(self, width: float = 1.0, num_classes: int | None = None, dropout: float = 0.2):
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be positive, not {width}")
        self.width = width
        c = [scaled(n, width) for n in (64, 192)]
        layers: list[nn.Module] = [
            SeparableConv(3, c[0], 7, 2, 3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            ConvBNReLU(c[0], c[0]),
            SeparableConv(c[0], c[1], 3, 1, 1),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        ]
        channels = c[1]
        for name, branches in INCEPTION.items():
            if name == "Mixed_4b":
                layers.append(nn.MaxPool3d(3, stride=2, padding=1))
            if name == "Mixed_5b":
                layers.append(nn.MaxPool3d(2, stride=2))
            block = InceptionBlock(channels, *(scaled(b, width) for b in branches))
            layers.append(block)
            channels = block.out_channels
            if name == "Mixed_3c":
                self.split_channels = channels
        self.features = nn.Sequential(*layers)
        self.out_channels = channels
        self.num_classes = num_classes
        if num_classes is not None:
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Conv3d(channels, num_classes, 1, bias=True))

    def f1_layers(self) -> nn.Sequential:
        """The modules of f1 (shared with this network; deep-copy them for ViewCLR's fg1)."""
        return self.features[:SPLIT]

    def f2_layers(self) -> nn.Sequential:
        return self.features[SPLIT:]

    def f1(self, x: torch.Tensor) -> torch.Tensor:
        """Stem … Mixed_3c: [B, 3, T, H, W] → [B, split_channels, T/2, H/8, W/8]."""
        return self.features[:SPLIT](x)

    def f2(self, h: torch.Tensor) -> torch.Tensor:
        """Mixed_4b … Mixed_5c: f1's output → [B, out_channels, T/8, H/32, W/32]."""
        return self.features[SPLIT:](h)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.f2(self.f1(x))

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """A feature map → [B, C] by global average pooling (or logits [B, classes] with the classifier)."""
        if self.num_classes is None:
            return h.mean(dim=(2, 3, 4))
        return self.classifier(h.mean(dim=(2, 3, 4), keepdim=True)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x))
