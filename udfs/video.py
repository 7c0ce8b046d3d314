"""Video and incremental-inference functions: ``ml_read_video``, ``ml_read_images``,
``ml_video_inference``, ``ml_occlusion_map`` and ``ml_frame_tensor``.

Thin wrappers: the work is in ``sqlml.incremental`` (torch and OpenCV load on first call).
"""

from sqlml.incremental.video import COLUMNS as FRAME_COLUMNS  # light: OpenCV loads inside its functions
from sqlml.udf import scalar_function, table_function


@table_function(
    "ml_read_video",
    columns=FRAME_COLUMNS,
    params=[("path", "VARCHAR")],
    named=[
        ("fps", "DOUBLE", None),
        ("size", "INTEGER[]", None),
        ("start", "DOUBLE", None),
        ("stop", "DOUBLE", None),
        ("end", "DOUBLE", None),
        ("video", "VARCHAR", None),
    ],
)
def ml_read_video(session, path, fps, size, start, stop, end, video):
    """Frames of a video file: one row per frame, pixels as an RGB BLOB with its shape."""
    import pyarrow as pa

    from sqlml.incremental.video import arrow_schema, frame_batches

    batches = list(frame_batches(path, video=video, fps=fps, size=size, start=start, stop=stop if stop is not None else end))
    return pa.Table.from_batches(batches, schema=arrow_schema())


@table_function(
    "ml_read_images",
    columns=[("id", "VARCHAR"), ("height", "INTEGER"), ("width", "INTEGER"), ("channels", "INTEGER"), ("image", "BLOB")],
    params=[("pattern", "VARCHAR")],
    named=[("size", "INTEGER[]", None)],
)
def ml_read_images(session, pattern, size):
    """Image files matching a glob pattern (PNG, JPEG, ...), as RGB BLOB rows keyed by path."""
    from sqlml.incremental.video import read_images

    return read_images(pattern, size=size)


@table_function(
    "ml_video_inference",
    columns=[
        ("video", "VARCHAR"),
        ("frame", "BIGINT"),
        ("prediction", "VARCHAR"),
        ("class_index", "INTEGER"),
        ("probabilities", "FLOAT[]"),
        ("summary", "FLOAT[]"),
        ("output_shape", "INTEGER[]"),
        ("mode", "VARCHAR"),
        ("recomputed", "DOUBLE"),
        ("reason", "VARCHAR"),
        ("ms", "DOUBLE"),
    ],
    params=[("model", "VARCHAR"), ("frames", "VARCHAR")],
    named=[
        ("mode", "VARCHAR", "incremental"),
        ("threshold", "DOUBLE", 0.0),
        ("tau", "DOUBLE", 0.0),
        ("feature_threshold", "DOUBLE", 0.0),
        ("refresh", "INTEGER", 100),
        ("persist", "BOOLEAN", True),
        ("output", "INTEGER", 0),
    ],
    sources=("frames",),
)
def ml_video_inference(session, model, frames, mode, threshold, tau, feature_threshold, refresh, persist, output):
    """A CNN over the frames of a table or query, recomputing only what changed between frames."""
    from sqlml.incremental.service import video_inference

    return video_inference(session, model, frames, mode=mode, threshold=threshold, tau=tau,
                           feature_threshold=feature_threshold, refresh=refresh, persist=persist, output=output)  # fmt: skip


@table_function(
    "ml_occlusion_map",
    columns=[
        ("key", "VARCHAR"),
        ("target", "INTEGER"),
        ("target_label", "VARCHAR"),
        ("base_score", "DOUBLE"),
        ("rows", "INTEGER"),
        ("cols", "INTEGER"),
        ("heatmap", "FLOAT[]"),
        ("max_drop", "DOUBLE"),
        ("mode", "VARCHAR"),
        ("recomputed", "DOUBLE"),
        ("seconds", "DOUBLE"),
        ("reason", "VARCHAR"),
        ("png", "VARCHAR"),
    ],
    params=[("model", "VARCHAR"), ("images", "VARCHAR")],
    named=[
        ("patch", "INTEGER", 16),
        ("stride", "INTEGER", 4),
        ("color", "DOUBLE", 128.0),
        ("target", "VARCHAR", None),
        ("mode", "VARCHAR", "incremental"),
        ("tau", "DOUBLE", 0.0),
        ("batch", "INTEGER", 16),
        ("output", "INTEGER", 0),
        ("out_dir", "VARCHAR", None),
    ],
    sources=("images",),
)
def ml_occlusion_map(session, model, images, patch, stride, color, target, mode, tau, batch, output, out_dir):
    """Occlusion heat maps (score drop per patch position), by batched incremental inference."""
    from sqlml.incremental.service import occlusion_maps

    return occlusion_maps(session, model, images, patch=patch, stride=stride, color=color, target=target, mode=mode,
                          tau=tau, batch=batch, output=output, out_dir=out_dir)  # fmt: skip


@scalar_function("ml_frame_tensor", returns="FLOAT[]", params=None, vectorized=True)
def ml_frame_tensor(session, image, height, width, channels, *model):
    """ml_frame_tensor(image, height, width, channels [, model]): a frame as a flat FLOAT[] (C, H, W order).

    Pixels scaled to 0..1; with a model, resized to its input shape and normalised as
    ml_video_inference does, so ml_predict(model, ml_frame_tensor(..., model)) is full inference.
    """
    import pyarrow as pa

    from sqlml.incremental.service import frame_tensors

    columns = [col.to_pylist() for col in (image, height, width, channels)]
    names = model[0].to_pylist() if model else [None] * len(image)
    out = [None] * len(image)
    for name in set(names):
        rows = [i for i, m in enumerate(names) if m == name]
        values = frame_tensors(session, name, *([col[i] for i in rows] for col in columns))
        for i, v in zip(rows, values, strict=True):
            out[i] = v
    return pa.array(out, pa.list_(pa.float32()))
