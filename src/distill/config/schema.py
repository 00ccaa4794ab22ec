"""The experiment config. Every field has a default that works; unknown keys are errors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentConfig(Strict):
    crop_padding: int = Field(2, ge=0, description="pixels of padding for random crops (0 = no crop)")
    hflip: bool = Field(True, description="random horizontal flips")


class DataConfig(Strict):
    dataset: Literal["fashion_mnist", "diabetes"] = Field(
        "fashion_mnist", description="diabetes: scikit-learn's regression data (task: regression)")
    root: str | None = Field(None, description="directory of the IDX files; default $DISTILL_FASHION_MNIST_DIR "
                                               "or /usr/share/datasets/fashion-mnist")
    val_size: int = Field(5000, ge=1, description="samples carved from train for validation (fixed seed)")
    train_subset: int | None = Field(None, ge=1, description="use only this many training samples")
    test_subset: int | None = Field(None, ge=1, description="use only this many test samples")
    augment: AugmentConfig | None = Field(default_factory=AugmentConfig, description="null turns augmentation off")
    split_seed: int = 0


class ModelConfig(Strict):
    name: str = "cnn"
    options: dict[str, Any] = Field(default_factory=dict, description="keyword options of the model factory")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        # Allow `model: cnn` and `model: {name: cnn, channels: [8, 16]}` as well as the long form.
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "options" not in value:
            value = dict(value)
            name = value.pop("name", "cnn")
            return {"name": name, "options": value}
        return value


class TrainConfig(Strict):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    step_size: int = Field(30, ge=1, description="epochs between decays (step schedule)")
    gamma: float = Field(0.1, gt=0, description="decay factor (step schedule)")
    warmup_epochs: float = Field(0.0, ge=0, description="linear warm-up length, may be fractional")
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm; null = no clipping")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="for supervised training only")


class TeacherConfig(Strict):
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(
        name="cnn", options={"channels": [32, 64, 256], "hidden": 512}))
    checkpoint: str | None = Field(None, description="load these weights (safetensors) instead of training")
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=4))


class StudentConfig(Strict):
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(name="cnn", options={"channels": [16, 32, 64]}))
    train: TrainConfig = Field(default_factory=TrainConfig)


class MethodSpec(Strict):
    """One entry of ``distill.methods``: a method whose losses are added with ``weight``."""

    method: str
    weight: float = 1.0
    options: dict[str, Any] = Field(default_factory=dict)


class AssistantConfig(Strict):
    """The teacher assistant of ``mode: takd`` (teacher -> assistant -> student)."""

    model: ModelConfig = Field(default_factory=lambda: ModelConfig(name="cnn", options={"channels": [24, 48, 96]}))
    train: TrainConfig = Field(default_factory=TrainConfig)


class DistillConfig(Strict):
    method: str = "kd"
    options: dict[str, Any] = Field(default_factory=dict, description="the method's options, e.g. temperature")
    methods: list[MethodSpec] | None = Field(None, description="several methods, losses summed with weights "
                                                               "(instead of method/options)")
    mode: Literal["offline", "online", "born_again", "takd", "reverse"] = Field(
        "offline", description="offline: frozen trained teacher; see docs/methods.md for the others")
    generations: int = Field(2, ge=1, description="born_again: distilled generations after generation 0")
    assistant: AssistantConfig | None = Field(None, description="takd: the assistant model and its recipe")

    @model_validator(mode="before")
    @classmethod
    def _one_method_form(cls, value: Any) -> Any:
        # `methods:` replaces `method:`/`options:`; it is stored as `method: combined` so a saved config reloads.
        if isinstance(value, dict) and value.get("methods") is not None:
            if value.get("method", "combined") != "combined" or value.get("options"):
                raise ValueError("give either 'method'/'options' or 'methods' (a list), not both")
            if not value["methods"]:
                raise ValueError("'methods' needs at least one {method, weight, options} entry")
            value = {**value, "method": "combined", "options": {}}
        elif isinstance(value, dict) and value.get("method") == "combined":
            raise ValueError("method 'combined' is written as 'methods: [{method: kd, weight: 1}, ...]'")
        return value


class EvaluateConfig(Strict):
    latency: bool = True
    latency_repeats: int = Field(20, ge=1)
    eval_batch_size: int = Field(1000, ge=1)


class RuntimeConfig(Strict):
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ...")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; null = torch's default")
    channels_last: bool = Field(True, description="NHWC memory layout for conv models (faster on CPU)")


class ExperimentConfig(Strict):
    name: str = "experiment"
    seed: int = 0
    task: Literal["classification", "regression"] = "classification"
    data: DataConfig = Field(default_factory=DataConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    baseline: bool = Field(True, description="also train the student alone, with the same recipe")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
