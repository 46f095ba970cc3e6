"""Dask clusters for the work that scales out (tuning trials, predictions over big files):
a LocalCluster started here, an existing cluster by its scheduler's address, or none."""

import contextlib
import logging

from nanoml.errors import NanomlError

# Each worker is a process with one thread; its Numba (and BLAS) use one thread too, so
# that N workers keep N cores busy without oversubscribing them.
SINGLE_THREADED = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def open_client(workers=None, scheduler=None):
    """(dask Client, LocalCluster or None): a LocalCluster of `workers` processes, or the
    cluster whose scheduler is at `scheduler`; (None, None) with neither."""
    if workers is not None and scheduler is not None:
        raise NanomlError("workers starts a cluster here and scheduler names a running one; "
                          "give one of them", argument=("workers", "scheduler"))
    if workers is None and scheduler is None:
        return None, None
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise NanomlError(f"cannot reach the Dask scheduler at {scheduler}: {exc}",
                              argument="scheduler") from None
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise NanomlError(f"workers must be a positive integer, got {workers!r}",
                          argument="workers")
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, env=SINGLE_THREADED,
        dashboard_address=":0", silence_logs=logging.ERROR,  # any free port, never 8787
    )
    return Client(cluster), cluster


@contextlib.contextmanager
def connected(workers=None, scheduler=None):
    """`open_client` as a context: the client (or None) within, closed after."""
    client, cluster = open_client(workers, scheduler)
    try:
        yield client
    finally:
        for closable in (client, cluster):
            if closable is not None:
                with contextlib.suppress(Exception):
                    closable.close()
