"""Tuning trials on dask.distributed: a LocalCluster started by `nanoml.tune`, and a real
`dask scheduler` with two `dask worker` processes on 127.0.0.1 driven by `nanoml tune
--scheduler`, one of which is killed in the middle of a search."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import nanoml
from nanoml.tuning.journal import read_journal

distributed = pytest.importorskip("distributed")


def _pid(record):
    return int(record["worker"].rsplit(":", 1)[1])


def test_a_local_cluster_runs_the_trials_on_its_workers(tmp_path):
    out = tmp_path / "t"
    result = nanoml.tune("mlp", "digits", trials=6, pruner="none", workers=2, out=out,
                         params={"epochs": 3}, space={"lr": "1e-4..1e-2:log"})
    records = read_journal(str(out / "trials.jsonl"))
    assert len(records) == 6 and {r["state"] for r in records} == {"complete"}
    pids = {_pid(r) for r in records}
    assert os.getpid() not in pids and len(pids) == 2  # both worker processes took trials
    assert result.trials_run == 6 and (out / "model.npz").exists()


def _start(*args, log):
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def _stop(process):
    """End `process` and everything it started (its own process group)."""
    if process.poll() is None:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
    try:  # the nanny's worker process, should it outlive the nanny
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def dask_cluster(tmp_path):
    """A `dask scheduler` and two single-threaded `dask worker` processes on 127.0.0.1 (ports
    chosen by the system); -> (scheduler address, the two worker processes)."""
    info = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "w")  # closed below
    processes = []
    try:
        processes.append(_start("distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                "--port", "0", "--no-dashboard", "--scheduler-file", str(info),
                                log=log))
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        workers = [_start("distributed.cli.dask_worker", address, "--nthreads", "1",
                          "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60",
                          log=log) for _ in range(2)]
        processes.extend(workers)
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for process in reversed(processes):
            _stop(process)
        log.close()


def _tune(*args):
    return [sys.executable, "-m", "nanoml.cli", "tune", *args]


@pytest.mark.slow
def test_nanoml_tune_runs_its_trials_on_a_running_cluster(dask_cluster, tmp_path):
    address, workers = dask_cluster
    out = tmp_path / "t"
    done = subprocess.run(
        _tune("knn", "gaussian-nb", "--dataset", "iris", "--trials", "3", "--scheduler",
              address, "--out", str(out)),
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "best:" in done.stdout
    records = read_journal(str(out / "trials.jsonl"))
    assert len(records) == 6 and all(r["state"] != "fail" for r in records)
    assert {_pid(r) for r in records} <= _worker_pids(workers)  # run by the workers
    assert (out / "model.npz").exists()


def _worker_pids(processes):
    """The pids of the `dask worker` processes and the worker processes their nannies
    started."""
    psutil = pytest.importorskip("psutil")
    return {p.pid for process in processes
            for p in [psutil.Process(process.pid),
                      *psutil.Process(process.pid).children(recursive=True)]}


@pytest.mark.slow
def test_a_killed_worker_costs_at_most_its_trial(dask_cluster, tmp_path):
    address, workers = dask_cluster
    out = tmp_path / "t"
    journal = out / "trials.jsonl"
    search = subprocess.Popen(
        _tune("mlp", "--dataset", "digits", "--trials", "12", "--pruner", "none",
              "--set", "epochs=6", "--space", "lr=1e-3..1e-2:log", "--scheduler", address,
              "--out", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while len({_pid(r) for r in read_journal(str(journal))}) < 2:
            # once each worker has finished a trial, both are busy: two trials in flight
            assert search.poll() is None, search.communicate()
            assert time.monotonic() < deadline, "the workers finished no trials"
            time.sleep(0.05)
        killed = _worker_pids(workers[:1])
        done_before = len(read_journal(str(journal)))
        os.killpg(workers[0].pid, signal.SIGKILL)  # the worker and its nanny, at once
        stdout, stderr = search.communicate(timeout=240)
    finally:
        _stop(search)
    assert search.returncode == 0, stderr
    records = read_journal(str(journal))
    assert sorted(r["trial"] for r in records) == list(range(12))  # none lost, none twice
    assert sum(r["state"] == "fail" for r in records) <= 1
    after = records[done_before + 1:]  # (one result may have been on its way at the kill)
    assert after and not {_pid(r) for r in after} & killed  # the worker left ran the rest


@pytest.mark.slow
def test_ctrl_c_stops_a_local_cluster_search_and_keeps_the_finished_trials(tmp_path):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "t"
    # Ctrl-C in a terminal signals the whole process group: the CLI and its workers
    search = subprocess.Popen(
        _tune("mlp", "--dataset", "digits", "--trials", "40", "--pruner", "none",
              "--set", "epochs=6", "--space", "lr=1e-4..1e-1:log", "--workers", "2",
              "--out", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        deadline = time.monotonic() + 120
        while len(read_journal(str(out / "trials.jsonl"))) < 3:
            assert search.poll() is None, search.communicate()
            assert time.monotonic() < deadline, "no trials finished"
            time.sleep(0.05)
        workers = psutil.Process(search.pid).children(recursive=True)
        os.killpg(search.pid, signal.SIGINT)
        stdout, stderr = search.communicate(timeout=60)
    finally:
        _stop(search)
    assert search.returncode == 130
    kept = len(read_journal(str(out / "trials.jsonl")))
    assert 3 <= kept < 40
    assert "Traceback" not in stderr  # from neither the CLI nor its workers
    assert stderr.strip().splitlines()[-1] == (
        f"stopped: {kept} finished trials kept in {out}; 'nanoml tune --resume {out}' continues")
    time.sleep(0.5)
    assert workers and not [p for p in workers
                            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


class _FakeFuture:
    def __init__(self, state="finished"):
        self.state = state

    def cancelled(self):
        return self.state == "cancelled"

    def result(self):
        if self.cancelled():
            raise distributed.client.FuturesCancelledError([])
        return "outcome"


class _FakeClient:
    """Records scatters and submits; every future it makes has finished."""

    def __init__(self):
        self.scattered, self.submitted = [], []

    def scatter(self, data, **options):
        self.scattered.append(_FakeFuture())
        return self.scattered[-1]

    def submit(self, fn, *args, pure):
        self.submitted.append((_FakeFuture(), args))
        return self.submitted[-1][0]


def _fake_wait(futures, return_when):
    if any(f.cancelled() for f in futures):  # as distributed.wait does
        raise distributed.client.FuturesCancelledError([])
    return type("Done", (), {"done": {f for f in futures if f.state == "finished"}})


def test_trials_cancelled_with_lost_data_run_again_with_the_data_scattered_anew(monkeypatch):
    from nanoml.tuning.execution import MAX_RUNS, OnDask

    monkeypatch.setattr(distributed, "wait", _fake_wait)
    client = _FakeClient()
    executor = OnDask(client)
    data = executor.scatter("X")
    running = {executor.submit(len, "a", data): "A", executor.submit(len, "b", data): "B"}
    for future in running:
        future.state = "cancelled"  # the only worker holding the data died
    done = executor.first_done(running)
    assert len(client.scattered) == 2 and len(client.submitted) == 4
    fresh = client.scattered[1]
    assert sorted(running[f] for f in done) == ["A", "B"] and set(done) == set(running)
    assert [args for _, args in client.submitted[2:]] == [("a", fresh), ("b", fresh)]
    later = executor.submit(len, "c", data)  # the caller still holds the lost data
    assert client.submitted[-1][1] == ("c", fresh)
    # a trial cancelled at each of its MAX_RUNS runs comes back done, and failed
    later.state = "cancelled"
    client.submit = _cancelling(client.submit)
    submitted = len(client.submitted)
    running = {later: "C"}
    done = executor.first_done(running)
    assert len(client.submitted) - submitted == MAX_RUNS - 1
    assert [running[f] for f in done] == ["C"]
    assert executor.outcome(done[0])["state"] == "fail"


def test_a_cancellation_of_no_trial_waited_for_is_raised(monkeypatch):
    from nanoml.tuning.execution import OnDask

    def cancelled_elsewhere(futures, return_when):
        raise distributed.client.FuturesCancelledError([])

    monkeypatch.setattr(distributed, "wait", cancelled_elsewhere)
    executor = OnDask(_FakeClient())
    running = {executor.submit(len, "a", executor.scatter("X")): "A"}
    with pytest.raises(distributed.client.FuturesCancelledError):
        executor.first_done(running)


def _cancelling(submit):
    """`submit` whose futures are cancelled as soon as they are made."""
    def cancelled_submit(fn, *args, pure):
        future = submit(fn, *args, pure=pure)
        future.state = "cancelled"
        return future
    return cancelled_submit
