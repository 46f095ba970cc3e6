"""The CUDA kernel tests run on a GPU or in numba's CUDA simulator; without either they skip.

CI sets NUMBA_ENABLE_CUDASIM=1 for the whole run (numba reads it once, at import). The
simulator runs every thread in Python, so the shapes here stay small: a few hundred threads
a test.
"""

from pathlib import Path

import pytest

from nanoml.device import require_cuda
from nanoml.errors import DeviceError

HERE = Path(__file__).parent
# Tests that launch nothing: the device checks themselves and the twins' signatures.
RUN_WITHOUT_CUDA = {"test_device.py", "test_twins.py"}


def pytest_collection_modifyitems(config, items):
    try:
        require_cuda()
    except DeviceError as error:
        skip = pytest.mark.skip(reason=f"{error}; set NUMBA_ENABLE_CUDASIM=1 to simulate one")
        for item in items:
            if item.path.parent == HERE and item.path.name not in RUN_WITHOUT_CUDA:
                item.add_marker(skip)
