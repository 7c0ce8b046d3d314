import pytest

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
