"""``LOAD VIDEO 'file' INTO table [WITH (...)]``: stream a video's frames into a table.

Unlike ``CREATE TABLE t AS SELECT * FROM ml_read_video(...)`` (a table function
returns all its rows at once), the frames go from the decoder to DuckDB in Arrow
batches, so a long video never sits in memory.
"""

from __future__ import annotations

from sqlml import bounds
from sqlml.errors import InvalidOptionError

OPTIONS = ("fps", "size", "start", "stop", "end", "video", "replace", "batch_frames", "partial")


def load_video(ctx):
    """``LOAD VIDEO 'path' INTO name [WITH (fps := 5, size := [h, w], start := 1.0, stop := 9.0,
    video := 'id', replace := true, batch_frames := 32, partial := true)]``; shows the rows written."""
    import pyarrow as pa

    from sqlml.incremental.video import load_video as load

    p = ctx.parser()
    p.expect("LOAD", "VIDEO")
    path = p.literal()
    if not isinstance(path, str):
        p.error("expected the video file's path as a string")
    p.expect("INTO")
    table = p.qualified_name("a table name")
    options = p.options() if p.accept("WITH") else {}
    p.end()
    for key in options:
        if key not in OPTIONS:
            raise InvalidOptionError("LOAD VIDEO", key, allowed=OPTIONS)
    batch_frames = bounds.require("LOAD VIDEO", "batch_frames", options.get("batch_frames", 32), bounds.whole(1, bounds.MAX_BATCH_ROWS))
    replace = bool(options.get("replace", False))
    stop = options.get("stop", options.get("end"))
    rows = load(ctx.duck, path, table, replace=replace, video=options.get("video"),
                batch_frames=batch_frames, fps=options.get("fps"), size=options.get("size"),
                start=options.get("start"), stop=stop, partial=bool(options.get("partial", False)))  # fmt: skip
    summary = pa.table({"video": [options.get("video") or path], "table": [".".join(table)], "frames": [rows]})
    return ctx.connection.wrap(ctx.duck.from_arrow(summary))

