"""User-facing errors. The CLI prints these as one line, without a traceback."""


class DistillError(Exception):
    """Base class: the message names the problem and the fix."""


class ConfigError(DistillError):
    pass


class DataError(DistillError):
    pass


class CheckpointError(DistillError):
    pass


class CompatibilityError(DistillError):
    """Teacher and student (or their tapped modules) do not fit together."""


class NonFiniteLossError(DistillError):
    pass
