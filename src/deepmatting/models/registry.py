"""The registry of architectures: a name -> how to build its encoder and decoder from a ``ModelConfig``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..config import ConfigError, ModelConfig
from ..data.prior_pool import PRIOR_CHANNELS
from .dim import UnpoolDecoder, VGG16Encoder
from .edge import EdgeDecoder
from .efficientnet import IMAGENET_MEAN, IMAGENET_STD, EfficientNetLite0Encoder, load_imagenet_weights
from .fusion import FUSION_WIDTH, build_fusion
from .light import LightDecoder, LightEncoder

#: ImageNet statistics (torchvision's), the normalisation of the architectures without pretrained weights.
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Architecture:
    """How one architecture reads its input and builds its parts.

    ``trimap_encoding`` is ``"raw"`` (one channel, 0/0.5/1 — as in DIM), ``"onehot"`` (three soft channels
    bg/unknown/fg) or ``"onehot+colors"`` (those, and the nearby known foreground and background colours
    spread over the unknown region, six channels: see :mod:`deepmatting.models.known_colors`).
    ``pad_multiple`` is what H and W are padded to inside the model. ``mean``/``std`` are the
    RGB normalisation the encoder expects. ``load_pretrained(encoder)``, when set, loads the encoder's
    ImageNet weights (at the start of training only). ``prior`` names a classical matte the model refines
    (``"closed-form"``): it is an extra input channel, and the model's output is that matte plus a learned
    correction (in logits), which starts at zero; ``"closed-form+knn"`` gives both mattes, which the
    ``cf-knn-fusion`` model combines (:mod:`deepmatting.models.fusion`) instead of correcting one.
    """

    name: str
    description: str
    trimap_encoding: str
    pad_multiple: int
    build: Callable[[ModelConfig, int], tuple[nn.Module, nn.Module]]
    mean: tuple[float, ...] = TORCHVISION_MEAN
    std: tuple[float, ...] = TORCHVISION_STD
    load_pretrained: Callable[[nn.Module], None] | None = None
    prior: str | None = None


def _build_light(cfg: ModelConfig, in_channels: int) -> tuple[nn.Module, nn.Module]:
    encoder = LightEncoder(in_channels, cfg.width)
    return encoder, LightDecoder(encoder.channels, in_channels)


def _build_dim(cfg: ModelConfig, in_channels: int) -> tuple[nn.Module, nn.Module]:
    encoder = VGG16Encoder(in_channels)
    return encoder, UnpoolDecoder(encoder.channels, in_channels, refine=cfg.refine)


def _build_effnet(cfg: ModelConfig, in_channels: int) -> tuple[nn.Module, nn.Module]:
    encoder = EfficientNetLite0Encoder(in_channels)
    return encoder, EdgeDecoder(encoder.channels, in_channels)


def _build_fusion(cfg: ModelConfig, in_channels: int) -> tuple[nn.Module, nn.Module]:
    return build_fusion(in_channels, FUSION_WIDTH * cfg.width)


def _build_effnet_residual(cfg: ModelConfig, in_channels: int) -> tuple[nn.Module, nn.Module]:
    encoder = EfficientNetLite0Encoder(in_channels)
    return encoder, EdgeDecoder(encoder.channels, in_channels, zero_output=True)


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "light-unet",
            "MobileNetV2-style encoder, U-Net decoder with skips, full-resolution head (default)",
            "onehot",
            32,
            _build_light,
        ),
        Architecture(
            "dim-vgg16",
            "Deep Image Matting: VGG16 encoder on RGB+trimap, unpooling decoder, optional refinement",
            "raw",
            32,
            _build_dim,
        ),
        Architecture(
            "effnet-lite0",
            "EfficientNet-Lite0 encoder (ImageNet weights) on the image, trimap and known colours, U-Net "
            "decoder, full-resolution edge refinement",
            "onehot+colors",
            32,
            _build_effnet,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            load_pretrained=load_imagenet_weights,
        ),
        Architecture(
            "effnet-cf",
            "effnet-lite0 refining closed-form matting: the closed-form alpha is an input, the output is it "
            "plus a learned correction (the 'best quality' mode)",
            "onehot+colors",
            32,
            _build_effnet_residual,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            load_pretrained=load_imagenet_weights,
            prior="closed-form",
        ),
        Architecture(
            "cf-knn-fusion",
            "a light U-Net fusing closed-form and KNN matting: a per-pixel share of each plus a correction "
            "bounded by their disagreement (starts as their mean)",
            "onehot",
            32,
            _build_fusion,
            prior="closed-form+knn",
        ),
    )
}
DEFAULT_ARCH = "light-unet"


def list_architectures() -> list[str]:
    """Names of every registered architecture (the default first)."""
    return sorted(ARCHITECTURES, key=lambda n: (n != DEFAULT_ARCH, n))


def get_architecture(name: str) -> Architecture:
    """The registered architecture called ``name``; a clear error listing the valid names otherwise."""
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {name!r}; choose one of {list_architectures()}")
    return ARCHITECTURES[name]


def input_channels(arch: Architecture, cfg: ModelConfig) -> int:
    """Channels of the network input: RGB plus the trimap (or mask) encoding; RGB alone for image-only
    models. A model with a classical prior needs a trimap to solve it: ``input="image"`` is refused."""
    if cfg.input == "image":
        if arch.prior is not None:
            raise ConfigError(f"{arch.name} refines {arch.prior} matting, which needs a trimap: it cannot "
                              "be an image-only model (input='image'); use light-unet, effnet-lite0 or "
                              "dim-vgg16")
        return 3
    if cfg.input == "mask" or arch.trimap_encoding == "raw":
        channels = 4
    else:
        channels = 12 if arch.trimap_encoding == "onehot+colors" else 6
    return channels + prior_input_channels(arch.prior)


def prior_input_channels(prior: str | None) -> int:
    """Input channels a prior adds: its mattes, and their disagreement when there are two."""
    if prior is None:
        return 0
    mattes = PRIOR_CHANNELS[prior]
    return mattes + (mattes == 2)


def build_model(arch: str | ModelConfig = DEFAULT_ARCH) -> tuple[nn.Module, nn.Module]:
    """Build ``(encoder, decoder)`` for an architecture name or a full ``ModelConfig``."""
    cfg = arch if isinstance(arch, ModelConfig) else ModelConfig(arch=arch)
    spec = get_architecture(cfg.arch)
    return spec.build(cfg, input_channels(spec, cfg))
