"""Fortunes: the quotations of Debian's ``fortunes`` package as a text classification task.

Each category is a plain-text file under ``/usr/share/games/fortunes`` (or ``data_dir``)
whose entries are separated by a line holding only ``%``; the category is the label.
``.dat`` index files, ``.u8`` links and subfolders are skipped, and backspace
overstrikes (``x\\bx`` bold, ``_\\bx`` underline) are reduced to the character shown.
"""

import os
import re

import numpy as np

from nanoml.data import Dataset, train_test_split
from nanoml.errors import DatasetUnavailableError

SYSTEM_FOLDER = "/usr/share/games/fortunes"
TASK_CATEGORIES = ("computers", "science", "songs-poems", "politics")
_SEPARATOR = re.compile(r"^%[ \t]*$", re.MULTILINE)
_OVERSTRIKE = re.compile(r".\x08", re.DOTALL)


def read_entries(path):
    """The entries of one fortune file, overstrikes removed, blank entries dropped."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = _OVERSTRIKE.sub("", fh.read())
    entries = (entry.strip("\n") for entry in _SEPARATOR.split(text))
    return [entry for entry in entries if entry.strip()]


def categories(folder):
    """The category files in `folder`, sorted by name."""
    return sorted(
        name for name in os.listdir(folder)
        if not name.endswith((".dat", ".u8")) and not name.startswith(".")
        and os.path.isfile(os.path.join(folder, name))
    )


def _folder(data_dir):
    folder = data_dir or SYSTEM_FOLDER
    if not os.path.isdir(folder):
        where = ("the folder given as data_dir, " + data_dir) if data_dir else SYSTEM_FOLDER
        raise DatasetUnavailableError(
            f"fortunes not found: {where} does not exist; install Debian's fortunes package "
            "(apt-get install fortunes) or name a folder of fortune files with data_dir",
            argument="data_dir",
        )
    return folder


def load(name, wanted=None, seed=0, data_dir=None):
    """Dataset of one text column (the entry) labelled by category; `wanted` categories
    (None: every one in the folder), a stratified 75/25 split drawn with `seed`."""
    folder = _folder(data_dir)
    found = categories(folder)
    names = tuple(wanted or found)
    missing = [c for c in names if c not in found]
    if missing or not names:
        raise DatasetUnavailableError(
            f"{folder} lacks the fortune file(s) {', '.join(missing) or '(any)'}; name a "
            "folder holding them with data_dir",
            argument="data_dir",
        )
    texts, labels = [], []
    for code, category in enumerate(names):
        entries = read_entries(os.path.join(folder, category))
        texts += entries
        labels += [code] * len(entries)
    X = np.empty((len(texts), 1), dtype=object)
    X[:, 0] = texts
    X_tr, y_tr, X_te, y_te = train_test_split(X, np.array(labels, np.int64), seed=seed)
    return Dataset(name, "classification", X_tr, y_tr, X_te, y_te, class_names=names,
                   feature_names=("text",))


def fortunes(seed=0, data_dir=None):
    return load("fortunes", TASK_CATEGORIES, seed, data_dir)


def fortunes_all(seed=0, data_dir=None):
    return load("fortunes-all", None, seed, data_dir)


def available():
    return os.path.isdir(SYSTEM_FOLDER)
