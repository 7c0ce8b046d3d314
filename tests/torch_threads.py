"""One intra-op torch thread for a test folder: import the fixture into its conftest.

Small models run faster on one thread, above all on a shared 2-core machine.
"""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
