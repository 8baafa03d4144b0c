"""Files a run writes and reads: streamed SONATA spikes, weights, JSON results, provenance.

``spikes.h5`` follows the SONATA spike format (readable by libsonata, bmtk, pysonata);
``weights.h5`` holds gzip-compressed arrays; ``results.json`` is written atomically.
"""

from biolearn.io.inspect import describe
from biolearn.io.sonata import (
    SONATA_MAGIC,
    SONATA_VERSION,
    SORTING_DTYPE,
    SpikeWriter,
    populations,
    read_presentations,
    read_spikes,
    recover_spike_file,
)
from biolearn.io.store import (
    git_info,
    load_weights,
    provenance,
    read_json,
    save_weights,
    to_jsonable,
    utc_now,
    write_json_atomic,
)

__all__ = [
    "SONATA_MAGIC",
    "SONATA_VERSION",
    "SORTING_DTYPE",
    "SpikeWriter",
    "describe",
    "git_info",
    "load_weights",
    "populations",
    "provenance",
    "read_json",
    "read_presentations",
    "read_spikes",
    "recover_spike_file",
    "save_weights",
    "to_jsonable",
    "utc_now",
    "write_json_atomic",
]
