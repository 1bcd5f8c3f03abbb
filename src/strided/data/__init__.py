"""strided.data: data sets from installed packages, a seeded loader, augmentation.

>>> from strided.data import load, DataLoader, augment
>>> train, test = load("fashion-mnist")
>>> loader = DataLoader(train, batch_size=64, shuffle=True, seed=0, transform=augment.standard("fashion-mnist"))
"""
from . import augment
from .dataset import ArrayDataset, Dataset
from .loader import DataLoader
from .sources import DATASETS, DatasetUnavailable, info, load, read_idx

__all__ = ["ArrayDataset", "Dataset", "DataLoader", "load", "info", "DATASETS", "DatasetUnavailable", "read_idx",
           "augment"]
