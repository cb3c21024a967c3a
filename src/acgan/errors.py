"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class AcganError(Exception):
    """A problem with the user's input or environment, with an actionable one-line message."""


class DataError(AcganError):
    """A data set is missing, unreadable or fails verification."""


class CheckpointError(AcganError):
    """A checkpoint is missing, unreadable or inconsistent with its configuration."""


class TrainingDiverged(AcganError):
    """A loss became NaN or infinite; training stopped before writing anything further."""
