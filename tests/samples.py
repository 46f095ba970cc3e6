"""Small files of one's own for the tests: tables, image folders, and a local web server."""

import contextlib
import functools
import http.server
import threading

import numpy as np


def write_table(path, header, rows):
    path.write_text("\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)]) + "\n")
    return path


def make_images(folder, classes, size=(12, 10), mode="L", n=12, odd_size=None):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for i in range(n):
            shape = (size[1], size[0]) + (() if mode == "L" else (3,))
            pixels = rng.integers(0, 60, shape) + 150 * c
            image = Image.fromarray(pixels.astype(np.uint8), mode)
            if odd_size and i == 0:
                image = image.resize(odd_size)
            image.save(folder / name / f"{i}.png")
    return folder


@contextlib.contextmanager
def served_folder(folder):
    """Serve `folder` over HTTP on 127.0.0.1; yields the base URL, ending in a slash."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
