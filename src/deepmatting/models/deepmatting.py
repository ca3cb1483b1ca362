"""``DeepMatting``: normalisation, trimap encoding and padding around an encoder and a decoder."""

from __future__ import annotations

import os
from dataclasses import asdict, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..checkpoint import (
    DEFAULT_QUALITY,
    NO_DEFAULT_MODEL,
    CheckpointError,
    atomic_save,
    default_weights,
    load_checkpoint,
)
from ..config import ConfigError, ModelConfig, from_dict
from ..data.prior_pool import PRIOR_CHANNELS, PRIOR_MAX_PIXELS, classical_matte
from ..tensors import batch_prior_to_tensor, float_to_trimap
from .fusion import disagreement, fuse
from .known_colors import known_colors
from .registry import DEFAULT_ARCH, get_architecture, input_channels

#: A prior matte is clamped to [eps, 1 - eps] before its logit is taken.
PRIOR_EPS = 1e-3


class DeepMatting(nn.Module):
    """Predict an alpha matte from an image and a trimap (or a coarse mask).

    Parameters
    ----------
    arch : str
        A registered architecture (``deepmatting.list_architectures()``); the light default when omitted.
    config : ModelConfig, optional
        A full configuration; overrides ``arch`` and ``overrides``.
    **overrides
        Fields of ``ModelConfig`` (``refine``, ``width``, ``input``...).

    Examples
    --------
    >>> model = DeepMatting().eval()
    >>> alpha = model(torch.rand(1, 3, 97, 131), torch.full((1, 1, 97, 131), 0.5))
    >>> tuple(alpha.shape)
    (1, 1, 97, 131)
    """

    def __init__(self, arch: str = DEFAULT_ARCH, config: ModelConfig | None = None, **overrides):
        super().__init__()
        config = config if config is not None else ModelConfig(arch=arch, **overrides)
        spec = get_architecture(config.arch)
        self.config = replace(  # the architecture's defaults made explicit, so checkpoints are self-contained
            config,
            mean=config.mean or spec.mean,
            std=config.std or spec.std,
            pretrained_encoder=(
                spec.load_pretrained is not None
                if config.pretrained_encoder is None
                else config.pretrained_encoder and spec.load_pretrained is not None
            ),
        )
        self._load_pretrained = spec.load_pretrained
        #: Where the weights came from: a checkpoint path, "training", "a state dict", or None while they
        #: are the random initialisation (prediction then warns: the alpha would be meaningless).
        self.weights_source: str | None = None
        self.trimap_encoding = "raw" if self.config.input == "mask" else spec.trimap_encoding
        self.prior = spec.prior  # the classical matte(s) this model reads, if any (an input of forward)
        self.prior_channels = PRIOR_CHANNELS[spec.prior] if spec.prior is not None else 0
        self.prior_pixels = self.config.prior_pixels or PRIOR_MAX_PIXELS  # the mattes' largest solve
        self.pad_multiple = spec.pad_multiple
        self.in_channels = input_channels(spec, self.config)
        self.encoder, self.decoder = spec.build(self.config, self.in_channels)
        self.register_buffer("mean", torch.tensor(self.config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.config.std).view(1, 3, 1, 1), persistent=False)

    def init_pretrained_encoder(self) -> bool:
        """Load the encoder's ImageNet weights when ``config.pretrained_encoder`` says so (start of training).

        Returns whether weights were loaded. Raises ``ImportError`` naming the extra to install when the
        weights' package is missing.
        """
        if not self.config.pretrained_encoder or self._load_pretrained is None:
            return False
        self._load_pretrained(self.encoder)
        return True

    def encode_inputs(self, image: torch.Tensor, trimap: torch.Tensor,
                      prior: torch.Tensor | None = None) -> torch.Tensor:
        """``Bx3xHxW`` image in [0,1], ``Bx1xHxW`` trimap (and ``BxPxHxW`` prior mattes) -> network input
        ``BxCxHxW``; an image-only model's input is the normalised image (``trimap`` is None)."""
        x = (image - self.mean) / self.std  # (B, 3, H, W)
        if self.config.input == "image":
            return x
        extra = [] if self.prior is None else [prior]
        if self.prior_channels == 2:
            extra.append(disagreement(prior))  # (B, 1, H, W)
        if self.trimap_encoding == "raw":
            return torch.cat([x, trimap, *extra], dim=1)  # (B, 4[+1], H, W)
        bg = torch.relu(1 - 2 * trimap)  # 1 at 0, 0 from 0.5 up
        fg = torch.relu(2 * trimap - 1)  # 1 at 1, 0 up to 0.5
        parts = [x, bg, 1 - bg - fg, fg]  # (B, 6, H, W)
        if self.trimap_encoding == "onehot+colors":
            parts.append(known_colors(x, bg, fg))  # (B, 6, H, W)
        return torch.cat([*parts, *extra], dim=1)  # (B, 6 | 12 [+1 | +3], H, W)

    def forward(self, image: torch.Tensor, trimap: torch.Tensor | None = None,
                prior: torch.Tensor | None = None) -> torch.Tensor:
        """Alpha matte for any H and W.

        Parameters
        ----------
        image : Tensor, Bx3xHxW float in [0,1]
        trimap : Tensor, Bx1xHxW float: 0 background, 0.5 unknown, 1 foreground
            (or a coarse mask in [0,1] for ``input="mask"`` models). Required, except by image-only models
            (``input="image"``), which ignore it.
        prior : Tensor, BxPxHxW float in [0,1], optional
            The classical matte(s) (``self.prior``: closed-form, P = 1, or closed-form and KNN, P = 2) for
            models that read them: computed here from the image and the trimap when not given (solved per
            image, on the CPU); refused by the other models.

        Returns
        -------
        Tensor, Bx1xHxW float32 in [0,1]; exactly 0 and 1 on the trimap's known pixels (for models that read
        a trimap), so the raw forward and the exported ONNX graph give what ``predict`` gives.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be Bx3xHxW, got {tuple(image.shape)}")
        if self.config.input == "image":
            trimap = None  # the image alone
        elif trimap is None:
            raise ValueError(f"{self.config.arch} needs a {self.config.input} (Bx1xHxW) beside the image")
        elif trimap.shape != (image.shape[0], 1, *image.shape[2:]):
            raise ValueError(f"trimap must be Bx1xHxW matching the image, got {tuple(trimap.shape)}")
        if prior is not None and self.prior is None:
            raise ValueError(f"{self.config.arch} takes no prior matte")
        if self.prior is not None and prior is None:
            prior = self.classical_prior(image, trimap)
        if prior is not None and prior.shape != (image.shape[0], self.prior_channels, *image.shape[2:]):
            raise ValueError(f"prior must be Bx{self.prior_channels}xHxW matching the image, got "
                             f"{tuple(prior.shape)}")
        if self.training and torch.is_grad_enabled() and self.weights_source is None:
            self.weights_source = "training"
        h, w = image.shape[-2:]
        m = self.pad_multiple
        ph, pw = (m - h % m) % m, (m - w % m) % m
        if ph or pw:  # padded before encoding: the known colours are not per pixel
            image = F.pad(image, (0, pw, 0, ph), mode="replicate")  # (B, 3, H', W'), multiples of m
            trimap = F.pad(trimap, (0, pw, 0, ph), mode="replicate") if trimap is not None else None
            prior = F.pad(prior, (0, pw, 0, ph), mode="replicate") if prior is not None else None
        inputs = self.encode_inputs(image, trimap, prior)  # (B, C, H', W')
        logits = self.decoder(self.encoder(inputs), inputs)  # (B, 1 | 2, H', W')
        if self.prior_channels == 2:  # a bounded fusion of the two mattes
            alpha = fuse(logits, prior)  # (B, 1, H', W')
        else:
            if prior is not None:  # a correction of the prior matte, in logits
                logits = logits + torch.logit(prior.clamp(PRIOR_EPS, 1 - PRIOR_EPS))
            alpha = torch.sigmoid(logits.float())  # (B, 1, H', W')
        alpha = alpha[..., :h, :w]  # (B, 1, H, W)
        return alpha if trimap is None else self.keep_known(alpha, trimap[..., :h, :w])

    def keep_known(self, alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        """The trimap's known pixels set exactly: 0 where ``trimap < 0.25``, 1 where ``> 0.75`` (``Bx1xHxW``
        each). A mask-input model's guide is no trimap (nor an image-only model's): its alpha is returned as
        it is."""
        if self.config.input != "trimap":
            return alpha
        return torch.where(trimap < 0.25, 0.0, torch.where(trimap > 0.75, 1.0, alpha))

    def classical_prior(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        """The classical matte this model refines (``self.prior``), computed per image on the CPU.

        ``Bx3xHxW`` image in [0,1] and ``Bx1xHxW`` trimap {0, 0.5, 1} -> ``BxPxHxW`` float in [0,1].
        """
        images = image.detach().float().permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3)
        trimaps = float_to_trimap(trimap[:, 0])  # (B, H, W) uint8
        mattes = [classical_matte(self.prior, im, tri, self.prior_pixels)
                  for im, tri in zip(images, trimaps, strict=True)]
        return batch_prior_to_tensor(np.stack(mattes)).to(image.device)  # (B, P, H, W)

    # ---- checkpoints -------------------------------------------------------------------------------
    def checkpoint_dict(self, **extra) -> dict:
        """The dict written by ``save``: state dict, config, package version, and ``extra``."""
        return {"model": self.state_dict(), "config": asdict(self.config), "version": __version__, **extra}

    def save(self, path: str | os.PathLike, **extra) -> None:
        """Write ``{"model", "config", "version", **extra}`` atomically (temporary file + rename)."""
        atomic_save(self.checkpoint_dict(**extra), path)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.weights_source = self.weights_source or "a state dict"
        return result

    @classmethod
    def pretrained(cls, path: str | os.PathLike | None = None, map_location: str | torch.device = "cpu", *,
                   quality: str = DEFAULT_QUALITY) -> DeepMatting:
        """A trained model that ships with the package, or the one in the checkpoint ``path``.

        ``quality`` chooses among the shipped models (``checkpoint.QUALITY_SUMMARIES``): ``"fusion"``
        (the default: prediction solves closed-form and KNN matting, then the network fuses them),
        ``"best"`` (refines closed-form matting) or ``"fast"`` (the network alone).

        Examples
        --------
        >>> model = DeepMatting.pretrained()  # the default model  # doctest: +SKIP
        >>> model = DeepMatting.pretrained(quality="best")  # doctest: +SKIP
        >>> model = DeepMatting.pretrained("runs/mine/best.pt")  # doctest: +SKIP

        Raises
        ------
        CheckpointError
            When the checkpoint cannot be loaded, or no such model ships with this build.
        """
        if path is not None:
            return cls.from_checkpoint(path, map_location)
        weights = default_weights(quality)
        if weights is None:
            raise CheckpointError(NO_DEFAULT_MODEL if quality == DEFAULT_QUALITY else
                                  f"no {quality}-quality model ships with this version of deepmatting")
        with weights as shipped:
            model = cls.from_checkpoint(shipped, map_location)
        model.weights_source = (f"the shipped {quality} model" if quality != DEFAULT_QUALITY
                                else "the shipped default")
        return model

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, map_location: str | torch.device = "cpu"
    ) -> DeepMatting:
        """Rebuild the model from a checkpoint alone (loaded with ``weights_only=True``).

        Accepts files written by ``save`` and the training checkpoints ``last.pt`` / ``best.pt``.
        """
        ckpt = load_checkpoint(path, map_location)
        config = ckpt["config"]
        if isinstance(config, dict) and "model" in config and isinstance(config["model"], dict):
            config = config["model"]  # a training checkpoint stores the whole TrainConfig
        try:
            model_config = from_dict(ModelConfig, config)
            _check_shapes_on_meta(cls, model_config, ckpt["model"])  # before any memory is spent on it
            model = cls(config=model_config)
            model.load_state_dict(ckpt["model"])
        except (ConfigError, RuntimeError, TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {path}: does not match its config ({e})") from e
        model.weights_source = str(path)
        return model.to(map_location)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _check_shapes_on_meta(cls, config: ModelConfig, state: dict) -> None:
    """Build the model ``config`` describes on the meta device (no memory) and compare its parameter
    shapes with the state dict's: a config asking for a far larger model than its weights (a damaged or
    crafted file) fails here with a ``ValueError`` instead of exhausting memory."""
    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in cls(config=config).state_dict().items()}
    for name, shape in expected.items():
        given = state.get(name)
        if given is not None and tuple(given.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(given.shape)} in the file but the config builds "
                             f"{shape}")
