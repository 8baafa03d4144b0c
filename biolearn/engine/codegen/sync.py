"""Thread synchronisation for the multi-threaded kernels: atomics and a spinning barrier.

The threaded loop (:data:`biolearn.engine.codegen.numba_cpu.RUN_STEPS_MT`) runs one Numba
function per thread for a whole run, so the threads meet at a barrier a few times per time step
(a few hundred nanoseconds each) instead of starting a parallel region per phase (microseconds).
Numba has no CPU atomics, so the three it needs are LLVM instructions emitted through
:func:`numba.extending.intrinsic`. Sequentially consistent read-modify-writes and acquire loads
order every ordinary load and store around them, so what one thread wrote before a barrier is
what the others read after it.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


def _item_pointer(context, builder, aryty, ary, idx):  # noqa: ANN001, ANN202 - codegen API
    arr = context.make_array(aryty)(context, builder, ary)
    return cgutils.get_item_pointer(context, builder, aryty, arr, [idx])


@intrinsic
def atomic_add(typingctx, arr, idx, val):  # noqa: ANN001, ANN201, ARG001 - Numba intrinsic
    """``arr[idx] += val`` as one atomic instruction (int64); returns the old value."""
    sig = types.int64(arr, idx, val)

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        ptr = _item_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def atomic_load(typingctx, arr, idx):  # noqa: ANN001, ANN201, ARG001 - Numba intrinsic
    """``arr[idx]`` (int64) read with acquire ordering, never cached in a register."""
    sig = types.int64(arr, idx)

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        ptr = _item_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def atomic_store(typingctx, arr, idx, val):  # noqa: ANN001, ANN201, ARG001 - Numba intrinsic
    """``arr[idx] = val`` (int64) with release ordering."""
    sig = types.none(arr, idx, val)

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        ptr = _item_pointer(context, builder, sig.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def sleep_us(typingctx, us):  # noqa: ANN001, ANN201, ARG001 - Numba intrinsic
    """``usleep(us)``: give the core away (a waiter's courtesy when there are more runnable
    threads than cores: the thread it waits for may be the one that needs this core)."""
    sig = types.none(us)

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(32), [ir.IntType(32)]), "usleep")
        builder.call(fn, [builder.trunc(args[0], ir.IntType(32))])
        return context.get_dummy_value()

    return sig, codegen


SPINS = 4000  # busy polls before sleeping (a barrier on free cores takes ~100-300 polls)


@njit(cache=True, nogil=True)
def barrier(bar, n_threads):  # noqa: ANN001, ANN201 - jitted
    """Wait until all ``n_threads`` threads have called this (``bar``: int64[2], count and
    generation, both 0 at first; reusable, sense-reversing by generation). Spins first, then
    sleeps in short naps, so that threads outnumbering free cores still make progress."""
    if n_threads == 1:
        return
    gen = atomic_load(bar, 1)
    if atomic_add(bar, 0, 1) == n_threads - 1:  # the last one in opens the gate
        atomic_store(bar, 0, 0)
        atomic_add(bar, 1, 1)
        return
    k = 0
    while atomic_load(bar, 1) == gen:
        k += 1
        if k >= SPINS:
            sleep_us(20)
