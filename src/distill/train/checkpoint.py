"""Old home of the checkpoint format and atomic writes; kept as re-exports.

The checkpoint format lives in ``distill.checkpoint`` and atomic writes in ``distill.io``
(the bottom layer, see docs/architecture.md).
"""

from distill.checkpoint import (  # noqa: F401
    flatten_optimizer,
    load_checked,
    load_tensors,
    load_weights_into,
    model_weights,
    non_finite,
    save_tensors,
    state_mismatch,
    unflatten_optimizer,
)
from distill.io import atomic_write, atomic_write_text  # noqa: F401
