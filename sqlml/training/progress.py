"""Progress bars for training: one per epoch when attached to a terminal, silent otherwise."""

from __future__ import annotations

import sys
from contextlib import contextmanager


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass


def wants_bar(setting) -> bool:
    """``progress := 'auto'`` (a terminal on stderr), true or false."""
    if setting in (True, False):
        return setting
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_factory(setting):
    """``progress(total, description)`` -> context manager with ``update(n)``."""
    show = wants_bar(setting)

    @contextmanager
    def progress(total: int, description: str):
        if not show:
            yield _Silent()
            return
        from tqdm import tqdm

        bar = tqdm(total=total, desc=description, unit="batch", leave=True, file=sys.stderr, dynamic_ncols=True)
        try:
            yield bar
        finally:
            bar.close()

    return progress
