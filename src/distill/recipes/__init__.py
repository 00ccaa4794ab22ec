"""Old home of the training modes; they now live in ``distill.pipeline.modes`` (one file each).

``MODES`` and ``run_mode`` are kept for code written against the first API; new modes are a file
in ``pipeline/modes/`` with ``@register_mode("name")`` (see docs/architecture.md).
"""

from distill.pipeline.modes import MODES, load_modes, run_mode  # noqa: F401

load_modes()
