"""The experiment config. Every field has a default that works; unknown keys are errors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentConfig(Strict):
    crop_padding: int = Field(2, ge=0, description="pixels of padding for random crops (0 = no crop)")
    hflip: bool = Field(True, description="random horizontal flips")


class TransferSetConfig(Strict):
    """Augmented unlabelled sentences for the distilled student only (Tang et al. 2019)."""

    size_multiplier: int = Field(4, ge=0, description="augmented sentences per training sentence (0 = none)")
    mask_prob: float = Field(0.1, ge=0, le=1, description="probability a word becomes [MASK]")
    ngram_prob: float = Field(0.25, ge=0, le=1, description="probability only a random n-gram is kept")
    swap_prob: float = Field(0.1, ge=0, le=1, description="probability a word is swapped for a vocabulary word")
    max_ngram: int = Field(5, ge=1)
    seed: int = 0


class TextConfig(Strict):
    """Sentence classification (data.dataset: sst2, trec or text_files)."""

    root: str | None = Field(None, description="directory of the files; default $DISTILL_TEXT_DIR or "
                                               "../shared/data/text relative to the project root")
    train: str | None = Field(None, description="text_files: train file (.txt LABEL SENTENCE, .csv, .jsonl)")
    val: str | None = Field(None, description="text_files: validation file; null = carve val_fraction from train")
    test: str | None = Field(None, description="text_files: test file; null = carve test_fraction from train")
    text_column: str = "text"
    label_column: str = "label"
    label_names: list[str] | None = Field(None, description="class names; labels may then be given by name")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="share of train carved for validation when no file")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="share of train carved for test when no file")
    max_length: int = Field(64, ge=4, description="token ids per sentence (longer ones are truncated)")
    tokenizer: str | None = Field(None, description="tokenizer directory; null = the teacher model's own")
    transfer_set: TransferSetConfig | None = Field(None, description="null = distil on the training set only")


class DataConfig(Strict):
    dataset: Literal["fashion_mnist", "sst2", "trec", "text_files"] = "fashion_mnist"
    text: TextConfig = Field(default_factory=TextConfig, description="options of the text datasets")
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


class DistillConfig(Strict):
    method: str = "kd"
    options: dict[str, Any] = Field(default_factory=dict, description="the method's options, e.g. temperature")


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
    data: DataConfig = Field(default_factory=DataConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    baseline: bool = Field(True, description="also train the student alone, with the same recipe")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
