"""Old home of the parameter importances; they now live in ``distill.report.importance``."""

from distill.report.importance import eta_squared, param_importances  # noqa: F401
