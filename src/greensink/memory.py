"""Process memory settings of the per-pixel stages: :func:`small_pages`, numpy's huge-page advice switched off
inside a stage.

numpy gives every array of 4 MiB or more ``madvise(MADV_HUGEPAGE)`` on Linux. The per-pixel stages touch their
strip and band arrays once or twice, so huge pages save little in TLB misses, while on a VM whose balloon reports
free memory to the host (Firecracker here) a fresh 2 MiB page costs a fresh process 3-6 ms of system time
(benchmarks/README.md, "Carbon: where a plain run's time goes, and its system time" and "Huge-page advice in the
other per-pixel stages"). The values computed are the same either way; only where the pages come from changes.
Moved here from ``greensink.carbon.maps`` (which still re-exports the names) so every stage's runner can use it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

HUGEPAGE_ENV = "NUMPY_MADVISE_HUGEPAGE"  # numpy's own switch; when set, :func:`small_pages` leaves numpy's choice alone


def hugepage_setter() -> Callable[[bool], bool] | None:
    """numpy's runtime switch of its huge-page advice (``_set_madvise_hugepage``: numpy >= 1.20, under
    ``numpy._core.multiarray`` since numpy 2), or None where this numpy has none."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = __import__(name, fromlist=["_set_madvise_hugepage"])
        except ImportError:
            continue
        setter = getattr(module, "_set_madvise_hugepage", None)
        if setter is not None:
            return setter
    return None


@contextlib.contextmanager
def small_pages() -> Iterator[bool]:
    """numpy arrays allocated inside the block get no huge-page advice (``madvise(MADV_HUGEPAGE)``, which numpy
    gives every array of 4 MiB or more on Linux); numpy's setting is restored on leaving, also on an error. Yields
    whether the advice was switched off (False where the environment sets ``NUMPY_MADVISE_HUGEPAGE``, the user's
    choice, or numpy has no runtime switch). Usable as a decorator (``@small_pages()``) of a stage's runner.

    Why (benchmarks/README.md, "Carbon: the first run's system time"): a carbon strip's arrays are touched once or
    twice, so huge pages save little in TLB misses, while on a VM whose balloon reports free memory to the host
    (Firecracker here) a fresh 2 MiB page costs the host's page-in of all of it: in a fresh process the carbon
    stage's system time was 1.7-2.5 s with the advice against 0.3-0.4 s without at 2000² (user time unchanged).
    The values computed are the same either way."""
    setter = None if HUGEPAGE_ENV in os.environ else hugepage_setter()
    if setter is None:
        yield False
        return
    before = setter(False)
    try:
        yield True
    finally:
        setter(before)
