"""Image folders as datasets, read with Pillow: one subfolder per class, PNG or JPEG files,
all brought to one shape (the most common size; grey unless some image has colour)."""

import collections
import dataclasses
import os

import numpy as np

from nanoml.errors import InputError, ModelFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclasses.dataclass
class ImageSchema:
    """How images become rows: `mode` "L" (grey) or "RGB", resized to (height, width)."""

    mode: str
    height: int
    width: int

    @property
    def shape(self):
        return (1 if self.mode == "L" else 3, self.height, self.width)

    def to_json(self):
        return {"kind": "images", **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, document, where):
        try:
            schema = cls(document["mode"], int(document["height"]), int(document["width"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{where} has a damaged image schema ({exc})") from None
        if schema.mode not in ("L", "RGB") or min(schema.height, schema.width) < 1:
            raise ModelFileError(f"{where} has a damaged image schema ({document})")
        return schema

    def read(self, paths):
        """The images at `paths` as float32 rows in [0, 1], channels first, flattened."""
        from PIL import Image

        X = np.empty((len(paths), int(np.prod(self.shape))), dtype=np.float32)
        for i, path in enumerate(paths):
            with _opened(path) as image:
                image = image.convert(self.mode)
                if image.size != (self.width, self.height):
                    image = image.resize((self.width, self.height), Image.Resampling.BILINEAR)
                pixels = np.asarray(image, dtype=np.float32) / 255.0
            X[i] = (pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)).ravel()
        return X


def _opened(path):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"cannot read the image '{path}': {exc}") from None
    return image


def image_files(folder):
    """The image files under `folder`, sorted, at any depth."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in sorted(files)
                     if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES)
    return found


def read_image_folder(folder):
    """(X, labels, (channels, height, width), ImageSchema) of a folder of class subfolders."""
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    paths, labels = [], []
    for name in classes:
        files = image_files(os.path.join(folder, name))
        paths.extend(files)
        labels.extend([name] * len(files))
    used = sorted(set(labels))
    if len(used) < 2:
        raise InputError(
            f"'{folder}' must hold one subfolder of PNG or JPEG images per class, at least "
            f"two classes; found {len(used)} ({', '.join(used) or 'no images'})"
        )
    sizes, colour = collections.Counter(), False
    for path in paths:
        with _opened(path) as image:
            sizes[image.size] += 1
            colour = colour or image.mode not in ("1", "L", "LA", "I", "I;16", "F")
    (width, height), _ = sizes.most_common(1)[0]
    schema = ImageSchema("RGB" if colour else "L", height, width)
    return schema.read(paths), np.asarray(labels), schema.shape, schema
