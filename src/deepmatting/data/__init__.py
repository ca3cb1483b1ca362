"""Matting data: file readers, trimaps, joint transforms on sample dicts, and datasets.

Every dataset yields the same sample dict: ``image`` HxWx3 float32 [0,1], ``alpha`` HxW float32 [0,1],
``trimap`` HxW uint8 {0,128,255}, optional ``fg``/``bg`` HxWx3 float32, and ``name``. Batch them with
``torch.utils.data.DataLoader(ds, batch_size=..., collate_fn=deepmatting.tensors.collate)``.
"""

from .datasets import CompositionDataset, CustomDataset, MixedDataset, cover_crop
from .errors import DatasetError
from .folders import list_images, pair_inputs
from .io import IMAGE_EXTENSIONS, image_size, is_image_file, read_alpha, read_image, read_trimap, write_alpha
from .photo_prior_pool import PhotoPriorPool
from .pixels import as_image, as_mask, as_trimap, snap_trimap, to_unit_float
from .prior_pool import PRIOR_CHANNELS, PriorPool, classical_matte
from .synthetic import SyntheticMattingDataset, synthesize
from .transforms import (
    ColorJitter,
    Compose,
    Composite,
    PadToMultiple,
    RandomCropAroundUnknown,
    RandomFlip,
    RandomScale,
    RandomTrimap,
    Transform,
    composite,
    crop,
    eval_transforms,
    resize,
    resize_array,
    train_transforms,
)
from .trimap import erode_disk, make_trimap, trimap_from_coarse_mask, trimap_from_mask

__all__ = [
    "IMAGE_EXTENSIONS",
    "ColorJitter",
    "CompositionDataset",
    "Compose",
    "Composite",
    "CustomDataset",
    "DatasetError",
    "MixedDataset",
    "PadToMultiple",
    "RandomCropAroundUnknown",
    "RandomFlip",
    "RandomScale",
    "RandomTrimap",
    "SyntheticMattingDataset",
    "Transform",
    "composite",
    "cover_crop",
    "crop",
    "erode_disk",
    "eval_transforms",
    "image_size",
    "is_image_file",
    "list_images",
    "pair_inputs",
    "PhotoPriorPool",
    "PRIOR_CHANNELS",
    "PriorPool",
    "classical_matte",
    "make_trimap",
    "read_alpha",
    "read_image",
    "read_trimap",
    "resize",
    "resize_array",
    "synthesize",
    "train_transforms",
    "trimap_from_coarse_mask",
    "trimap_from_mask",
    "write_alpha",
    "as_image",
    "as_mask",
    "as_trimap",
    "snap_trimap",
    "to_unit_float",
]
