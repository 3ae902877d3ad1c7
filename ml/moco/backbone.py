"""ResNet backbones for MoCo: torchvision's ResNet class with options for small galaxy crops.

torchvision's ResNet-18/34/50 are built by torchvision itself; two options adapt them to
survey cutouts without leaving torchvision's class (so its weights, ``fc`` convention and
``_forward_impl`` layout stay familiar):

- ``small_stem``: a 3x3 stride-1 first convolution and no max-pool. The ImageNet stem divides
  the resolution by 4 before the first block, which leaves a 48-pixel crop 12 pixels wide;
  CIFAR-style ResNets use the small stem for the same reason.
- ``width``: channels of the first stage (64 in torchvision); stages double it as usual. A
  narrower network is what a 2-core CPU can train in minutes.

``resnet10`` (one block per stage) is torchvision's ResNet class with layers [1, 1, 1, 1], for
demos and tests on a CPU.

:func:`features` returns the representation before the head (the ``fc`` input): 512 x width/64
for ResNet-10/18/34, 2048 x width/64 for ResNet-50.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

# name -> (block, blocks per stage)
ARCHS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    "resnet10": (BasicBlock, [1, 1, 1, 1]),
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


def resnet(
    arch: str = "resnet18",
    num_classes: int = 128,
    small_stem: bool = False,
    width: int = 64,
    zero_init_residual: bool = False,
) -> ResNet:
    """Build a torchvision ResNet, optionally with a small stem and a different width.

    Args:
        arch: one of :data:`ARCHS`.
        num_classes: output size of ``fc`` (MoCo passes its embedding dimension).
        small_stem: 3x3 stride-1 first convolution and no max-pool (for crops below ~64 px).
        width: channels of the first stage; later stages have 2x, 4x, 8x (x4 for Bottleneck).
        zero_init_residual: torchvision's option: the last BN of each block starts at zero.

    Returns:
        a ``torchvision.models.ResNet`` whose ``fc`` maps the pooled features to num_classes.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {sorted(ARCHS)}")
    if width < 8 or width % 8:
        raise ValueError(f"width must be a positive multiple of 8; got {width}")
    block, layers = ARCHS[arch]
    model = ResNet(block, layers, num_classes=num_classes, zero_init_residual=zero_init_residual)
    if width == 64 and not small_stem:
        return model

    # Rebuild the stem and the stages at the requested width with torchvision's own
    # _make_layer, then re-run torchvision's initialisation on the new modules.
    norm = model._norm_layer
    model.inplanes = width
    model.dilation = 1
    if small_stem:
        model.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    else:
        model.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = norm(width)
    model.layer1 = model._make_layer(block, width, layers[0])
    model.layer2 = model._make_layer(block, 2 * width, layers[1], stride=2)
    model.layer3 = model._make_layer(block, 4 * width, layers[2], stride=2)
    model.layer4 = model._make_layer(block, 8 * width, layers[3], stride=2)
    model.fc = nn.Linear(8 * width * block.expansion, num_classes)
    _init_like_torchvision(model, zero_init_residual)
    return model


def _init_like_torchvision(model: ResNet, zero_init_residual: bool) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    # nn.Linear keeps PyTorch's default init, as in torchvision
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck):
                nn.init.constant_(m.bn3.weight, 0)
            elif isinstance(m, BasicBlock):
                nn.init.constant_(m.bn2.weight, 0)


def backbone_factory(
    arch: str = "resnet18", small_stem: bool = False, width: int = 64,
) -> Callable[..., ResNet]:
    """A ``base_encoder`` constructor for :class:`ml.moco.MoCo`: ``factory(num_classes=dim)``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {sorted(ARCHS)}")
    return partial(resnet, arch, small_stem=small_stem, width=width)


def feature_dim(net: ResNet) -> int:
    """Size of the representation before the head (the input of ``fc``)."""
    fc = net.fc
    first = fc[0] if isinstance(fc, nn.Sequential) else fc
    return int(first.in_features)


def features(net: ResNet, x: torch.Tensor) -> torch.Tensor:
    """The pooled representation before the head: torchvision's forward without ``fc``.

    Args:
        net: a torchvision ResNet.
        x: (N, 3, H, W) network-ready images.

    Returns:
        (N, D) features.
    """
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
    return torch.flatten(net.avgpool(x), 1)
