import pytest

import sqlml


@pytest.fixture
def con():
    """A fresh in-memory sqlml connection."""
    connection = sqlml.connect()
    yield connection
    connection.close()


@pytest.fixture
def db_path(tmp_path):
    """A path for a new database file."""
    return str(tmp_path / "test.duckdb")
