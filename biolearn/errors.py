"""The one exception type for errors a user can cause (bad config, missing data, unreadable file).

The CLI prints such an error as a single line ``error: <what>, <where>, <how to fix>`` and exits
with a non-zero code; the traceback is shown only with ``--debug``.
"""

from __future__ import annotations


class BiolearnError(Exception):
    """A user-facing error. Build the message as ``what, where, how to fix``."""

    def __init__(self, what: str, where: str | None = None, fix: str | None = None):
        self.what, self.where, self.fix = what, where, fix
        super().__init__(", ".join(p for p in (what, where, fix) if p))


def missing_extra(package: str, extra: str) -> BiolearnError:
    """Error for an optional dependency that is not installed."""
    return BiolearnError(
        f"{package} is not installed",
        "optional dependency",
        f"install it with: pip install 'biolearn[{extra}]'",
    )


def require_torch():
    """Import torch lazily; without it, raise the one-line ``biolearn[torch]`` error."""
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise missing_extra("torch", "torch") from e
    return torch
