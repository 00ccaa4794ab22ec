"""Small text students: the training data's vocabulary (others -> [UNK]) and PCA-initialised narrow
embeddings; the mapping round-trips through the checkpoint, `distill evaluate` and the ONNX file."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
import yaml

from distill.cli import main
from distill.data.run_data import run_data
from distill.errors import ConfigError
from distill.evaluate.checkpoint_eval import load_checkpoint_model
from distill.models import hf
from distill.models.predict import predict
from distill.models.registry import build_model
from distill.models.text_vocab import TokenMap, pca
from distill.train.checkpoint import load_tensors

from .text_helpers import tiny_model_dir

TRAIN_WORDS = ("good", "great", "fun", "bad", "awful", "boring", "a", "the", "movie", "film", "is", "was")
TEST_ONLY = ("city", "name", "where")  # in the tokenizer, never in the training data: [UNK] for the student


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny-bert"), layers=2))


def lines(n: int, rng: random.Random, extra=()) -> str:
    out = []
    for _ in range(n):
        label = rng.randrange(2)
        words = [rng.choice(TRAIN_WORDS[6:] + tuple(extra)) for _ in range(rng.randint(2, 5))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(TRAIN_WORDS[:3] if label else TRAIN_WORDS[3:6]))
        out.append(f"{label} {' '.join(words)}\n")
    return "".join(out)


def test_token_map_sends_kept_ids_to_their_rows_and_the_rest_to_unk():
    vocab = TokenMap([0, 2, 3, 9, 17], teacher_vocab_size=20, unk_id=1)
    assert vocab.kept.tolist() == [0, 1, 2, 3, 9, 17]  # [UNK] is always kept
    ids = torch.tensor([[2, 9, 5, 17, 0], [3, 1, 19, 0, 0]])
    assert vocab(ids).tolist() == [[2, 4, 1, 5, 0], [3, 1, 1, 0, 0]]
    with pytest.raises(ConfigError, match="outside the tokenizer's 0..19"):
        TokenMap([0, 25], 20, 1)


def test_pca_is_the_best_low_rank_copy_of_the_table():
    torch.manual_seed(0)
    weight = torch.randn(200, 3) @ torch.randn(3, 16) + 0.01 * torch.randn(200, 16) + 2.0
    coordinates, directions, mean = pca(weight, 3)
    assert coordinates.shape == (200, 3) and directions.shape == (3, 16)
    reconstruction = coordinates @ directions + mean
    # Eckart-Young, computed independently with numpy: the rank-3 error is the trailing singular values' energy
    centred = weight.numpy().astype(np.float64) - weight.numpy().astype(np.float64).mean(0)
    singular = np.linalg.svd(centred, compute_uv=False)
    expected = float((singular[3:] ** 2).sum())
    assert float(((reconstruction - weight) ** 2).sum()) == pytest.approx(expected, rel=1e-3)
    with pytest.raises(ConfigError, match="embedding_dim must lie in 1..16"):
        pca(weight, 17)


@pytest.mark.parametrize("name", ["textcnn", "bilstm"])
def test_students_keep_only_the_data_vocabulary_and_start_from_the_teachers_pca(model_dir, name):
    tokenizer = hf.load_tokenizer(model_dir)
    kept = sorted(tokenizer.convert_tokens_to_ids(list(TRAIN_WORDS)) + tokenizer.all_special_ids)
    options = {"filters": 4, "kernel_sizes": [2, 3]} if name == "textcnn" else {"hidden": 8, "fc": 6}
    model = build_model(name, (10,), 2, teacher_path=model_dir, vocabulary="data", data_vocabulary=kept,
                        vocab_size=len(tokenizer), pad_id=0, unk_id=tokenizer.unk_token_id, embedding_dim=5,
                        **options).eval()
    assert model.embedding.weight.shape == (len(kept), 5)
    teacher = hf.teacher_embeddings(model_dir)[torch.tensor(kept)]
    centred = teacher - teacher.mean(0)
    # row r holds the PCA coordinates of teacher token kept[r]: its inner products are preserved to rank 5
    gram = model.embedding.weight @ model.embedding.weight.T
    u, s, vh = torch.linalg.svd(centred.double(), full_matrices=False)
    best = (u[:, :5] * s[:5]) @ (u[:, :5] * s[:5]).T
    assert torch.allclose(gram.double(), best, atol=1e-4)

    unk = tokenizer.unk_token_id
    city = tokenizer.convert_tokens_to_ids("city")
    good = tokenizer.convert_tokens_to_ids("good")
    with torch.no_grad():
        oov = model(torch.tensor([[2, good, city, 3, 0]]))
        as_unk = model(torch.tensor([[2, good, unk, 3, 0]]))
    assert torch.equal(oov, as_unk)
    with pytest.raises(ConfigError, match="vocabulary: data needs the token ids of the training data"):
        build_model(name, (10,), 2, teacher_path=model_dir, vocabulary="data", **options)
    with pytest.raises(ConfigError, match="embedding_dim <= 32"):
        build_model(name, (10,), 2, teacher_path=model_dir, embedding_dim=40, **options)


def test_transformer_student_with_a_small_factorised_table_starts_at_the_rank_k_teacher_rows(model_dir):
    tokenizer = hf.load_tokenizer(model_dir)
    kept = sorted(tokenizer.convert_tokens_to_ids(list(TRAIN_WORDS)) + tokenizer.all_special_ids)
    model = build_model("text_transformer", (10,), 2, teacher_path=model_dir, init_from_teacher={"layers": [0]},
                        vocabulary="data", data_vocabulary=kept, vocab_size=len(tokenizer),
                        unk_id=tokenizer.unk_token_id, embedding_dim=6)
    words = model.encoder.embeddings.word_embeddings
    assert words.embedding.weight.shape == (len(kept), 6) and words.projection.weight.shape == (32, 6)
    teacher = hf.teacher_embeddings(model_dir)
    good = tokenizer.convert_tokens_to_ids("good")
    rows = teacher[torch.tensor(kept)].double()
    u, s, vh = torch.linalg.svd(rows - rows.mean(0), full_matrices=False)
    rank6 = (u[:, :6] * s[:6]) @ vh[:6] + rows.mean(0)
    with torch.no_grad():
        got = words(torch.tensor([good, tokenizer.convert_tokens_to_ids("city")]))
    assert torch.allclose(got[0].double(), rank6[kept.index(good)], atol=1e-4)
    assert torch.allclose(got[1].double(), rank6[kept.index(tokenizer.unk_token_id)], atol=1e-4)
    full_width = build_model("text_transformer", (10,), 2, teacher_path=model_dir, init_from_teacher={"layers": [0]},
                             vocabulary="data", data_vocabulary=kept, vocab_size=len(tokenizer))
    with torch.no_grad():
        assert torch.equal(full_width.encoder.embeddings.word_embeddings(torch.tensor([good]))[0], teacher[good])
    assert full_width.encoder.embeddings.word_embeddings.projection is None


@pytest.fixture(scope="module")
def small_run(model_dir, tmp_path_factory):
    """`distill run` of a TextCNN with the data's vocabulary and 8-dim PCA embeddings, exported to ONNX."""
    root = tmp_path_factory.mktemp("vocab-run")
    rng = random.Random(0)
    (root / "train.txt").write_text(lines(200, rng))
    (root / "val.txt").write_text(lines(40, rng))
    (root / "test.txt").write_text(lines(60, rng, extra=TEST_ONLY))
    cfg = {
        "name": "tiny-vocab",
        "data": {"dataset": "text_files", "text": {"root": str(root), "train": "train.txt", "val": "val.txt",
                                                   "test": "test.txt", "max_length": 12, "length_buckets": True}},
        "teacher": {"model": {"name": "hf_classifier", "path": model_dir},
                    "train": {"epochs": 1, "batch_size": 32, "optimizer": "adamw", "lr": 3e-3}},
        "student": {"model": {"name": "textcnn", "filters": 8, "kernel_sizes": [2, 3], "vocabulary": "data",
                              "embedding_dim": 8},
                    "train": {"epochs": 3, "batch_size": 32, "optimizer": "adamw", "lr": 1e-2}},
        "distill": {"method": "kd"}, "baseline": False, "evaluate": {"latency": False},
        "runtime": {"device": "cpu", "threads": 1},
        "export": {"enabled": True, "latency_repeats": 2, "latency_batch": 4},
    }
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run_dir = root / "run"
    assert main(["run", str(root / "cfg.yaml"), "--out", str(run_dir), "--quiet"]) == 0
    return run_dir


def test_vocabulary_round_trips_through_checkpoint_evaluate_and_onnx(small_run, model_dir, capsys):
    pytest.importorskip("onnxruntime")
    from distill.export.runtime import metadata, run_batches, session

    data = run_data(small_run)
    tokenizer = hf.load_tokenizer(model_dir)
    expected_kept = sorted(set(torch.unique(data.train.inputs).tolist()) | set(tokenizer.all_special_ids))
    test_only = tokenizer.convert_tokens_to_ids(list(TEST_ONLY))
    assert set(test_only) & set(torch.unique(data.test.inputs).tolist())  # the test split has unseen tokens
    assert not set(test_only) & set(expected_kept)

    checkpoint = small_run / "checkpoints" / "student-best.safetensors"
    tensors, meta = load_tensors(checkpoint)
    assert meta["model"]["options"]["data_vocabulary"] == expected_kept
    assert tensors["vocabulary.kept"].tolist() == expected_kept
    model, _ = load_checkpoint_model(checkpoint)  # rebuilt from the checkpoint alone
    assert model.vocabulary.kept.tolist() == expected_kept and model.embedding.weight.shape == (len(expected_kept), 8)
    teacher_meta = load_tensors(small_run / "checkpoints" / "teacher-best.safetensors")[1]
    assert "data_vocabulary" not in teacher_meta["model"]["options"]

    logits = predict(model, data.test.inputs)
    unk = torch.where(torch.isin(data.test.inputs, torch.tensor(expected_kept)), data.test.inputs,
                      torch.tensor(tokenizer.unk_token_id))
    assert torch.allclose(predict(model, unk), logits, atol=1e-6)  # unseen tokens are read as [UNK]

    summary = json.loads((small_run / "summary.json").read_text())
    accuracy = summary["models"]["student"]["accuracy"]
    assert accuracy == pytest.approx(float((logits.argmax(1) == data.test.targets).float().mean()))
    capsys.readouterr()
    assert main(["evaluate", str(checkpoint), "--no-latency"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == pytest.approx(accuracy)
    assert result["model"]["options"]["data_vocabulary"] == f"{len(expected_kept)} token ids"

    onnx_meta = metadata(small_run / "student.onnx")
    assert json.loads(onnx_meta["distill.vocabulary"]) == expected_kept
    assert int(onnx_meta["distill.unk_id"]) == tokenizer.unk_token_id
    # the graph takes the tokenizer's ids and maps them itself: same logits as the checkpoint
    onnx_logits = run_batches(session(small_run / "student.onnx"), data.test.inputs.numpy(), 16)
    np.testing.assert_allclose(onnx_logits, logits.numpy(), atol=1e-4)
    assert summary["export"]["int8"]["size_bytes"] < summary["export"]["fp32"]["size_bytes"]


def test_int8_export_keeps_the_small_table_quantized(small_run):
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(small_run / "student.int8.onnx")).graph
    tables = {i.name: (i.data_type, list(i.dims)) for i in graph.initializer}
    rows = len(json.loads(next(p.value for p in onnx.load(str(small_run / "student.onnx")).metadata_props
                               if p.key == "distill.vocabulary")))
    assert tables["embedding.weight_quantized"] == (onnx.TensorProto.UINT8, [rows, 8])


def test_text_runs_train_on_length_bucketed_batches(small_run):
    from distill.config import load_config
    from distill.data.batches import InMemoryBatches
    from distill.data.text import BucketedBatches
    from distill.pipeline.experiment import Experiment
    from distill.pipeline.stages import batches as training_batches

    cfg = load_config(small_run / "config.yaml")
    experiment = Experiment(cfg, small_run, quiet=True)
    experiment.data = run_data(small_run)
    experiment.device = torch.device("cpu")  # what Experiment.setup() resolves; this test does not run it
    batches = training_batches(experiment, cfg.student.train)
    assert isinstance(batches, BucketedBatches)
    seen = sorted(i for batch in batches.epoch(0) for i in batch.index.tolist())
    assert seen == list(range(len(experiment.data.train)))
    cfg.data.text.length_buckets = False
    assert isinstance(training_batches(experiment, cfg.student.train), InMemoryBatches)
