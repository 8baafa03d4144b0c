"""Thread synchronisation for the multi-threaded kernels: atomics and a barrier.

The threaded loop (:data:`biolearn.engine.codegen.numba_cpu.RUN_STEPS_MT`) runs one Numba
function per thread for a whole run, so the threads meet at a barrier a few times per time step
(a few hundred nanoseconds each) instead of starting a parallel region per phase (microseconds).
Numba has no CPU atomics, so the three it needs are LLVM instructions emitted through
:func:`numba.extending.intrinsic`. Sequentially consistent read-modify-writes and loads
order every ordinary load and store around them, so what one thread wrote before a barrier is
what the others read after it.
"""

from __future__ import annotations

import platform

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
    """``arr[idx]`` (int64) read sequentially consistent, never cached in a register (the
    barrier's sleeper and waker each write one word and then read the other's)."""
    sig = types.int64(arr, idx)

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        ptr = _item_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "seq_cst", 8)

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


_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}.get(
    platform.machine().lower(), -1)  # Linux system call numbers; -1: no futex (nap instead)
_FUTEX_WAIT, _FUTEX_WAKE = 128, 129  # FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE


@intrinsic
def futex(typingctx, arr, idx, op, val):  # noqa: ANN001, ANN201, ARG001 - Numba intrinsic
    """Linux ``futex(&arr[idx], op, val)`` on the low 32 bits of an int64 (little-endian): wait
    while it equals ``val`` (``_FUTEX_WAIT``), or wake ``val`` waiters (``_FUTEX_WAKE``). Where
    there is no futex, a 50 µs ``usleep``."""
    sig = types.int64(arr, idx, op, val)

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        i64 = ir.IntType(64)
        if _SYS_FUTEX < 0:
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(32), [ir.IntType(32)]), "usleep")
            builder.call(fn, [ir.Constant(ir.IntType(32), 50)])
            return ir.Constant(i64, 0)
        ptr = _item_pointer(context, builder, sig.args[0], args[0], args[1])
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i64, [i64], var_arg=True), "syscall")
        zero = ir.Constant(i64, 0)
        return builder.call(fn, [ir.Constant(i64, _SYS_FUTEX), builder.ptrtoint(ptr, i64),
                                 args[2], builder.and_(args[3], ir.Constant(i64, 0xFFFFFFFF)),
                                 zero, zero, zero])

    return sig, codegen


SPINS = 200000  # polls before sleeping (threads on free cores meet within ~100-300 polls)


@njit(cache=True, nogil=True)
def barrier(bar, n_threads):  # noqa: ANN001, ANN201 - jitted
    """Wait until all ``n_threads`` threads have called this. ``bar``: int64[3], all 0 at first
    (count, generation, sleepers); reusable. A waiter spins a little, then sleeps on a futex until
    the last thread in bumps the generation and wakes it, so threads outnumbering free cores
    still make progress without burning the core the others need."""
    if n_threads == 1:
        return
    gen = atomic_load(bar, 1)
    if atomic_add(bar, 0, 1) == n_threads - 1:  # the last one in opens the gate
        atomic_store(bar, 0, 0)
        atomic_add(bar, 1, 1)
        if atomic_load(bar, 2) > 0:
            futex(bar, 1, _FUTEX_WAKE, 2147483647)
        return
    for _ in range(SPINS):
        if atomic_load(bar, 1) != gen:
            return
    atomic_add(bar, 2, 1)
    while atomic_load(bar, 1) == gen:
        futex(bar, 1, _FUTEX_WAIT, gen)  # returns at once if the generation moved on
    atomic_add(bar, 2, -1)
