"""A test-only sqlml statement, CREATE [OR REPLACE] WIDGET name [WITH (...)] [AS query].

It writes a catalog row and a table, then fails on request, so tests can watch
routing, parsing, transactions and rollback without any area's code.
"""

import pyarrow as pa

from sqlml import catalog
from sqlml.errors import DataError
from sqlml.sqlutil import quote_ident


def create_widget(ctx):
    p = ctx.parser()
    p.expect("CREATE")
    replace = p.accept("OR", "REPLACE")
    p.expect("WIDGET")
    name = p.identifier("a widget name")
    options = p.options() if p.accept("WITH") else {}
    query = None
    if p.accept("AS"):
        query = p.rest("a query")
    p.end()
    catalog.put_object(ctx.duck, "widget", name, {"options": options, "query": query}, replace=replace)
    ctx.duck.execute(f"CREATE OR REPLACE TABLE {quote_ident(name)} AS SELECT 1 AS built")
    if options.get("fail"):
        raise DataError(f"widget {name!r} was asked to fail", obj=name)
    return ctx.connection.wrap(ctx.duck.from_arrow(pa.table({"widget": [name], "options": [str(options)]})))
