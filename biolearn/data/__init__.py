"""Datasets and input encoders.

``load_mnist`` / ``load_fashion_mnist`` find, verify (SHA-256 of the uncompressed IDX bytes) and,
when missing, download the standard IDX files; ``poisson_rates`` / ``poisson_spikes`` turn images
into Poisson input (rates in Hz, steps in ms). Synthetic data with a known ground truth (bars,
Gaussian and spiked-covariance samples) is in :mod:`biolearn.data.synthetic`.
"""

from biolearn.data.encoders import (
    DIEHL_COOK_MAX_RATE_HZ,
    HAO_MAX_RATE_HZ,
    crop,
    kernel_rng_state,
    poisson_events,
    poisson_rates,
    poisson_spikes,
    poisson_step,
    scale_to_mean,
    spike_probability,
    to_float,
    uniform01,
)
from biolearn.data.idx import MAGIC_IMAGES, MAGIC_LABELS, parse_idx, read_idx, write_idx
from biolearn.data.mnist import (
    DATASETS,
    DatasetSpec,
    IdxFileSpec,
    array_cache_dir,
    data_roots,
    download_dataset,
    find_dataset,
    load_fashion_mnist,
    load_for_run,
    load_mnist,
)

__all__ = [
    "DATASETS",
    "DIEHL_COOK_MAX_RATE_HZ",
    "HAO_MAX_RATE_HZ",
    "MAGIC_IMAGES",
    "MAGIC_LABELS",
    "DatasetSpec",
    "IdxFileSpec",
    "array_cache_dir",
    "crop",
    "data_roots",
    "download_dataset",
    "find_dataset",
    "kernel_rng_state",
    "load_fashion_mnist",
    "load_for_run",
    "load_mnist",
    "parse_idx",
    "poisson_events",
    "poisson_rates",
    "poisson_spikes",
    "poisson_step",
    "read_idx",
    "scale_to_mean",
    "spike_probability",
    "to_float",
    "uniform01",
    "write_idx",
]
