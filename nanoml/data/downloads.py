"""Downloading a dataset's files into nanoml's cache folder, each checked against its hash.

pooch writes each file under a temporary name and renames it once its hash matches, so a
failed download leaves no partial file behind.
"""

import os

import platformdirs

from nanoml.errors import DatasetUnavailableError


def cache_folder(name):
    return os.path.join(platformdirs.user_cache_dir("nanoml"), name)


def fetch(name, files, folder):
    """Download `files`, a list of (url, known_hash, file name) with pooch's hash strings
    ("md5:…", "sha256:…"), into `folder`; their paths in the same order.

    Offline, refused or a hash mismatch: DatasetUnavailableError saying where to put the
    files by hand. A folder this call created is removed again if it stays empty.
    """
    import pooch

    pooch.get_logger().setLevel("WARNING")  # our own progress bar says enough
    created = not os.path.isdir(folder)
    paths = []
    for url, known_hash, fname in files:
        try:
            paths.append(pooch.retrieve(url, known_hash=known_hash, fname=fname, path=folder,
                                        progressbar=True))
        except Exception as exc:  # offline, refused, or a checksum mismatch
            if created and os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
            raise DatasetUnavailableError(
                f"cannot download {name} ({_short_reason(exc)}); put "
                f"{', '.join(f for _, _, f in files)} in {folder} "
                "or name the folder holding them with data_dir",
                argument="data_dir",
            ) from None
    return paths


def _short_reason(exc):
    import requests

    if isinstance(exc, requests.exceptions.ConnectionError):
        return "no network connection"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
