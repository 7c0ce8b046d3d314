import pytest

from sqlml import progress


@pytest.fixture(autouse=True)
def default_progress():
    """Each test starts from the default progress settings."""
    saved = dict(progress._settings)
    progress._settings.clear()
    yield
    progress._settings.clear()
    progress._settings.update(saved)
