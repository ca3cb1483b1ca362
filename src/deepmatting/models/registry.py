"""The registry of architectures: a name -> how to build its encoder and decoder from a ``ModelConfig``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..config import ConfigError, ModelConfig
from .dim import UnpoolDecoder, VGG16Encoder
from .light import LightDecoder, LightEncoder


@dataclass(frozen=True)
class Architecture:
    """How one architecture reads its input and builds its parts.

    ``trimap_encoding`` is ``"raw"`` (one channel, 0/0.5/1 — as in DIM) or ``"onehot"`` (three soft channels
    bg/unknown/fg). ``pad_multiple`` is what H and W are padded to inside the model.
    """

    name: str
    description: str
    trimap_encoding: str
    pad_multiple: int
    build: Callable[[ModelConfig, int], tuple[nn.Module, nn.Module]]


def _build_light(cfg: ModelConfig, in_channels: int) -> tuple[nn.Module, nn.Module]:
    encoder = LightEncoder(in_channels, cfg.width)
    return encoder, LightDecoder(encoder.channels, in_channels)


def _build_dim(cfg: ModelConfig, in_channels: int) -> tuple[nn.Module, nn.Module]:
    encoder = VGG16Encoder(in_channels)
    return encoder, UnpoolDecoder(encoder.channels, in_channels, refine=cfg.refine)


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
    """Channels of the network input: RGB plus the trimap (or mask) encoding."""
    if cfg.input == "mask" or arch.trimap_encoding == "raw":
        return 4
    return 6


def build_model(arch: str | ModelConfig = DEFAULT_ARCH) -> tuple[nn.Module, nn.Module]:
    """Build ``(encoder, decoder)`` for an architecture name or a full ``ModelConfig``."""
    cfg = arch if isinstance(arch, ModelConfig) else ModelConfig(arch=arch)
    spec = get_architecture(cfg.arch)
    return spec.build(cfg, input_channels(spec, cfg))
