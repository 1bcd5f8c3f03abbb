"""strided.data: data sets, mini-batches and augmentation (images are NHWC).

>>> from strided import data
>>> train, test = data.load("fashion-mnist")          # ArrayDataset (60000, 28, 28, 1) uint8
>>> loader = data.DataLoader(train, batch_size=64, shuffle=True, seed=0,
...                          transform=data.augment.standard("fashion-mnist"))
>>> for x, y in loader: ...                           # (64, 28, 28, 1) float32 [0, 1], (64,) int64

Modules: ``dataset`` (Dataset, ArrayDataset), ``loader`` (DataLoader), ``sources``
(named data sets, ``load``, ``info``), ``idx`` / ``folder`` / ``h5`` (file readers),
``augment`` (augmentations).  The command line is :mod:`strided.cli.data`.
"""
from . import augment
from .augment import (ColorShift, Compose, HorizontalFlip, PCAColor, RandomCrop, Rotate,
                      Shear, VerticalFlip)
from .dataset import ArrayDataset, Dataset, stratified_split_indices
from .errors import DatasetFileError, DatasetUnavailable, UnreadableImagesWarning
from .folder import load_image_folder
from .h5 import load_h5
from .idx import IDXError, read_idx, write_idx
from .loader import DataLoader
from .sources import (DATASETS, FASHION_CLASSES, DataSource, DatasetInfo, digits,
                      fashion_mnist, info, lfw_faces, load, mnist_5k)
from . import scenes  # noqa: E402  (adds the generated sets, digit-scenes ..., to DATASETS)

__all__ = [
    "Dataset", "ArrayDataset", "stratified_split_indices", "DataLoader",
    "DATASETS", "DataSource", "DatasetInfo", "load", "info", "fashion_mnist", "mnist_5k",
    "digits", "lfw_faces", "load_image_folder", "load_h5", "FASHION_CLASSES",
    "read_idx", "write_idx", "IDXError", "DatasetUnavailable", "DatasetFileError", "UnreadableImagesWarning",
    "augment", "HorizontalFlip", "VerticalFlip", "RandomCrop", "Rotate", "Shear",
    "ColorShift", "PCAColor", "Compose",
]
