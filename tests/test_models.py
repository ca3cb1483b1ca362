"""Contract tests over the architecture registry: shapes at odd sizes, range, gradients, checkpoints."""

import os
import pickle

import numpy as np
import pytest
import torch

from deepmatting import DeepMatting, list_architectures
from deepmatting.checkpoint import CheckpointError
from deepmatting.config import ConfigError, ModelConfig

ARCHS = list_architectures()


def _inputs(b, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, h, w, generator=g)
    trimap = torch.full((b, 1, h, w), 0.5)
    trimap[:, :, : h // 3] = 0.0
    trimap[:, :, -(h // 3) or h :] = 1.0
    return image, trimap


def _args(model, b, h, w, seed=0):
    """The forward arguments of ``model``: image, trimap, and a prior matte for models that refine one."""
    image, trimap = _inputs(b, h, w, seed)
    if model.prior is None:
        return image, trimap
    generator = torch.Generator().manual_seed(seed + 1)
    return image, trimap, torch.rand(b, model.prior_channels, h, w, generator=generator)


def test_registry_names_default_first_and_dim():
    assert ARCHS[0] == "light-unet"
    assert "dim-vgg16" in ARCHS


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", [(33, 47), (64, 64), (1, 1), (97, 131)])
def test_any_size_in_same_size_out(arch, size):
    torch.manual_seed(0)
    model = DeepMatting(arch=arch).eval()
    with torch.no_grad():
        alpha = model(*_args(model, 2, *size))
    assert alpha.shape == (2, 1, *size)
    assert torch.isfinite(alpha).all()
    assert alpha.min() >= 0 and alpha.max() <= 1


@pytest.mark.parametrize("arch", ARCHS)
def test_every_parameter_gets_a_gradient(arch):
    torch.manual_seed(0)
    model = DeepMatting(arch=arch, refine=True) if arch == "dim-vgg16" else DeepMatting(arch=arch)
    model(*_args(model, 2, 64, 64)).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"{arch}: no finite gradient for {missing[:5]}"


@pytest.mark.parametrize("arch", ARCHS)
def test_encoder_features_have_the_declared_channels_and_strides(arch):
    model = DeepMatting(arch=arch).eval()
    h, w = 64, 96
    inputs = model.encode_inputs(*_args(model, 1, h, w))
    with torch.no_grad():
        out = model.encoder(inputs)
    features = out[0] if isinstance(out, tuple) else out  # dim-vgg16 also returns its pooling indices
    assert len(features) == len(model.encoder.channels) == len(model.encoder.strides)
    for f, c, s in zip(features, model.encoder.channels, model.encoder.strides, strict=True):
        assert tuple(f.shape[1:]) == (c, h // s, w // s), f"{arch}: {tuple(f.shape)} for stride {s}"


def test_default_is_light():
    n_default = DeepMatting().num_parameters()
    assert n_default <= 5_000_000
    assert DeepMatting(arch="dim-vgg16").num_parameters() > 10 * n_default


def test_dim_refinement_changes_the_output():
    torch.manual_seed(0)
    plain = DeepMatting(arch="dim-vgg16")
    torch.manual_seed(0)
    refined = DeepMatting(arch="dim-vgg16", refine=True)
    assert refined.num_parameters() > plain.num_parameters()
    image, trimap = _inputs(1, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(plain.eval()(image, trimap), refined.eval()(image, trimap))


def test_trimap_is_required_and_shapes_checked():
    model = DeepMatting().eval()
    image, trimap = _inputs(1, 32, 32)
    with pytest.raises(ValueError, match="trimap"):
        model(image)
    with pytest.raises(ValueError, match="Bx1xHxW"):
        model(image, trimap[:, :, :16])
    with pytest.raises(ValueError, match="Bx3xHxW"):
        model(image[:, :2], trimap)


def test_trimap_changes_the_prediction():
    torch.manual_seed(0)
    model = DeepMatting().eval()
    image, trimap = _inputs(1, 64, 64)
    with torch.no_grad():
        a = model(image, trimap)
        b = model(image, 1 - trimap)
    assert (a - b).abs().max() > 1e-4


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ConfigError, match="light-unet"):
        DeepMatting(arch="resnet-9000")


@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_round_trip(arch, tmp_path):
    torch.manual_seed(0)
    model = DeepMatting(arch=arch).eval()
    path = tmp_path / "m.pt"
    model.save(path, note="hello")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["config"]["arch"] == arch and raw["note"] == "hello"
    back = DeepMatting.from_checkpoint(path).eval()
    assert back.config == model.config
    args = _args(model, 1, 50, 70)
    with torch.no_grad():
        assert torch.allclose(model(*args), back(*args), atol=1e-6)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")], "temporary file left behind"


def test_checkpoint_keeps_config_fields(tmp_path):
    model = DeepMatting(width=0.5, input="mask")
    model.save(tmp_path / "m.pt")
    back = DeepMatting.from_checkpoint(tmp_path / "m.pt")
    assert back.config.width == 0.5 and back.config.input == "mask" and back.in_channels == 4


def test_unsafe_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"model": Evil(), "config": {}}, f)
    with pytest.raises(CheckpointError, match="evil.pt"):
        DeepMatting.from_checkpoint(evil)
    assert not marker.exists()


def test_missing_and_foreign_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        DeepMatting.from_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a deepmatting checkpoint"):
        DeepMatting.from_checkpoint(tmp_path / "other.pt")
    bad = DeepMatting().checkpoint_dict()
    bad["config"]["arch"] = "dim-vgg16"
    torch.save(bad, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="mismatch.pt"):
        DeepMatting.from_checkpoint(tmp_path / "mismatch.pt")


def test_model_config_validation():
    with pytest.raises(ConfigError):
        ModelConfig(input="scribbles")
    from deepmatting.config import from_dict

    with pytest.raises(ConfigError, match="unknown keys"):
        from_dict(ModelConfig, {"arch": "light-unet", "depth": 3})
    with pytest.raises(ConfigError, match="width"):
        from_dict(ModelConfig, {"width": "wide"})
    assert from_dict(ModelConfig, {"width": 2}).width == 2.0


def test_batchnorm_folding_keeps_outputs():
    import copy

    from deepmatting.models.blocks import fuse_conv_bn

    torch.manual_seed(0)
    model = DeepMatting()
    image, trimap = _inputs(2, 40, 56)
    model.train()
    model(image, trimap)  # move the BatchNorm running statistics away from their initial values
    model.eval()
    fused = fuse_conv_bn(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        assert torch.allclose(model(image, trimap), fused(image, trimap), atol=1e-5)


def test_a_refining_model_starts_as_its_prior_and_needs_it():
    model = DeepMatting("effnet-cf").eval()
    image, trimap, prior = _args(model, 1, 45, 67)
    with torch.no_grad():
        alpha = model(image, trimap, prior)
    unknown = trimap == 0.5
    # the correction starts at zero; the known regions are the trimap's
    assert torch.allclose(alpha[unknown], prior.clamp(1e-3, 1 - 1e-3)[unknown], atol=1e-6)
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 1] == 1).all()
    from deepmatting.closed_form import closed_form_alpha

    with torch.no_grad():  # without a prior, the model solves closed-form matting itself
        alone = model(image, trimap)
    trimap8 = (trimap[0, 0].numpy() * 255).round().astype(np.uint8)
    trimap8[trimap8 == 127] = 128
    expected = closed_form_alpha(image[0].permute(1, 2, 0).numpy(), trimap8)
    expected = torch.from_numpy(expected).clamp(1e-3, 1 - 1e-3)
    assert torch.allclose(alone[0, 0][unknown[0, 0]], expected[unknown[0, 0]], atol=1e-5)
    with pytest.raises(ValueError, match="takes no prior"):
        DeepMatting()(image, trimap, prior)


@pytest.mark.parametrize("arch", ARCHS)
def test_the_raw_forward_keeps_the_known_regions_exact(arch):
    torch.manual_seed(0)
    model = DeepMatting(arch=arch).eval()
    image, trimap = _args(model, 2, 45, 61)[:2]
    with torch.no_grad():
        alpha = model(*_args(model, 2, 45, 61))
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 1] == 1).all()
    assert ((alpha > 0) & (alpha < 1))[trimap == 0.5].any()  # the unknown region is the model's


def test_a_mask_model_keeps_its_own_alpha_where_the_mask_is_hard():
    torch.manual_seed(0)
    model = DeepMatting(input="mask").eval()
    mask = torch.zeros(1, 1, 40, 40)
    mask[..., 20:] = 1
    with torch.no_grad():
        alpha = model(torch.rand(1, 3, 40, 40), mask)
    assert ((alpha > 0) & (alpha < 1)).any()  # a coarse mask is no trimap: nothing is pasted
