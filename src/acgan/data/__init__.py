"""Data sets: reading, locating, verifying and loading labelled images."""

from acgan.data.dataset import (
    DatasetInfo,
    ImageDataset,
    dataset_names,
    load_dataset,
    model_range_to_uint8,
    uint8_to_model_range,
)

__all__ = [
    "DatasetInfo",
    "ImageDataset",
    "dataset_names",
    "load_dataset",
    "model_range_to_uint8",
    "uint8_to_model_range",
]
