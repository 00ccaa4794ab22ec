"""Old home of the shared stages; they now live in ``distill.pipeline.stages``."""

from distill.pipeline.building import params  # noqa: F401
from distill.pipeline.stages import baseline, distil, train_on_labels  # noqa: F401
from distill.pipeline.stages import prepare_teacher as ready_teacher  # noqa: F401
