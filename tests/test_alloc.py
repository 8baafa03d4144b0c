"""keep_freed_memory: repeated large temporaries stop costing page faults."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from biolearn.alloc import keep_freed_memory
    ok = keep_freed_memory() if sys.argv[1] == "on" else None
    x = np.ones((4096, 2048))   # 64 MiB: above the largest default mmap threshold (32 MiB)
    for _ in range(3):
        y = x * 2.0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        y = x * 2.0                             # a fresh 64 MiB block each time
        del y
    print(ok, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_blocks_are_reused_without_page_faults():
    ok, on = _faults("on")
    _, off = _faults("off")
    if ok != "True":
        pytest.skip("C library without mallopt")
    if off < 200:
        pytest.skip(f"this kernel faults in fresh blocks cheaply ({off} faults)")
    assert on < off / 20                        # default: every fresh block is faulted in


def test_takes_effect_once_on_glibc_and_is_a_no_op_elsewhere(monkeypatch):
    import platform

    from biolearn import alloc

    monkeypatch.setattr(alloc, "_done", None)
    first = alloc.keep_freed_memory()
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert first is True  # both mallopt calls succeeded
    calls = []
    monkeypatch.setattr(alloc.ctypes, "CDLL", lambda *a, **k: calls.append(a))
    assert alloc.keep_freed_memory() is first and calls == []  # the C library is not asked again
    monkeypatch.setattr(alloc, "_done", None)
    monkeypatch.setattr(alloc.sys, "platform", "darwin")
    assert alloc.keep_freed_memory() is False and calls == []
