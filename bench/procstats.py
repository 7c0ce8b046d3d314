"""What a benchmark process measures about itself: peak and current RSS, CPU seconds.

Standard library only, so the anchors' own venvs (snorkel, TFDV) import it too: each
benchmark script runs with ``bench/`` first on ``sys.path``.
"""

from __future__ import annotations

import resource


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries the spawning
    process's high-water mark over exec into it, which floors a small worker at the peak of
    the benchmark driver that started it (measured: a worker spawned by a 400 MB parent
    reports 407 MB at its first line)."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident memory now (0 where /proc is missing)."""
    return _status_mb("VmRSS") or 0.0


def cpu_s() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
