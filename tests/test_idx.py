import gzip

import pytest
import torch

from distill.data.fashion_mnist import FILES, load_fashion_mnist
from distill.data.idx import read_idx, write_idx
from distill.errors import DataError


def test_round_trip_gz_and_plain(tmp_path):
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    for name in ("x.gz", "x"):
        write_idx(tmp_path / name, images)
        assert torch.equal(read_idx(tmp_path / name, expected_ndim=3), images)


def test_header_bytes_are_big_endian(tmp_path):
    labels = torch.tensor([3, 1, 4], dtype=torch.uint8)
    write_idx(tmp_path / "l", labels)
    raw = (tmp_path / "l").read_bytes()
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])


def test_bad_magic(tmp_path):
    (tmp_path / "bad").write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]))
    with pytest.raises(DataError, match="not an unsigned-byte IDX file"):
        read_idx(tmp_path / "bad")


def test_truncated_payload(tmp_path):
    write_idx(tmp_path / "t", torch.zeros(4, 2, 2, dtype=torch.uint8))
    raw = (tmp_path / "t").read_bytes()
    (tmp_path / "t").write_bytes(raw[:-3])
    with pytest.raises(DataError, match=r"header says shape \(4, 2, 2\) \(16 bytes\) but 13 bytes follow"):
        read_idx(tmp_path / "t")


def test_corrupt_gzip(tmp_path):
    payload = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2]))
    (tmp_path / "c.gz").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(DataError, match="corrupt"):
        read_idx(tmp_path / "c.gz")


def test_wrong_ndim(tmp_path):
    write_idx(tmp_path / "l", torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(DataError, match="has 1 dimensions, expected 3"):
        read_idx(tmp_path / "l", expected_ndim=3)


def test_missing_dataset_names_file_and_fix(tmp_path):
    with pytest.raises(DataError) as err:
        load_fashion_mnist(tmp_path)
    message = str(err.value)
    assert "train-images-idx3-ubyte.gz" in message and "apt-get install dataset-fashion-mnist" in message
    assert "\n" not in message


def test_wrong_count_is_refused(tmp_path):
    for key, stem in FILES.items():
        shape = (10, 28, 28) if key.endswith("images") else (10,)
        write_idx(tmp_path / f"{stem}.gz", torch.zeros(shape, dtype=torch.uint8))
    with pytest.raises(DataError, match="holds 10 items, Fashion-MNIST train has 60000"):
        load_fashion_mnist(tmp_path)


def test_env_var_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="nowhere"):
        load_fashion_mnist()


def test_real_fashion_mnist(fashion_mnist_root):
    data = load_fashion_mnist(fashion_mnist_root)
    assert data["train_images"].shape == (60000, 28, 28) and data["train_images"].dtype == torch.uint8
    assert data["test_labels"].shape == (10000,)
    assert torch.bincount(data["train_labels"].long()).tolist() == [6000] * 10
