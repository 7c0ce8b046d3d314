"""What every benchmark shares so that none can flatter: paired rounds, the machine's
state, the real-data folder, scratch space that is removed, and progress lines.

Standard library only (the anchors' venvs import it too).

- ``paired(sides, rounds)`` runs each side once per round, interleaved, the order
  alternating from round to round, after ``warmup`` untimed runs of each side; a ratio
  is then the **median of the per-round ratios**, with their min and max
  (``ratio(times, num, den)``). Best-of is reported beside it, never alone.
- ``machine()`` records the threads and load average a result was measured under.
- ``data_folder(arg, needs)`` resolves ``../shared/data`` and fails loudly when a folder
  the benchmark needs is missing (never a silent skip).
- ``scratch(prefix)`` is a temporary folder removed on exit, errors included.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def log(*parts: Any) -> None:
    """A progress line on stderr with the wall clock, flushed (benchmarks run long)."""
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def machine(threads: dict[str, int] | None = None) -> dict:
    """The conditions of a run: CPUs, load average now, and the threads each side used."""
    info: dict[str, Any] = {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}
    if threads:
        info["threads"] = dict(threads)
    return info


def paired(sides: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1,
           label: str = "", clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds per side per round: ``{side: [t_round0, t_round1, ...]}``.

    Every round runs every side once; odd rounds run them in reverse order so that
    neither side always runs first (warm caches, turbo, a neighbour's burst). ``clock``
    may be ``time.thread_time`` for one-thread CPU work on a shared machine (other jobs'
    time is then not counted; say so with the result)."""
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            sides[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            start = clock()
            sides[name]()
            times[name].append(clock() - start)
        if label:
            log(f"{label}: round {r + 1}/{rounds}", {n: round(times[n][-1], 4) for n in names})
    return times


def ratio(times: dict[str, list[float]], num: str, den: str, digits: int = 3) -> dict:
    """``num / den`` as the median of per-round ratios with min and max; best-of beside.

    A speedup of A over B is ``ratio(times, "B", "A")`` (B's time over A's)."""
    per_round = sorted(n / d for n, d in zip(times[num], times[den]))
    return {
        "median": round(statistics.median(per_round), digits),
        "min": round(per_round[0], digits),
        "max": round(per_round[-1], digits),
        "rounds": len(per_round),
        "best_of": round(min(times[num]) / min(times[den]), digits),
    }


def summary(seconds: list[float], digits: int = 4) -> dict:
    """Median, min and max of one side's times."""
    return {"median_s": round(statistics.median(seconds), digits),
            "min_s": round(min(seconds), digits), "max_s": round(max(seconds), digits)}


def fmt(r: dict) -> str:
    """``1.23x (min 1.10, max 1.40, 7 rounds)`` for a ``ratio`` result."""
    return f"{r['median']:.2f}x (min {r['min']:.2f}, max {r['max']:.2f}, {r['rounds']} rounds)"


def default_data() -> Path:
    """``../shared/data`` beside the checkout (a worktree may sit one level deeper)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return ROOT.parent / "shared" / "data"


def data_folder(arg: str | None, needs: tuple[str, ...] = ()) -> Path:
    """The real-data folder, checked: a missing folder or sub-folder stops the benchmark
    with a message that says where it looked and how to point it elsewhere."""
    folder = Path(arg) if arg else default_data()
    missing = [n for n in needs if not (folder / n).exists()]
    if not folder.is_dir() or missing:
        what = ", ".join(missing) if folder.is_dir() else str(folder)
        raise SystemExit(
            f"benchmark data missing: {what} (looked in {folder}). Real data is required for the "
            f"headline numbers: pass --data FOLDER (the shared data folder with {', '.join(needs) or 'its files'})."
        )
    return folder


@contextlib.contextmanager
def scratch(prefix: str = "sqlml-bench-") -> Iterator[Path]:
    """A temporary folder, removed when the block ends, however it ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write(result: dict, name: str, out: str | None = None) -> Path:
    """Write ``bench/results/<name>.json`` (or ``out``) with the machine state appended."""
    result = dict(result)
    result.setdefault("machine_at_end", machine())
    result.setdefault("written", time.strftime("%Y-%m-%d %H:%M:%S"))
    path = Path(out) if out else HERE / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path
