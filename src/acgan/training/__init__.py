"""Training: the step functions and the loop."""

from acgan.training.loop import TrainingInterrupted, TrainResult, new_run_dir, read_run_config, train

__all__ = ["TrainResult", "TrainingInterrupted", "new_run_dir", "read_run_config", "train"]
