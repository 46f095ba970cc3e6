"""SMS Spam Collection v.1 (Almeida, Gómez Hidalgo and Yamakami, 2011): 5,574 English text
messages, each labelled ham or spam.

The file ``SMSSpamCollection`` holds one message per line, its label, a tab, then the
text. It is read from ``data_dir`` (the file itself or the UCI zip holding it), else from
the zip in nanoml's cache folder, else the zip is downloaded from the UCI archive into the
cache and its SHA-256 checked.
"""

import os
import zipfile

import numpy as np

from nanoml.data import Dataset, train_test_split
from nanoml.data.downloads import cache_folder, fetch
from nanoml.errors import DatasetUnavailableError

NAME = "sms-spam"
URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00228/smsspamcollection.zip"
SHA256 = "1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3"
ZIP_NAME = "smsspamcollection.zip"
MEMBER = "SMSSpamCollection"
CLASSES = ("ham", "spam")


def parse(text, where):
    """The messages and their labels (0 ham, 1 spam) of the collection's text."""
    messages, labels = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label, tab, message = line.partition("\t")
        if not tab or label not in CLASSES:
            raise DatasetUnavailableError(
                f"{where}, line {number}: expected 'ham' or 'spam', a tab, then the message; "
                f"got {line[:40]!r} — not the SMS Spam Collection",
                argument="data_dir",
            )
        messages.append(message)
        labels.append(CLASSES.index(label))
    if not messages:
        raise DatasetUnavailableError(f"{where} holds no messages", argument="data_dir")
    return messages, np.array(labels, dtype=np.int64)


def read(path):
    """The messages and labels of `path`: the collection's file, or a zip holding it."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            return parse(fh.read().decode("utf-8", errors="replace"), path)
    try:
        with zipfile.ZipFile(path) as archive:
            raw = archive.read(MEMBER)
    except KeyError:
        raise DatasetUnavailableError(f"{path} holds no file named {MEMBER}",
                                      argument="data_dir") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetUnavailableError(f"{path} is a damaged zip archive ({exc})",
                                      argument="data_dir") from None
    return parse(raw.decode("utf-8", errors="replace"), f"{path}:{MEMBER}")


def local_file(data_dir=None):
    """The collection's path in `data_dir` (only there, if given) or the cache; None when
    the cache lacks it."""
    if data_dir:
        for name in (MEMBER, ZIP_NAME):
            if os.path.isfile(os.path.join(data_dir, name)):
                return os.path.join(data_dir, name)
        raise DatasetUnavailableError(
            f"the folder given as data_dir, {data_dir}, holds neither {MEMBER} nor {ZIP_NAME}",
            argument="data_dir",
        )
    cached = os.path.join(cache_folder(NAME), ZIP_NAME)
    return cached if os.path.isfile(cached) else None


def load(seed=0, data_dir=None):
    """Dataset of one text column (the message), labelled ham or spam, with a stratified
    75/25 split drawn with `seed`."""
    path = local_file(data_dir) or fetch(
        NAME, [(URL, "sha256:" + SHA256, ZIP_NAME)], cache_folder(NAME))[0]
    messages, labels = read(path)
    X = np.empty((len(messages), 1), dtype=object)
    X[:, 0] = messages
    X_tr, y_tr, X_te, y_te = train_test_split(X, labels, seed=seed)
    return Dataset(NAME, "classification", X_tr, y_tr, X_te, y_te, class_names=CLASSES,
                   feature_names=("text",))


def available():
    return local_file() is not None
