"""Where trials run: in the calling process, or on dask.distributed (a LocalCluster started
here, or a running cluster given by its scheduler's address: `nanoml.cluster`).

Both executors offer the same four steps, so the search loop is one piece of code:
``scatter`` the data once, ``submit`` a trial, wait for the ``first_done``, read its
``outcome``. On Dask a worker that dies is replaced (LocalCluster's nannies restart it)
and its trial runs again elsewhere; a trial that kills workers repeatedly comes back as
failed. Numba's kernels compile into the on-disk cache, shared by the workers of one
machine, and each worker process loads them once, at its first trial.
"""

import contextlib
import io
import signal
import threading


class InProcess:
    """Trials run one at a time in the calling process, when waited for."""

    def slots(self):
        return 1

    def scatter(self, data):
        return data

    def submit(self, fn, *args):
        return _Call(fn, args)

    def first_done(self, calls):
        call = next(iter(calls))
        # Deep learners draw progress bars on a terminal: not for every trial.
        with contextlib.redirect_stderr(io.StringIO()):
            call.value = call.fn(*call.args)
        return [call]

    def outcome(self, call):
        return call.value

    def close(self):
        pass


class _Call:
    def __init__(self, fn, args):
        self.fn, self.args, self.value = fn, args, None


class OnDask:
    """Trials as tasks of a dask.distributed Client; `cluster` is closed with it when
    this executor started it."""

    def __init__(self, client, cluster=None):
        self.client, self.cluster = client, cluster

    def slots(self):
        """A trial for each worker thread (at least one, so that work waits for a worker
        that is yet to join)."""
        return max(1, sum(self.client.nthreads().values()))

    def scatter(self, data):
        return self.client.scatter(data, broadcast=True, hash=False)

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)

    def first_done(self, futures):
        from distributed import wait

        return list(wait(list(futures), return_when="FIRST_COMPLETED").done)

    def outcome(self, future):
        """The trial's outcome, or a failed one when its workers died (KilledWorker) or the
        cluster lost it."""
        try:
            return future.result()
        except Exception as exc:
            return {"state": "fail", "value": None, "budget": None, "intermediate": {},
                    "rungs": [], "seconds": None, "error": f"{type(exc).__name__}: {exc}",
                    "worker": None}

    def close(self):
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


def open_executor(workers=None, scheduler=None):
    """An executor: a LocalCluster of `workers` processes (one thread each, Numba's
    threads set to match), the cluster whose scheduler is at `scheduler`, or, with
    neither, the calling process (`nanoml.cluster.open_client` says which)."""
    from nanoml.cluster import open_client

    with _ctrl_c_ignored_by_new_processes(workers is not None):
        client, cluster = open_client(workers, scheduler)
    return InProcess() if client is None else OnDask(client, cluster)


@contextlib.contextmanager
def _ctrl_c_ignored_by_new_processes(active):
    """SIGINT ignored while a LocalCluster starts, so that its worker processes inherit
    that: Ctrl-C in a terminal reaches the whole process group, and it is this process
    that stops the search and closes the workers (they would each print a traceback)."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
