from distill.config.load import dump_config, load_config
from distill.config.schema import (
    DataConfig,
    DistillConfig,
    ExperimentConfig,
    ModelConfig,
    StudentConfig,
    TeacherConfig,
    TrainConfig,
)

__all__ = [
    "DataConfig", "DistillConfig", "ExperimentConfig", "ModelConfig", "StudentConfig", "TeacherConfig",
    "TrainConfig", "dump_config", "load_config",
]
