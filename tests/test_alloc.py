"""keep_freed_memory: repeated large temporaries stop costing page faults; a run's peak memory is
its own, also in a process that ran others before."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mnist_data import mnist_root, needs_mnist

ROOT = Path(__file__).resolve().parents[1]

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


PEAK = textwrap.dedent("""
    import json, sys
    import numpy as np
    from biolearn.alloc import peak_rss_mb, reset_peak_rss
    base = peak_rss_mb()
    x = np.ones(300 * 2**20 // 8)              # 300 MiB touched, then freed
    del x
    after_big = peak_rss_mb()
    ok = reset_peak_rss()
    fresh = peak_rss_mb()
    y = np.ones(40 * 2**20 // 8)               # a second, smaller "run": 40 MiB
    second = peak_rss_mb()
    print(json.dumps([ok, base, after_big, fresh, second]))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs")
def test_peak_memory_starts_afresh_for_each_run_in_one_process():

    ok, base, after_big, fresh, second = json.loads(subprocess.run(
        [sys.executable, "-c", PEAK], capture_output=True, text=True, check=True).stdout)
    if not ok:
        pytest.skip("this kernel does not allow resetting the peak (clear_refs)")
    assert after_big > base + 290                # the first run's 300 MiB peak is seen
    assert fresh < after_big - 250               # ... and forgotten after the reset
    assert fresh + 35 < second < fresh + 60      # the second run's own 40 MiB peak


@needs_mnist
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs")
def test_execute_reports_each_runs_own_peak(tmp_path):
    """Two runs in one process (as in a sweep's worker): the second run's peak_rss_mb.main is
    its own, not the 300 MiB the process held before it."""
    script = textwrap.dedent(f"""
        import json
        import numpy as np
        from biolearn.config import load_config
        from biolearn.runner import execute
        cfg = load_config({str(ROOT / "configs" / "stdp_mnist_smoke.yaml")!r},
                          ["data.n_train=20", "data.n_test=10", "params.output.figures=false"])
        go = dict(quiet=True, data_root={mnist_root()!r})
        a = execute(cfg, out_dir={str(tmp_path / "a")!r}, **go)["metrics"]["peak_rss_mb"]
        x = np.ones(300 * 2**20 // 8)
        del x
        b = execute(cfg, out_dir={str(tmp_path / "b")!r}, **go)["metrics"]["peak_rss_mb"]
        from biolearn.alloc import reset_peak_rss
        print(json.dumps([a["main"], b["main"], reset_peak_rss()]))
    """)
    a, b, ok = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True,
                                     text=True, check=True).stdout.splitlines()[-1])
    if not ok:
        pytest.skip("this kernel does not allow resetting the peak (clear_refs)")
    assert b < a + 100, (a, b)
