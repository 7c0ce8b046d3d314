"""Every error sqlml raises, under one root.

Each leaf keeps structured fields (the object's kind and name, the option, the
position in the SQL text) and builds a message that says what happened, on which
object, and what to do. Leaves also inherit the builtin they resemble, so callers
may catch ``LookupError`` or ``ValueError`` as well as ``SqlmlError``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SqlmlError(Exception):
    """Root of every sqlml error."""


#: Areas that tell a DuckDB catalog error in their own terms: "module:function" called with
#: (error, session), returning an SqlmlError or None. Imported only when such an error
#: occurs; ``sqlml.wiring`` fills it.
ERROR_EXPLAINERS: list[str] = []


def suggest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Names among ``candidates`` close to ``name`` (case-insensitive), best first."""
    pool = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(pool), n=n, cutoff=0.6)
    return [pool[c] for c in close]


def _did_you_mean(suggestions: list[str]) -> str:
    if not suggestions:
        return ""
    return " Did you mean " + " or ".join(repr(s) for s in suggestions) + "?"


class SqlmlSyntaxError(SqlmlError, SyntaxError):
    """An sqlml statement does not parse; carries line, column and a caret picture."""

    def __init__(self, message: str, sql: str, offset: int, length: int = 1):
        self.description = message
        self.sql = sql
        self.offset = max(0, min(offset, len(sql)))
        before = sql[: self.offset]
        self.line = before.count("\n") + 1
        self.column = self.offset - (before.rfind("\n") + 1) + 1
        line_text = sql.splitlines()[self.line - 1] if sql.splitlines() else ""
        caret = " " * (self.column - 1) + "^" * max(1, length)
        self.picture = f"{line_text}\n{caret}"
        super().__init__(f"{message} (line {self.line}, column {self.column})\n{self.picture}")

    def __str__(self) -> str:  # SyntaxError.__str__ would print its own fields
        return self.args[0]


class UnknownObjectError(SqlmlError, LookupError):
    """A named object (model, labeling function, data schema, option, ...) does not exist."""

    def __init__(self, kind: str, name: str, candidates: Iterable[str] = (), hint: str = ""):
        self.kind = kind
        self.name = name
        self.suggestions = suggest(name, candidates)
        msg = f"{kind} {name!r} does not exist.{_did_you_mean(self.suggestions)}"
        if hint:
            msg += f" {hint}"
        super().__init__(msg)


class ObjectExistsError(SqlmlError, ValueError):
    """Creating an object whose name is taken, without OR REPLACE."""

    def __init__(self, kind: str, name: str, *, in_progress: bool = False, hint: str = ""):
        self.kind = kind
        self.name = name
        self.in_progress = in_progress
        if in_progress:
            super().__init__(
                f"{kind} {name!r} is being created by another connection right now. Wait for it to finish, "
                f"then use CREATE OR REPLACE to replace it, or DROP it first."
            )
            return
        super().__init__(f"{kind} {name!r} already exists. " + (hint or "Use CREATE OR REPLACE to replace it, or DROP it first."))


class ConflictError(SqlmlError, RuntimeError):
    """Another connection changed the same sqlml object at the same time; this statement lost.

    Nothing of the losing statement was saved; running it again sees the winner's change.
    """

    def __init__(self):
        super().__init__(
            "another connection changed the same sqlml objects at the same time, and its statement committed "
            "first; nothing of this statement was saved. Run it again."
        )


class InvalidOptionError(SqlmlError, ValueError):
    """An option of a statement or function is unknown or has a bad value."""

    def __init__(self, where: str, option: str, message: str = "", allowed: Iterable[str] = ()):
        self.where = where
        self.option = option
        allowed = list(allowed)
        self.allowed = allowed
        if message:
            msg = f"{where}: option {option!r}: {message}"
        else:
            msg = f"{where}: unknown option {option!r}.{_did_you_mean(suggest(option, allowed))}"
            if allowed:
                msg += " Known options: " + ", ".join(sorted(allowed)) + "."
        super().__init__(msg)


class DataError(SqlmlError, ValueError):
    """The data given to a statement cannot be used as it is (missing column, empty set, ...)."""

    def __init__(self, message: str, *, obj: str | None = None, column: str | None = None):
        self.obj = obj
        self.column = column
        super().__init__(message)


class ReadOnlyError(SqlmlError, PermissionError):
    """A statement that writes was run on a read-only connection."""

    def __init__(self, statement: str):
        self.statement = statement
        super().__init__(
            f"{statement} writes to the database, but this connection is read-only. "
            f"Reconnect with sqlml.connect(path) (read_only=False)."
        )


class UdfError(SqlmlError, RuntimeError):
    """A Python error inside an sqlml SQL function that was not an sqlml error itself."""

    def __init__(self, function: str, error: BaseException):
        self.function = function
        self.error = error
        super().__init__(f"{function}: {type(error).__name__}: {error}")


class ParameterError(SqlmlError, ValueError):
    """``params=`` do not fit the statement: a count that differs, or a value with no SQL literal."""

    def __init__(self, statement: str, message: str):
        self.statement = statement
        super().__init__(f"{statement}: {message}")


class LabelingError(SqlmlError, ValueError):
    """A labeling function or label model cannot do what was asked."""


class ValidationError(SqlmlError, ValueError):
    """Data validation (statistics, data schemas) cannot do what was asked."""


class TrainingError(SqlmlError, RuntimeError):
    """Training a model failed or cannot start."""


class ServingError(SqlmlError, RuntimeError):
    """Loading or calling a model for inference failed."""


# -- incremental inference and video --------------------------------------------------


class VideoError(SqlmlError, ValueError):
    """A video file is missing, cannot be decoded, or a frame cannot be used as model input."""

    def __init__(self, message: str, *, path: str | None = None):
        self.path = path
        super().__init__(message)


# -- data validation ---------------------------------------------------------------------


class DataAnomalyError(ValidationError):
    """Data failed validation against a data schema (error-level anomalies found).

    ``anomalies`` holds every anomaly at or above the severity asked for (each has
    ``column_name``, ``anomaly_type``, ``severity``, ``description``, ...).
    """

    def __init__(self, source: str, schema: str, version: int | None, anomalies: list, *, action: str = ""):
        self.source = source
        self.schema = schema
        self.version = version
        self.anomalies = list(anomalies)
        shown = "; ".join(
            f"{a.column_name + ': ' if a.column_name else ''}{a.anomaly_type} ({a.description})" for a in self.anomalies[:5]
        )
        more = f"; and {len(self.anomalies) - 5} more" if len(self.anomalies) > 5 else ""
        where = f"data schema {schema!r}" + (f" version {version}" if version is not None else "")
        lead = f"{action}: " if action else ""
        super().__init__(
            f"{lead}{source!r} fails {where} with {len(self.anomalies)} anomal{'y' if len(self.anomalies) == 1 else 'ies'}: "
            f"{shown}{more}. See them with SELECT * FROM ml_validate({source!r}, {schema!r}); fix the data, or "
            f"evolve the schema with ALTER DATA SCHEMA {schema} ACCEPT ..."
        )


# -- large models ---------------------------------------------------------------------------


class BudgetExceeded(TrainingError):
    """Internal guard of spilling: a move would have taken resident bytes past ``device_memory``."""
