"""Progress of long work: a widget in a notebook, a bar on a terminal, periodic lines in a log.

Every long statement (APPLY, label models, statistics and validation scans, LOAD VIDEO,
video inference, occlusion maps, bulk inference, training) reports through ``progress``:

    with progress(total_rows, "APPLY LABELING FUNCTIONS flights", unit="rows") as bar:
        bar.update(len(batch))

Where it shows: a Jupyter kernel gets tqdm.auto's widget; a terminal (stderr is a tty)
gets tqdm's text bar; anything else (a log file, CI, a pipe) gets one plain line every
``interval`` seconds on stderr and a last line when done. Work shorter than ``delay``
seconds shows nothing. One setting turns all of it off: the environment variable
``SQLML_PROGRESS=off`` (or ``on`` / ``auto``), or ``sqlml.progress.configure(enabled=False)``;
``SQLML_PROGRESS_DELAY`` and ``SQLML_PROGRESS_INTERVAL`` set the two times.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_settings: dict[str, Any] = {}


def configure(enabled: bool | str | None = None, *, delay: float | None = None, interval: float | None = None) -> dict[str, Any]:
    """Change the settings for this process; returns them. ``enabled``: True, False or 'auto'."""
    if enabled is not None:
        _settings["enabled"] = _mode(enabled)
    if delay is not None:
        _settings["delay"] = float(delay)
    if interval is not None:
        _settings["interval"] = float(interval)
    return settings()


def settings() -> dict[str, Any]:
    """The settings in force: what ``configure`` set, else the environment, else the defaults."""
    return {
        "enabled": _settings.get("enabled", _mode(os.environ.get("SQLML_PROGRESS", "auto"))),
        "delay": _settings.get("delay", _float_env("SQLML_PROGRESS_DELAY", 0.5)),
        "interval": _settings.get("interval", _float_env("SQLML_PROGRESS_INTERVAL", 10.0)),
    }


def _mode(value: bool | str) -> bool | str:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("off", "false", "0", "no", "none"):
        return False
    if text in ("on", "true", "1", "yes"):
        return True
    if text == "auto":
        return "auto"
    raise ValueError(f"progress setting {value!r}: use 'auto', 'on' or 'off'")


def _float_env(name: str, default: float) -> float:
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


def where() -> str:
    """'notebook', 'terminal' or 'log': where a bar started now would show."""
    if _in_notebook():
        return "notebook"
    isatty = getattr(sys.stderr, "isatty", None)
    return "terminal" if callable(isatty) and isatty() else "log"


def _in_notebook() -> bool:
    if "ipykernel.zmqshell" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class Silent:
    """What ``progress`` yields when nothing shows: the same methods, doing nothing."""

    n: float = 0

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        pass

    def set_description(self, text: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


class LogLines(Silent):
    """Plain progress lines for logs: one every ``interval`` seconds, and one at the end."""

    def __init__(self, total: float | None, description: str, unit: str, delay: float, interval: float, stream=None):
        self.total = total
        self.description = description
        self.unit = unit
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.postfix = ""
        self.started = time.monotonic()
        self.next_line = self.started + max(delay, interval)
        self.printed = False
        self.lock = threading.Lock()

    def update(self, n: float = 1) -> None:
        with self.lock:
            self.n += n
            now = time.monotonic()
            if now >= self.next_line:
                self._line(now)
                self.next_line = now + self.interval

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.postfix = text

    def set_description(self, text: str = "", refresh: bool = True) -> None:
        self.description = text

    def close(self) -> None:
        with self.lock:
            if self.printed:
                self._line(time.monotonic(), done=True)

    def _line(self, now: float, done: bool = False) -> None:
        elapsed = now - self.started
        count = f"{_number(self.n)}/{_number(self.total)}" if self.total else _number(self.n)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        rate = f", {_number(self.n / elapsed)} {self.unit}/s" if elapsed > 0 else ""
        state = "done in" if done else "after"
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"sqlml: {self.description}: {count} {self.unit}{share} {state} {elapsed:.1f} s{rate}{extra}", file=self.stream, flush=True)
        self.printed = True


def _number(value: float | None) -> str:
    if value is None:
        return "?"
    if value >= 10_000:
        return f"{value / 1000:.1f}k" if value < 10_000_000 else f"{value / 1e6:.1f}M"
    return f"{value:.0f}" if float(value).is_integer() or value >= 100 else f"{value:.2f}"


def start(total: float | None, description: str, *, unit: str = "rows", show: bool | str | None = None, leave: bool | None = None):
    """A bar (call ``close()`` when done); ``show``: True (tqdm's bar even in a log), False, or None/'auto' for the setting."""
    config = settings()
    wanted = config["enabled"] if show in (None, "auto") else show
    if wanted is False:
        return Silent()
    place = where()
    delay = config["delay"]
    if show is True and place == "log":  # asked for by the statement (progress := true): tqdm's bar, at once
        place, delay = "terminal", 0.0
    if place == "log":
        return LogLines(total, description, unit, delay, config["interval"])
    if place == "notebook":
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped]

            return tqdm(total=total, desc=description, unit=unit, unit_scale=True, delay=delay, leave=True if leave is None else leave)
        except ImportError:  # no ipywidgets: tqdm's text bar in the cell's stderr
            pass
    from tqdm import tqdm as text_bar  # type: ignore[import-untyped]

    return text_bar(
        total=total, desc=description, unit=unit, unit_scale=True, delay=delay, file=sys.stderr, dynamic_ncols=True, leave=bool(leave)
    )


@contextmanager
def progress(total: float | None, description: str, *, unit: str = "rows", show: bool | str | None = None, leave: bool | None = None) -> Iterator[Any]:
    """``start`` as a context manager: the bar closes when the block ends."""
    bar = start(total, description, unit=unit, show=show, leave=leave)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def watch(duck, description: str, *, show: bool | str | None = None, every: float = 0.2) -> Iterator[Any]:
    """A bar for the long queries ``duck`` runs inside the block, read from DuckDB's own progress.

    DuckDB tracks a running query's progress when ``enable_progress_bar`` is on; a thread
    reads ``query_progress()`` every ``every`` seconds (the settings are restored after;
    DuckDB prints nothing itself). The bar shows the running query's percentage.
    """
    bar = start(100, description, unit="%", show=show)
    if isinstance(bar, Silent) and not isinstance(bar, LogLines):
        yield bar
        return
    saved = _progress_settings(duck)
    stop = threading.Event()

    def poll() -> None:
        queries, last = 1, -1.0
        while not stop.wait(every):
            try:
                done = float(duck.query_progress())
            except Exception:  # noqa: BLE001 - the connection is between queries or closing
                continue
            if done < 0:
                continue
            if done + 1 < last:
                queries += 1
                bar.set_postfix_str(f"query {queries}")
            last = done
            bar.update(round(done, 1) - bar.n)

    thread = threading.Thread(target=poll, name="sqlml-progress", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()
        bar.update(100 - bar.n)  # done (shows only if the work outlasted the delay)
        bar.close()
        _restore(duck, saved)


def _progress_settings(duck) -> list[tuple[str, Any]]:
    names = ("enable_progress_bar", "enable_progress_bar_print")
    try:
        saved = [(n, duck.execute(f"SELECT current_setting('{n}')").fetchall()[0][0]) for n in names]
        duck.execute("SET enable_progress_bar = true")
        duck.execute("SET enable_progress_bar_print = false")
    except Exception:  # noqa: BLE001 - no progress then, never a failed statement
        return []
    return saved


def _restore(duck, saved: list[tuple[str, Any]]) -> None:
    for name, value in saved:
        try:
            duck.execute(f"SET {name} = {'true' if value else 'false'}")
        except Exception:  # noqa: BLE001
            pass


def counted(items, description: str, *, unit: str = "rows", total: float | None = None, size=None, show: bool | str | None = None):
    """Yield from ``items`` with a bar advancing by ``size(item)`` (1 by default) per item."""
    bar = start(total, description, unit=unit, show=show)
    try:
        for item in items:
            yield item
            bar.update(1 if size is None else size(item))
    finally:
        bar.close()
