"""MNIST and Fashion-MNIST: 28x28 grey images in IDX files, 60,000 to train and 10,000 to test.

Files are looked for, in order, in ``data_dir``, in the folders system packages install
(Debian's ``dataset-fashion-mnist``), and in nanoml's cache folder; failing all three they
are downloaded into the cache with pooch, which verifies each file's MD5 checksum.
"""

import os

import numpy as np

from nanoml.data import Dataset
from nanoml.data.downloads import cache_folder, fetch
from nanoml.data.idx import read_idx
from nanoml.errors import DatasetUnavailableError
from nanoml.hookimpl import hookimpl

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

SOURCES = {
    "mnist": {
        "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "md5": {
            "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test_images": "9fb629c4189551a2d022fa330f9573f3",
            "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        "system": ["/usr/share/datasets/mnist"],
        "classes": tuple(str(i) for i in range(10)),
    },
    "fashion-mnist": {
        "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "md5": {
            "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test_images": "bef4ecab320f06d8554ea6380940ec79",
            "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        "system": ["/usr/share/datasets/fashion-mnist"],
        "classes": (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    },
}


def _find(folder, stem):
    for candidate in (stem + ".gz", stem):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def local_files(name, data_dir=None):
    """Key -> path of the four files: from `data_dir` if given (only there), else from the
    first of the system and cache folders that has them all; None when none has."""
    folders = [data_dir] if data_dir else SOURCES[name]["system"] + [cache_folder(name)]
    for folder in folders:
        found = {key: _find(folder, stem) for key, stem in FILES.items()}
        if all(found.values()):
            return found
    if data_dir:
        missing = [FILES[k] + "[.gz]" for k, v in found.items() if v is None]
        raise DatasetUnavailableError(
            f"the folder given as data_dir, {data_dir}, lacks {', '.join(missing)} for {name}",
            argument="data_dir",
        )
    return None


def download(name):
    """Fetch the four files into the cache folder, checksums verified; key -> path."""
    source = SOURCES[name]
    stems = [stem + ".gz" for stem in FILES.values()]
    files = [(source["url"] + stem, "md5:" + source["md5"][key], stem)
             for key, stem in zip(FILES, stems, strict=True)]
    return dict(zip(FILES, fetch(name, files, cache_folder(name)), strict=True))


def _check(name, images, labels, n, path):
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DatasetUnavailableError(f"{path}: expected 28x28 uint8 images, got {images.shape}")
    if labels.shape != (images.shape[0],) or images.shape[0] != n:
        raise DatasetUnavailableError(
            f"{path}: expected {n} images and as many labels, "
            f"got {images.shape[0]} and {labels.shape[0]}"
        )
    if labels.max(initial=0) > 9:
        raise DatasetUnavailableError(f"{path}: labels outside 0..9 — not {name} label data")


def load(name, data_dir=None):
    """Dataset of 784 pixel columns scaled to [0, 1] (float32), image_shape (1, 28, 28)."""
    paths = local_files(name, data_dir) or download(name)
    arrays = {key: read_idx(path) for key, path in paths.items()}
    _check(name, arrays["train_images"], arrays["train_labels"], 60000, paths["train_images"])
    _check(name, arrays["test_images"], arrays["test_labels"], 10000, paths["test_images"])

    def pixels(images):
        return images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)

    return Dataset(
        name,
        "classification",
        pixels(arrays["train_images"]),
        arrays["train_labels"].astype(np.int64),
        pixels(arrays["test_images"]),
        arrays["test_labels"].astype(np.int64),
        class_names=SOURCES[name]["classes"],
        image_shape=(1, 28, 28),
    )


def _loader(name):
    def loader(seed=0, data_dir=None):
        return load(name, data_dir)  # the split is the official one; the seed plays no part

    return loader


def _available(name):
    return lambda: local_files(name) is not None


@hookimpl
def register_datasets(register):
    register(
        "mnist",
        _loader("mnist"),
        "MNIST handwritten digits, 70,000 28x28 images (IDX)",
        available=_available("mnist"),
    )
    register(
        "fashion-mnist",
        _loader("fashion-mnist"),
        "Zalando Fashion-MNIST, 70,000 28x28 clothing images (IDX)",
        available=_available("fashion-mnist"),
    )
