"""Old home of the experiment; it now lives in ``distill.pipeline`` (kept as re-exports)."""

from distill.pipeline.building import build_from_spec, check_compatible, data_context, model_meta  # noqa: F401
from distill.pipeline.experiment import Experiment, resolve_device, run_experiment  # noqa: F401
from distill.pipeline.run_folder import check_same_config, latest_run_dir, new_run_dir  # noqa: F401
from distill.pipeline.stages import Stage  # noqa: F401
