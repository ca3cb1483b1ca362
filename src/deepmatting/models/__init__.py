"""Matting architectures behind one interface: ``DeepMatting(arch=...)``."""

from .deepmatting import DeepMatting
from .registry import ARCHITECTURES, DEFAULT_ARCH, build_model, get_architecture, list_architectures

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARCH",
    "DeepMatting",
    "build_model",
    "get_architecture",
    "list_architectures",
]
