"""The servers' request log as Parquet segment files that each server alone writes.

    <database>.serving/log/requests/<server>.<first>-<last>.parquet
    <database>.serving/log/predictions/<server>.<first>-<last>.parquet

A server flushes what it logged every ``flush_seconds`` as a new file covering one flush
number (``first == last``); files are written under a hidden temporary name and renamed,
so readers only ever see whole files. Small files are merged into bigger ones (``fanout``
of a level make one of the next), named by the range of flushes they cover. A reader
keeps, per server, only the files no other file's range contains
(``live_files``), so a merge never shows a row twice; the files a merge replaced are
deleted ``grace_seconds`` later (by any server), which is how long a reader's list of
files stays valid. Retention: files older than ``retention_seconds`` are deleted, and a
server keeps its own files under ``max_bytes``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

KINDS = ("requests", "predictions")
_NAME = re.compile(r"^([A-Za-z0-9_-]+)\.(\d{10})-(\d{10})\.parquet$")


def schemas():
    import pyarrow as pa

    return {
        "requests": pa.schema(
            [
                ("request_id", pa.string()),
                ("received_at", pa.timestamp("us")),
                ("model", pa.string()),
                ("version", pa.int32()),
                ("status", pa.int32()),
                ("rows", pa.int32()),
                ("latency_ms", pa.float64()),
                ("error", pa.string()),
                ("client", pa.string()),
                ("server", pa.string()),
            ]
        ),
        "predictions": pa.schema(
            [
                ("request_id", pa.string()),
                ("row_index", pa.int32()),
                ("model", pa.string()),
                ("version", pa.int32()),
                ("logged_at", pa.timestamp("us")),
                ("features", pa.string()),
                ("prediction", pa.string()),
                ("cached", pa.bool_()),
                ("server", pa.string()),
            ]
        ),
    }


def log_folder(serving_folder: Path) -> Path:
    return serving_folder / "log"


def new_server_id() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:24] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class SegmentFile:
    path: Path
    server: str
    first: int
    last: int


def parse(path: Path) -> SegmentFile | None:
    match = _NAME.match(path.name)
    if not match:
        return None
    return SegmentFile(path, match.group(1), int(match.group(2)), int(match.group(3)))


def all_files(folder: Path, kind: str) -> list[SegmentFile]:
    directory = folder / kind
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = (parse(directory / name) for name in names)
    return [f for f in found if f is not None]


def live_files(folder: Path, kind: str) -> list[SegmentFile]:
    """The files a reader should read: per server, those no other file's range contains."""
    by_server: dict[str, list[SegmentFile]] = {}
    for f in all_files(folder, kind):
        by_server.setdefault(f.server, []).append(f)
    keep = []
    for files in by_server.values():
        files.sort(key=lambda f: (f.first, -f.last))
        reach = -1
        for f in files:
            if f.last > reach:
                keep.append(f)
                reach = f.last
    return sorted(keep, key=lambda f: (f.server, f.first))


def superseded(folder: Path, kind: str) -> list[tuple[SegmentFile, float]]:
    """Files another file's range contains, with the time their replacement appeared."""
    live = live_files(folder, kind)
    out = []
    for f in all_files(folder, kind):
        if f in live:
            continue
        covering = [g for g in live if g.server == f.server and g.first <= f.first and g.last >= f.last]
        stamp = min((_mtime(g.path) for g in covering), default=0.0)
        out.append((f, stamp))
    return out


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


class SegmentWriter:
    """One server's writer: flush files, merges, the janitor and retention."""

    def __init__(
        self,
        folder: Path,
        server_id: str | None = None,
        *,
        fanout: int = 32,
        levels: int = 3,
        grace_seconds: float = 120.0,
        retention_seconds: float | None = None,
        max_bytes: int | None = None,
    ):
        self.folder = folder
        self.server = server_id or new_server_id()
        self.fanout = max(2, fanout)
        self.levels = max(1, levels)
        self.grace_seconds = grace_seconds
        self.retention_seconds = retention_seconds
        self.max_bytes = max_bytes
        self.sequence = 0
        #: per kind, per level: own files not yet merged upward
        self._own: dict[str, list[list[SegmentFile]]] = {k: [[] for _ in range(self.levels + 1)] for k in KINDS}
        self.deleted = 0
        for kind in KINDS:
            (folder / kind).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, tables: dict) -> int:
        """Write one flush (``{kind: pyarrow.Table}``, empty kinds skipped); returns its number."""
        with self._lock:
            self.sequence += 1
            n = self.sequence
            for kind, table in tables.items():
                if table is None or table.num_rows == 0:
                    continue
                f = self._write_file(kind, [table], n, n)
                self._own[kind][0].append(f)
            return n

    def maintain(self, *, final: bool = False) -> None:
        """Merge full levels (everything into one file when ``final``), then clean up."""
        with self._lock:
            for kind in KINDS:
                levels = self._own[kind]
                for level in range(self.levels):
                    if len(levels[level]) >= self.fanout:
                        levels[level + 1].append(self._merge(kind, levels[level]))
                        levels[level] = []
                if final:
                    rest = [f for level in levels for f in level]
                    if len(rest) > 1:
                        rest.sort(key=lambda f: f.first)
                        merged = self._merge(kind, rest)
                        self._own[kind] = [[] for _ in range(self.levels + 1)]
                        self._own[kind][self.levels].append(merged)
        self.clean()

    def clean(self, now: float | None = None) -> int:
        """Delete superseded files past their grace, stale temporary files, and old files."""
        now = time.time() if now is None else now
        removed = 0
        for kind in KINDS:
            for f, since in superseded(self.folder, kind):
                if since and now - since >= self.grace_seconds:
                    removed += _unlink(f.path)
            directory = self.folder / kind
            for name in _names(directory):
                if name.startswith(".") and name.endswith(".tmp") and now - _mtime(directory / name) >= self.grace_seconds:
                    removed += _unlink(directory / name)
            if self.retention_seconds is not None:
                for f in all_files(self.folder, kind):
                    if now - _mtime(f.path) >= self.retention_seconds:
                        removed += _unlink(f.path)
                        self._forget(kind, f)
            if self.max_bytes is not None:
                mine = sorted((f for f in all_files(self.folder, kind) if f.server == self.server), key=lambda f: f.first)
                total = sum(_size(f.path) for f in mine)
                for f in mine:
                    if total <= self.max_bytes // len(KINDS):
                        break
                    total -= _size(f.path)
                    removed += _unlink(f.path)
                    self._forget(kind, f)
        self.deleted += removed
        return removed

    def _forget(self, kind: str, gone: SegmentFile) -> None:
        for level in self._own[kind]:
            if gone in level:
                level.remove(gone)

    def _merge(self, kind: str, files: list[SegmentFile]) -> SegmentFile:
        import pyarrow.parquet as pq

        present = [f for f in files if f.path.exists()]
        tables = [pq.read_table(f.path, schema=schemas()[kind]) for f in present]
        return self._write_file(kind, tables, files[0].first, files[-1].last)

    def _write_file(self, kind: str, tables: list, first: int, last: int) -> SegmentFile:
        import pyarrow.parquet as pq

        schema = schemas()[kind]
        path = self.folder / kind / f"{self.server}.{first:010d}-{last:010d}.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for table in tables:
                writer.write_table(table.select(schema.names).cast(schema))
        os.replace(tmp, path)
        return SegmentFile(path, self.server, first, last)


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except FileNotFoundError:
        return 0
