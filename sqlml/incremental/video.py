"""Video ingest: decode a file with OpenCV into frame rows, streaming.

A frame row is ``(video, frame, time_s, height, width, channels, image)``: the video
id (the path unless given), the frame's number in the file, its time in seconds,
and the pixels as a BLOB of ``height*width*channels`` bytes, RGB, row-major (H, W, C).
Frames are decoded one at a time and leave in Arrow batches, so a long video never
sits in memory: ``frames_reader`` is a ``pyarrow.RecordBatchReader`` DuckDB consumes
as a stream (``load_video`` writes one into a table).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from sqlml.errors import InvalidOptionError, ObjectExistsError, UnknownObjectError, VideoError

#: the largest frame side ``size`` may ask for (8192 x 8192 RGB is 192 MiB a frame)
MAX_SIDE = 8192

COLUMNS = [
    ("video", "VARCHAR"),
    ("frame", "BIGINT"),
    ("time_s", "DOUBLE"),
    ("height", "INTEGER"),
    ("width", "INTEGER"),
    ("channels", "INTEGER"),
    ("image", "BLOB"),
]


@dataclass
class VideoInfo:
    path: str
    fps: float
    frames: int  # as the container reports it (may be an estimate)
    width: int
    height: int


@dataclass
class Frame:
    number: int
    time_s: float
    pixels: object  # numpy uint8 (H, W, 3), RGB


def probe(path: str) -> VideoInfo:
    """Size, rate and length of a video; ``VideoError`` naming the file when it cannot be read."""
    capture = _open(path)
    try:
        return _info(path, capture)
    finally:
        capture.release()


def iter_frames(path: str, *, fps: float | None = None, size=None, start: float | None = None,
                stop: float | None = None, partial: bool = False) -> Iterator[Frame]:  # fmt: skip
    """Decoded frames of ``path`` in order, resampled to about ``fps``, resized to ``size``.

    ``size`` is ``[height, width]``, ``[side]`` or an int; ``start``/``stop`` are seconds
    (``stop`` excluded). Skipped frames are grabbed without conversion. A file that ends
    before the frames its header declares (truncated, or corrupt) raises ``VideoError``
    after its last readable frame, unless ``partial``; so does a range with no frame.
    """
    import cv2

    target_hw = parse_size(size)
    if fps is not None and fps <= 0:
        raise InvalidOptionError("ml_read_video", "fps", f"must be positive, got {fps}")
    if start is not None and stop is not None and stop <= start:
        raise InvalidOptionError("ml_read_video", "stop", f"must be after start ({start}), got {stop}")
    capture = _open(path)
    try:
        info = _info(path, capture)
        rate = info.fps if info.fps > 0 else 25.0
        step = 1.0 / fps if fps else 0.0
        next_time = start or 0.0
        number = -1
        yielded = 0
        stopped = False
        while True:
            if not capture.grab():
                break
            number += 1
            t = number / rate
            if start is not None and t + 1e-9 < start:
                continue
            if stop is not None and t + 1e-9 >= stop:
                stopped = True
                break
            if step and t + 1e-9 < next_time:
                continue
            ok, bgr = capture.retrieve()
            if not ok or bgr is None:
                raise VideoError(f"cannot decode frame {number} of video file {path!r}", path=path)
            while step and next_time <= t + 1e-9:
                next_time += step
            if target_hw is not None and (bgr.shape[0], bgr.shape[1]) != target_hw:
                bgr = cv2.resize(bgr, (target_hw[1], target_hw[0]), interpolation=cv2.INTER_AREA)
            yielded += 1
            yield Frame(number, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if number < 0:
            raise VideoError(f"video file {path!r} has no decodable frames", path=path)
        if not stopped and not partial and info.frames > 0 and number + 2 < info.frames:
            raise VideoError(
                f"video file {path!r} ends after {number + 1} of the {info.frames} frames its header declares "
                f"(truncated or corrupt); pass partial := true to load the readable frames",
                path=path,
            )
        if yielded == 0:
            span = f"between {start or 0.0:g} s and {stop:g} s" if stop is not None else f"from {start or 0.0:g} s on"
            raise VideoError(f"video file {path!r} has no frame {span} (it has {number + 1} frames, "
                             f"{(number + 1) / rate:.2f} s)", path=path)  # fmt: skip
    finally:
        capture.release()


def frame_batches(path: str, *, video: str | None = None, batch_frames: int = 32, **options):
    """``iter_frames`` as Arrow record batches of up to ``batch_frames`` rows."""
    schema = arrow_schema()
    video_id = video if video is not None else path
    rows: list[Frame] = []
    for frame in iter_frames(path, **options):
        rows.append(frame)
        if len(rows) >= batch_frames:
            yield _batch(schema, video_id, rows)
            rows = []
    if rows:
        yield _batch(schema, video_id, rows)


def frames_reader(path: str, errors: list | None = None, **options):
    """A ``pyarrow.RecordBatchReader`` over the frames (decoding happens as it is read);
    an error raised while decoding is also appended to ``errors`` (DuckDB re-wraps it)."""
    import pyarrow as pa

    from sqlml import progress

    _open(path).release()  # fail here, naming the file, rather than mid-query
    parse_size(options.get("size"))
    batches = progress.counted(frame_batches(path, **options), f"reading {os.path.basename(path)}", unit="frames", size=lambda b: b.num_rows)
    if errors is not None:
        batches = _recording(batches, errors)
    return pa.RecordBatchReader.from_batches(arrow_schema(), batches)


def _recording(batches, errors: list):
    try:
        yield from batches
    except Exception as error:
        errors.append(error)
        raise


def load_video(con, path: str, table: str, *, replace: bool = False, **options) -> int:
    """Stream the frames of ``path`` into ``table`` (created); returns the number of rows.

    The table is written in one statement: when decoding fails (a truncated file, a range
    with no frame) the old table, if any, is left as it was.
    """
    from sqlml.sqlutil import fetch_value, split_name, table_ref

    duck = con.duckdb if hasattr(con, "duckdb") else con
    parts = tuple(table) if isinstance(table, (list, tuple)) else tuple(split_name(table))
    if len(parts) > 1 and not _schema_exists(duck, parts[:-1]):
        raise UnknownObjectError("schema", ".".join(parts[:-1]),
                                 hint=f"Create it first (CREATE SCHEMA {parts[-2]}) or load into an existing one.")  # fmt: skip
    if not replace and _exists(duck, parts):
        raise ObjectExistsError("table", ".".join(parts), hint="Add WITH (replace := true) to overwrite it, or load into another table.")
    errors: list = []
    reader = frames_reader(path, errors, **options)
    verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
    name = f"__sqlml_video_{os.getpid()}_{id(reader)}"
    duck.register(name, reader)
    try:
        duck.execute(f"{verb} {table_ref(table)} AS SELECT * FROM {name}")
    except Exception as error:
        _forget(duck, name)  # in a failed transaction unregistering fails too: the first error matters
        if errors:
            raise errors[0] from error
        raise
    duck.unregister(name)
    return int(fetch_value(duck, f"SELECT count(*) FROM {table_ref(table)}"))


def _exists(duck, table: tuple[str, ...]) -> bool:
    """Whether ``[[database.]schema.]name`` names a table or view already: a catalog lookup,
    so a transaction in progress is not aborted by a failing bind."""
    from sqlml.sqlutil import fetch_value

    *qualifier, name = table
    database, schema = ([None, None] + list(qualifier))[-2:]
    found = fetch_value(
        duck,
        "SELECT count(*) FROM (SELECT database_name, schema_name, table_name AS name FROM duckdb_tables() "
        "UNION ALL SELECT database_name, schema_name, view_name FROM duckdb_views() WHERE NOT internal) "
        "WHERE lower(name) = lower($1) AND lower(schema_name) = lower(coalesce($2, current_schema())) "
        "AND lower(database_name) = lower(coalesce($3, current_database()))",
        [name, schema, database],
    )
    return bool(found)


def _schema_exists(duck, qualifier: tuple[str, ...]) -> bool:
    """Whether ``[database.]schema`` exists; a lone qualifier may also name an attached
    database, as DuckDB reads ``a.t`` (looked up, not bound, as ``_exists``)."""
    from sqlml.sqlutil import fetch_value

    if len(qualifier) == 1:
        sql = ("SELECT (SELECT count(*) FROM duckdb_schemas() WHERE lower(schema_name) = lower($1) "
               "AND database_name = current_database()) + "
               "(SELECT count(*) FROM duckdb_databases() WHERE lower(database_name) = lower($1))")
        return bool(fetch_value(duck, sql, [qualifier[0]]))
    database, schema = qualifier[-2:]
    sql = ("SELECT count(*) FROM duckdb_schemas() WHERE lower(schema_name) = lower($1) "
           "AND lower(database_name) = lower($2)")
    return bool(fetch_value(duck, sql, [schema, database]))


def _forget(duck, name: str) -> None:
    try:
        duck.unregister(name)
    except Exception:  # noqa: BLE001 - a view of this connection only, unique to this call
        pass


def read_images(pattern: str, *, size=None) -> list[dict]:
    """Image files matching ``pattern`` (a path or glob), as rows (id, height, width, channels, image).

    A glob skips the directories it matches (``photos/*`` reads the files only); a path
    that is a directory, a file that does not exist or is not an image raise ``VideoError``.
    """
    import glob

    import cv2

    if pattern is None or not str(pattern).strip():
        raise VideoError("no image file given (pattern is empty or NULL)", path=pattern)
    target_hw = parse_size(size, where="ml_read_images")
    if any(ch in pattern for ch in "*?["):
        matched = sorted(glob.glob(pattern))
        paths = [p for p in matched if not os.path.isdir(p)]
        if not paths:
            skipped = f" ({len(matched)} director{'y' if len(matched) == 1 else 'ies'} skipped)" if matched else ""
            raise VideoError(f"no image file matches {pattern!r}{skipped}", path=pattern)
    else:
        paths = [pattern]
    rows = []
    for path in paths:
        if os.path.isdir(path):
            raise VideoError(f"{path!r} is a directory, not an image file (use a pattern like '{path.rstrip('/')}/*.png')", path=path)
        if not os.path.isfile(path):
            raise VideoError(f"image file {path!r} does not exist", path=path)
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise VideoError(f"cannot decode image file {path!r}", path=path)
        if target_hw is not None and bgr.shape[:2] != target_hw:
            bgr = cv2.resize(bgr, (target_hw[1], target_hw[0]), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        rows.append({"id": path, "height": rgb.shape[0], "width": rgb.shape[1], "channels": 3, "image": rgb.tobytes()})
    return rows


def arrow_schema():
    import pyarrow as pa

    types = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BLOB": pa.binary()}
    return pa.schema([(name, types[kind]) for name, kind in COLUMNS])


def pixels(image: bytes, height: int, width: int, channels: int):
    """The (H, W, C) uint8 array of a frame row's ``image`` BLOB."""
    import numpy as np

    expected = int(height) * int(width) * int(channels)
    if image is None or len(image) != expected:
        got = "NULL" if image is None else f"{len(image)} bytes"
        raise VideoError(f"image BLOB of {got} does not match its shape {height}x{width}x{channels} ({expected} bytes)")
    return np.frombuffer(image, dtype=np.uint8).reshape(int(height), int(width), int(channels))


def parse_size(size, where: str = "ml_read_video") -> tuple[int, int] | None:
    """``None``, ``224``, ``[224]`` or ``[height, width]`` -> (height, width) or None; each side
    1 .. ``MAX_SIDE`` pixels."""
    if size is None:
        return None
    values = [size] if isinstance(size, (int, float)) else list(size)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or any(v is None or int(v) <= 0 for v in values):
        raise InvalidOptionError(where, "size", f"must be [height, width] or [side] in pixels, got {size!r}")
    if any(int(v) > MAX_SIDE for v in values):
        raise InvalidOptionError(where, "size", f"each side must be at most {MAX_SIDE} pixels, got {size!r}")
    return int(values[0]), int(values[1])


def _batch(schema, video_id: str, frames: list[Frame]):
    import pyarrow as pa

    columns = [
        pa.array([video_id] * len(frames), pa.string()),
        pa.array([f.number for f in frames], pa.int64()),
        pa.array([f.time_s for f in frames], pa.float64()),
        pa.array([f.pixels.shape[0] for f in frames], pa.int32()),
        pa.array([f.pixels.shape[1] for f in frames], pa.int32()),
        pa.array([f.pixels.shape[2] for f in frames], pa.int32()),
        pa.array([f.pixels.tobytes() for f in frames], pa.binary()),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _open(path: str):
    import cv2

    if path is None or not str(path).strip():
        raise VideoError("no video file given (path is empty or NULL)", path=path)
    path = str(path)
    if not os.path.exists(path):
        raise VideoError(f"video file {path!r} does not exist", path=path)
    if os.path.isdir(path):
        raise VideoError(f"video file {path!r} is a directory", path=path)
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"cannot decode video file {path!r}: OpenCV cannot open it (not a video, or an unknown codec)", path=path)
    return capture


def _info(path: str, capture) -> VideoInfo:
    import cv2

    return VideoInfo(
        path=path,
        fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
        frames=int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
    )
