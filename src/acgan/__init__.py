"""acgan: train, evaluate, sample from and serve Auxiliary Classifier GANs (AC-GAN) with PyTorch.

from acgan import load_generator
g = load_generator("runs/mnist")              # a run directory, checkpoint directory or .safetensors
images = g.sample(["7", "7", "3"], seed=1)     # (3, 1, 28, 28) float in [-1, 1]
"""

from acgan.config import TrainConfig
from acgan.data import DatasetInfo, load_dataset
from acgan.evaluation.samples import evaluate_samples
from acgan.models import PRESETS, Discriminator, Generator, ModelConfig
from acgan.sampling import TrainedGenerator, Truncation, load_generator, make_latents, sample, sampling_precision
from acgan.training import train
from acgan.version import __version__

__all__ = [
    "PRESETS",
    "DatasetInfo",
    "Discriminator",
    "Generator",
    "ModelConfig",
    "TrainConfig",
    "TrainedGenerator",
    "Truncation",
    "__version__",
    "evaluate_samples",
    "load_dataset",
    "load_generator",
    "make_latents",
    "sample",
    "sampling_precision",
    "train",
]
