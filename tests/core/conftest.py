import pytest

from sqlml.query import statements

from . import widgets


@pytest.fixture
def widget_statement(monkeypatch):
    """Register the test-only CREATE WIDGET statement for one test."""
    monkeypatch.setitem(statements.STATEMENTS, "CREATE WIDGET", widgets.create_widget)
    yield
