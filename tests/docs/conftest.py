import pytest

from tests.torch_threads import _one_torch_thread  # noqa: F401 - autouse fixture


@pytest.fixture
def clean_registries():
    """Pages register architectures and model functions; give them back as they were."""
    from sqlml.models.architectures import ARCHITECTURES
    from sqlml.optimizer.model_functions import MODEL_FUNCTIONS

    saved = [(registry, dict(registry)) for registry in (ARCHITECTURES, MODEL_FUNCTIONS)]
    yield
    for registry, before in saved:
        registry.clear()
        registry.update(before)
