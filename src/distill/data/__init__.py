from distill.data.augment import AugmentParams, BatchAugment
from distill.data.batches import BatchSource, InMemoryBatches, LoaderBatches
from distill.data.bundle import DataBundle, Split, from_tensors, load_data
from distill.data.fashion_mnist import load_fashion_mnist
from distill.data.idx import read_idx, write_idx
from distill.data.lazy import LazyInputs
from distill.data.registry import DATASETS, DatasetSpec, dataset_spec, register_dataset
from distill.data.stream import StreamBatches

__all__ = [
    "DATASETS", "AugmentParams", "BatchAugment", "BatchSource", "DataBundle", "DatasetSpec", "InMemoryBatches",
    "LazyInputs", "LoaderBatches", "StreamBatches", "Split", "dataset_spec", "from_tensors", "register_dataset", "load_data", "load_fashion_mnist", "read_idx", "write_idx",
]
