"""Training: the step functions and the loop."""

from acgan.errors import TrainingInterrupted
from acgan.training.loop import TrainResult, new_run_dir, read_run_config, train

__all__ = ["TrainResult", "TrainingInterrupted", "new_run_dir", "read_run_config", "train"]
