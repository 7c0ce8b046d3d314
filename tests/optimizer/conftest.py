import pytest

from tests.torch_threads import _one_torch_thread  # noqa: F401 (autouse fixture)
from tests.trained import trained  # noqa: F401 (fixture)

from .counting import CountingModel, make_tables


@pytest.fixture
def scored(con):
    """The ``con`` fixture with tables t and u and the counting model functions ml_score
    (cost 100) and ml_cheap (cost 10)."""
    make_tables(con)
    models = [CountingModel("ml_score").install(con), CountingModel("ml_cheap", cost=10.0).install(con)]
    yield con, models[0], models[1]
    for model in models:
        model.uninstall()


@pytest.fixture
def scored_one(con):
    """The ``con`` fixture with tables t and u and the counting model function ml_score alone."""
    make_tables(con)
    model = CountingModel("ml_score").install(con)
    yield con, model
    model.uninstall()
