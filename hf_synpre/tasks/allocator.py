"""Keep glibc from handing a block's scratch memory back to the kernel between blocks.

Public API:
    tune_allocator() -> bool   -- fix malloc's mmap/trim thresholds (once per process); True if applied
    allocator_tuned() -> bool  -- whether this process runs with them
    OPT_OUT_ENV                -- ``SYNPRE_TUNE_MALLOC=0`` keeps the C library's defaults

Why: a block of 8,192 Set examples is ~0.9M tokens and passes through ~60 MB of numpy temporaries
(3.8 MB each). With glibc's default, *dynamic* thresholds, whether those come from the heap or from
fresh ``mmap``s, and whether the freed heap top is trimmed after every block, depends on the order in
which the process happened to allocate: most processes page-fault ~2,500-5,900 times per block
(10-25 MB of first touches), some don't, and the same generation then runs 1.25-1.7x slower
(``benchmarks/generate.py`` measures both side by side). We fix the thresholds at the ceiling glibc's
own dynamic rule climbs to (serve allocations up to 32 MiB from the heap, keep up to 64 MiB of freed heap
top), so every process gets the fast case. It changes no result and costs at most 64 MiB of resident memory.

Applied lazily by :func:`hf_synpre.tasks.generate_block`, the unit every generation path (builder
shards, streams, CLI) goes through. It is a no-op off glibc, when the user opted out, or when the user
set glibc's own ``MALLOC_*_THRESHOLD_`` variables or ``glibc.malloc`` tunables (their choice wins).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_allocator", "allocator_tuned", "OPT_OUT_ENV", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

OPT_OUT_ENV = "SYNPRE_TUNE_MALLOC"
MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 64 << 20  # = 2 * mmap threshold, what the dynamic rule would set
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_state = {"tried": False, "tuned": False}


def tune_allocator() -> bool:
    """Fix glibc's malloc thresholds for this process (idempotent). Returns whether they are in effect."""
    if _state["tried"]:
        return _state["tuned"]
    _state["tried"] = True
    if os.environ.get(OPT_OUT_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    user_set = any(v in os.environ for v in _USER_SETTINGS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")
    if user_set or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; order matters: setting either disables the dynamic rule
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    _state["tuned"] = ok
    return ok


def allocator_tuned() -> bool:
    return _state["tuned"]
