"""DuckDB errors of the pure-SQL validation macros, told in sqlml's terms.

``ml_schema_diff`` raises (with SQL ``error()``) when a data schema or one of the two
versions does not exist; DuckDB reports that as an ``InvalidInputException``. This turns
it into the ``UnknownObjectError`` the Python side would raise (see
``sqlml.session.ERROR_EXPLAINERS``); the plain DuckDB shell shows the same words.
"""

from __future__ import annotations

import re

from sqlml.errors import UnknownObjectError

_NO_SCHEMA = re.compile(r"data schema '(.*)' does not exist")
_NO_VERSION = re.compile(r"data schema '(.*)' has no version (\S+) \(its versions: ([0-9, ]*)\)")


def explain_missing_version(error: BaseException, session) -> UnknownObjectError | None:
    text = str(error)
    found = _NO_VERSION.search(text)
    if found:
        name, version, versions = found.groups()
        return UnknownObjectError(f"version of data schema {name!r}", version, [v.strip() for v in versions.split(",")])
    found = _NO_SCHEMA.search(text)
    if found:
        from sqlml import catalog
        from sqlml.validation.schema import KIND

        with session.cursor() as cur:
            names = catalog.object_names(cur, KIND)
        return UnknownObjectError(KIND, found.group(1), names)
    return None
