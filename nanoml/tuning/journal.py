"""The journal of a tuning run: trials.jsonl, one JSON object a line, one line per finished
trial, appended as the trial ends and flushed to disk (fsync) before the search goes on.

A line is written with one ``write`` on a file opened for appending, so a crash leaves at
worst a torn last line; reading drops it, and opening for more trials cuts it off first.
"""

import json
import os

JOURNAL_FILE = "trials.jsonl"


class Journal:
    """The journal file at `path`; `records` are the trials it already holds."""

    def __init__(self, path):
        self.path = path
        self.records = read_journal(path)
        self._cut_torn_tail()

    def append(self, record):
        """Add one finished trial, durably."""
        line = json.dumps(record, default=_plain) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self.records.append(record)

    def _cut_torn_tail(self):
        if not os.path.exists(self.path):
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                fh.truncate(end)


def read_journal(path):
    """The trials recorded in the journal at `path` (none if it does not exist)."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # a torn last line: the trial did not finish being written
            if line.strip():
                records.append(json.loads(line))
    return records


def _plain(value):
    """NumPy scalars and tuples as JSON values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
