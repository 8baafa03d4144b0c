"""biolearn: event-driven spiking and biologically plausible learning.

Units everywhere: milliseconds (ms) and millivolts (mV) unless a name says otherwise.
"""

__version__ = "0.1.0"

from biolearn.errors import BiolearnError  # noqa: E402

__all__ = ["BiolearnError", "__version__"]
