import os
from pathlib import Path

import numpy as np
import pytest
import torch

REFERENCE = Path(__file__).parent / "fixtures" / "reference"

# Tests share 2 cores with nothing else; one intra-op thread keeps runs predictable.
torch.set_num_threads(int(os.environ.get("SPEECHREP_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


@pytest.fixture(scope="session")
def reference_wavs() -> list[np.ndarray]:
    data = np.load(REFERENCE / "inputs.npz")
    return [data[f"wav_{i}"] for i in range(3)]
