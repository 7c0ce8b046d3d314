"""Progress bars for training: one per epoch (and per grid), shown as ``sqlml.progress`` decides.

``progress := 'auto'`` (the default) follows the process-wide setting (a widget in a
notebook, a bar on a terminal, periodic lines in a log; ``SQLML_PROGRESS=off`` hides
it); true shows it wherever stderr goes; false hides it.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlml import progress as bars


def wants_bar(setting) -> bool:
    """Whether ``progress := setting`` shows anything."""
    if setting in (True, False):
        return setting
    return bars.settings()["enabled"] is not False


def progress_factory(setting):
    """``progress(total, description)`` -> context manager with ``update(n)``."""
    show = setting if setting in (True, False) else None

    @contextmanager
    def progress(total: int, description: str):
        with bars.progress(total, description, unit="batch", show=show, leave=True) as bar:
            yield bar

    return progress
