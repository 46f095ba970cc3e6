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
from concurrent.futures import CancelledError

# Times a trial is submitted, at most, when the cluster keeps cancelling it (see
# `OnDask.first_done`).
MAX_RUNS = 3


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
        self._data = self._scattered = None
        self._lost = []  # scattered data the cluster lost
        self._calls = {}  # future -> (fn, args, runs so far)

    def slots(self):
        """A trial for each worker thread (at least one, so that work waits for a worker
        that is yet to join)."""
        return max(1, sum(self.client.nthreads().values()))

    def scatter(self, data):
        self._data = data
        self._scattered = self.client.scatter(data, broadcast=True, hash=False)
        return self._scattered

    def submit(self, fn, *args, runs=0):
        # data scattered anew stands in for lost data the caller still holds
        args = tuple(self._scattered if any(a is lost for lost in self._lost) else a
                     for a in args)
        future = self.client.submit(fn, *args, pure=False)
        self._calls[future] = (fn, args, runs)
        return future

    def first_done(self, futures):
        """The futures of `futures` (a dict) that are done.

        Scattered data lives only on the workers present when it was scattered; if the
        only worker holding it dies, the cluster cancels every trial that needs it. Those
        trials are then submitted again, with the data scattered anew, each up to
        MAX_RUNS times, their new futures taking the old ones' places in `futures`; after
        that a cancelled trial counts as done (its outcome: failed).
        """
        from distributed import wait

        while True:
            try:
                done = list(wait(list(futures), return_when="FIRST_COMPLETED").done)
            except CancelledError:
                if not any(f.cancelled() for f in futures):
                    raise  # not ours to run again: without this, the loop would spin
                done = []
            cancelled = [f for f in futures if f.cancelled()]
            given_up = [f for f in cancelled if self._calls[f][2] + 1 >= MAX_RUNS]
            if cancelled != given_up:
                self._run_again([f for f in cancelled if f not in given_up], futures)
            done = [f for f in done if not f.cancelled()] + given_up
            if done:
                for future in done:
                    self._calls.pop(future, None)
                return done

    def _run_again(self, cancelled, futures):
        self._lost.append(self._scattered)
        self._scattered = self.client.scatter(self._data, broadcast=True, hash=False)
        for old in cancelled:
            fn, args, runs = self._calls.pop(old)
            futures[self.submit(fn, *args, runs=runs + 1)] = futures.pop(old)

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
