"""The cf-knn-fusion model: it starts as the mean of closed-form and KNN, never leaves their range by more
than the margin plus their disagreement, keeps the known regions exact through predict, and trains on whole
photos whose mattes are solved once (PhotoPriorPool)."""

import numpy as np
import pytest
import torch
from PIL import Image

from deepmatting import DeepMatting, predict
from deepmatting.data import PhotoPriorPool, classical_matte
from deepmatting.models.fusion import FUSION_MARGIN, fuse
from deepmatting.tensors import collate

pytestmark = pytest.mark.usefixtures("one_thread")


def _photo(h=40, w=56, seed=0):
    """A soft-edged disc of one colour over noise of another, and its trimap."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((h / 3 - r) / 4, 0, 1).astype(np.float32)
    fg = np.array([0.9, 0.3, 0.2], np.float32)
    bg = rng.random((h, w, 3)).astype(np.float32) * 0.4
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    trimap = np.full((h, w), 128, np.uint8)
    trimap[r > h / 3 + 3] = 0
    trimap[r < h / 3 - 7] = 255
    return image, alpha, trimap


def test_untrained_fusion_is_the_mean_of_closed_form_and_knn():
    image, _, trimap = _photo()
    model = DeepMatting("cf-knn-fusion")
    model.weights_source = "test"  # untrained on purpose
    alpha = predict(image, trimap, model=model)
    priors = classical_matte("closed-form+knn", image, trimap)
    assert priors.shape == (*trimap.shape, 2)
    unknown = trimap == 128
    np.testing.assert_allclose(alpha[unknown], priors.mean(-1)[unknown], atol=1e-6)
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()


def test_fusion_stays_within_the_mattes_range_plus_the_margin_and_their_disagreement():
    torch.manual_seed(0)
    outputs = torch.randn(2, 2, 16, 16) * 50  # any network output, however extreme
    priors = torch.rand(2, 2, 16, 16)
    priors[0, 1] = priors[0, 0]  # where the two mattes agree
    alpha = fuse(outputs, priors)
    low, high = priors.min(1, keepdim=True).values, priors.max(1, keepdim=True).values
    spread = high - low
    assert (alpha >= (low - FUSION_MARGIN - spread - 1e-6).clamp(min=0)).all()
    assert (alpha <= (high + FUSION_MARGIN + spread + 1e-6).clamp(max=1)).all()
    agree = (alpha[0] - priors[0, :1]).abs()
    assert agree.max() <= FUSION_MARGIN + 1e-6  # agreement: at most the margin away
    assert agree.max() > FUSION_MARGIN / 2  # ... and the network can use it
    # share alone (no correction) picks closed-form (+inf) or KNN (-inf)
    pick = torch.zeros(1, 2, 1, 1)
    two = torch.tensor([0.2, 0.8]).view(1, 2, 1, 1)
    pick[0, 0] = 30
    assert fuse(pick, two).item() == pytest.approx(0.2, abs=1e-6)
    pick[0, 0] = -30
    assert fuse(pick, two).item() == pytest.approx(0.8, abs=1e-6)


def test_a_few_steps_on_real_crops_lower_the_loss(tmp_path):
    from deepmatting.losses import AlphaLoss

    for sub in ("images", "alphas", "trimaps"):
        (tmp_path / "photos" / sub).mkdir(parents=True)
    for i in range(2):
        image, alpha, trimap = _photo(96, 112, seed=i)
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "photos/images" / f"p{i}.png")
        Image.fromarray(np.round(alpha * 255).astype(np.uint8)).save(tmp_path / "photos/alphas" / f"p{i}.png")
        Image.fromarray(trimap).save(tmp_path / "photos/trimaps" / f"p{i}.png")
    pool = PhotoPriorPool(tmp_path / "photos", tmp_path / "cache", "closed-form+knn", 8, variants=1, crop=64,
                          progress=False)
    assert len(pool.entries) == 2 * 3  # own trimap, a generated one, a composite, per photo
    sample = pool[0]
    assert sample["prior"].shape == (64, 64, 2) and sample["image"].shape == (64, 64, 3)
    again = PhotoPriorPool(tmp_path / "photos", tmp_path / "cache", "closed-form+knn", 8, variants=1, crop=64,
                           progress=False)  # solved once: read back from the cache
    np.testing.assert_array_equal(again[3]["prior"], pool[3]["prior"])
    torch.manual_seed(0)
    model = DeepMatting("cf-knn-fusion").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = collate([pool[i] for i in range(8)])
    loss_fn = AlphaLoss()
    losses = []
    for _ in range(25):
        pred = model(batch["image"], batch["trimap"], batch["prior"])
        loss = loss_fn(pred, batch["alpha"], batch["trimap"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
