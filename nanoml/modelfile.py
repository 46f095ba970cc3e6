"""The model file: one NumPy ``.npz`` archive of arrays plus a JSON header, no pickle.

Layout: member ``__nanoml__`` holds a JSON document (format name, format version, learner
name, hyperparameters, scalar state); every other member is a learned array. Reading uses
``allow_pickle=False``, so loading a model never runs code from the file.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

from nanoml.errors import ModelFileError

FORMAT = "nanoml-model"
FORMAT_VERSION = 1
HEADER = "__nanoml__"


def atomic_write(path, write):
    """Call ``write(file_object)`` on a temporary file, then rename it onto `path`.

    A crash or error midway leaves any previous file at `path` untouched.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        # mkstemp makes the file private (0600); a written file follows the umask instead.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask():
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path, obj):
    """Write `obj` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save(path, header, arrays):
    """Write `header` (JSON-able dict) and `arrays` (name -> ndarray) to one model file."""
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(
                f"array '{name}' has dtype object, which cannot be saved without pickle"
            )
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, **header}
    text = json.dumps(document, default=_json_default)
    members = {HEADER: np.array(text), **{k: np.asarray(v) for k, v in arrays.items()}}
    atomic_write(path, lambda fh: np.savez(fh, **members))


def load(path, *, header_only=False):
    """Read a model file -> (header dict, name -> ndarray). Any defect is a ModelFileError.
    With `header_only` the arrays are not read (they come back empty)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"model file '{path}' does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if HEADER not in archive.files:
                raise ModelFileError(f"'{path}' is not a nanoml model file (no header)")
            header = json.loads(str(archive[HEADER]))
            names = [] if header_only else [n for n in archive.files if n != HEADER]
            arrays = {name: archive[name] for name in names}
    except ModelFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"'{path}' is not a readable nanoml model file ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"'{path}' is not a nanoml model file")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"'{path}' has an invalid model format version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"'{path}' has model format version {version}; this nanoml reads versions up to "
            f"{FORMAT_VERSION}: upgrade nanoml to load it"
        )
    return header, arrays
