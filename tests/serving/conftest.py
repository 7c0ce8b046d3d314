import pytest

from tests.optimizer.counting import CountingModel, make_tables


@pytest.fixture
def scored(con):
    """The ``con`` fixture with tables t and u and the counting model function ml_score."""
    make_tables(con)
    model = CountingModel("ml_score").install(con)
    yield con, model
    model.uninstall()
