import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# pytest's importlib mode puts no test folder on sys.path: add this one so test modules can
# import the shared checks (tests/upstream_checks.py), with pytest's assert messages.
sys.path.append(str(Path(__file__).parent))
pytest.register_assert_rewrite("upstream_checks")

from upstream_checks import REFERENCE, load_reference_wavs  # noqa: E402

# Tests share 2 cores with nothing else; one intra-op thread keeps runs predictable.
torch.set_num_threads(int(os.environ.get("SPEECHREP_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


@pytest.fixture(scope="session")
def reference_wavs() -> list[np.ndarray]:
    return load_reference_wavs()
