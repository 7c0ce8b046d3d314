"""What the SQL functions do: registry models on frame rows, video inference, occlusion maps.

A CNN comes from the model registry (``load_model``): the 'cnn' architecture, a
user architecture, or imported weights. Frames are pixels (``image`` BLOB with
``height``, ``width``, ``channels``, as ``ml_read_video`` writes them); a model sees
them resized to its ``input_shape``, scaled to 0..1, and normalised with ``mean``
and ``std`` when its architecture declares those options. ``ml_frame_tensor``
applies the same steps for ``ml_predict``, so full inference in SQL and the
incremental engine read identical inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlml import progress
from sqlml.errors import DataError, InvalidOptionError, ServingError
from sqlml.incremental import states
from sqlml.incremental.inference import Preprocess, VideoQuery, infer_frames
from sqlml.incremental.video import pixels as blob_pixels
from sqlml.sqlutil import quote_ident, relation_sql

CACHE = "incremental"
FRAME_COLUMNS = ("image", "height", "width", "channels")
MODES = ("incremental", "full")


@dataclass
class CnnModel:
    name: str
    version: int
    module: Any
    input_shape: tuple[int, ...]  # (C, H, W)
    classes: list[str] | None
    preprocess: Preprocess


def resolve_model(session, reference: str) -> CnnModel:
    """A registry model that takes one image ``[C, H, W]``, with its preprocessing."""
    from sqlml.models.loading import load_model

    if not reference:
        raise ServingError("no model given: pass the name of a model in the registry (see ml_models())")
    loaded = load_model(session, reference)
    record = loaded.record
    shape = tuple(int(d) for d in record.input_shape)
    if len(shape) != 3 or len(record.features.features) != 1 or record.features.features[0].kind != "array":
        raise ServingError(
            f"model {record.name!r} does not read one image: its input is {list(record.input_shape)} from "
            f"{len(record.features.features)} feature column(s); frames need a model with input_shape "
            f"[channels, height, width] (e.g. [1, H, W] for gray, [3, H, W] for color)"
        )
    options = record.options or {}
    preprocess = Preprocess(size=shape[1:], mean=_floats(options.get("mean"), 0.0), std=_floats(options.get("std"), 1.0),
                            channels=shape[0])  # fmt: skip
    return CnnModel(record.name, record.version, loaded.module, shape, record.classes, preprocess)


def program_for(session, model: CnnModel):
    """The model's traced layer graph, compiled once per session, model version and input shape."""
    from sqlml.incremental.graph import compile_model

    cache = session.cache(CACHE)
    key = ("program", model.name, model.version, model.input_shape, id(model.module))
    with session.lock:
        program = cache.get(key)
        if program is None:
            program = compile_model(model.module, model.input_shape)
            cache[key] = program
    return program


def hot_states(session) -> states.HotStates:
    cache = session.cache(CACHE)
    with session.lock:
        return cache.setdefault("hot", states.HotStates())


def io_stats(session) -> states.StateIO:
    cache = session.cache(CACHE)
    with session.lock:
        return cache.setdefault("io", states.StateIO())


# -- reading frames --------------------------------------------------------------------


def frame_rows(session, frames: str, batch_rows: int = 64) -> Iterator[dict]:
    """Rows of a frames table or query, streamed: video, frame, key, pixels (ordered by video, frame)."""
    if not isinstance(frames, str) or not frames.strip():
        raise DataError("no frames given: pass a table name or a query with image, height, width, channels")
    source = relation_sql(frames)
    with session.cursor() as cur:
        columns = [c.lower() for c in cur.sql(f"SELECT * FROM {source} LIMIT 0").columns]
    missing = [c for c in FRAME_COLUMNS if c not in columns]
    if missing:
        raise DataError(
            f"frames {frames!r} lack column(s) {', '.join(missing)}; frames need image (BLOB of uint8 H*W*C, "
            f"RGB), height, width, channels, as ml_read_video gives them",
            obj=frames,
        )
    keys = [c for c in ("video", "frame", "id") if c in columns]
    select = ", ".join(quote_ident(c) for c in (*keys, *FRAME_COLUMNS))
    order = " ORDER BY " + ", ".join(quote_ident(c) for c in ("video", "frame") if c in keys) if "frame" in keys else ""
    with session.cursor() as cur:
        reader = cur.sql(f"SELECT {select} FROM {source}{order}").to_arrow_reader(batch_rows)
        position = 0
        for batch in reader:
            for row in batch.to_pylist():
                yield {
                    "video": row.get("video") or "",
                    "frame": row["frame"] if row.get("frame") is not None else position,
                    "key": _key(row, position),
                    "pixels": blob_pixels(row["image"], row["height"], row["width"], row["channels"]),
                }
                position += 1


def _key(row, position: int) -> str:
    if row.get("id") is not None:
        return str(row["id"])
    if row.get("frame") is not None:
        return f"{row['video']}:{row['frame']}" if row.get("video") else str(row["frame"])
    return str(position)


# -- the functions -------------------------------------------------------------------------


def video_inference(session, model: str, frames: str, *, mode: str = "incremental", threshold: float = 0.0,
                    tau: float = 0.0, feature_threshold: float = 0.0, refresh: int = 100, persist: bool = True,
                    output: int = 0) -> list[dict]:  # fmt: skip
    """Per-frame results of ``model`` over ``frames`` (see ``ml_video_inference``)."""
    _check_options("ml_video_inference", mode=mode, threshold=threshold, tau=tau, refresh=refresh,
                   feature_threshold=feature_threshold)
    cnn = resolve_model(session, model)
    program = program_for(session, cnn)
    writable = persist and not session.read_only
    rows = []
    with session.own_cursor() as duck:  # for the states; the frames are read through session.cursor()
        query = VideoQuery(program, model=cnn.name, version=cnn.version, preprocess=cnn.preprocess, mode=mode,
                           threshold=float(threshold or 0.0), tau=float(tau or 0.0),
                           feature_threshold=float(feature_threshold or 0.0), refresh=int(refresh),
                           classes=cnn.classes, output=int(output or 0), hot=hot_states(session),
                           duck=duck if writable else None, io=io_stats(session))  # fmt: skip
        source = ((r["video"], r["frame"], r["pixels"]) for r in frame_rows(session, frames))
        for result in progress.counted(infer_frames(query, source), f"ml_video_inference {model}", unit="frames"):
            rows.append(result)
    return rows


def occlusion_maps(session, model: str, images: str, *, patch: int = 16, stride: int = 4, color: float = 128.0,
                   target: str | None = None, mode: str = "incremental", tau: float = 0.0, batch: int = 16,
                   output: int = 0, out_dir: str | None = None) -> list[dict]:  # fmt: skip
    """One occlusion heat map per image (see ``ml_occlusion_map``)."""
    from sqlml.incremental.occlusion import occlusion_map, save_overlay

    _check_options("ml_occlusion_map", mode=mode, tau=tau, patch=patch, stride=stride, batch=batch)
    cnn = resolve_model(session, model)
    program = program_for(session, cnn)
    index = _target_index(target, cnn)
    results = []
    for row in progress.counted(frame_rows(session, images), f"ml_occlusion_map {model}", unit="images"):
        pixels = row["pixels"]
        x = cnn.preprocess.tensor(pixels).to(program.device)
        fill = cnn.preprocess.color(color, x.shape[1])
        result = occlusion_map(program, x, patch=int(patch), stride=int(stride), color=fill, target=index,
                               output=int(output or 0), batch=int(batch), mode=mode, tau=float(tau or 0.0))  # fmt: skip
        png = None
        if out_dir:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            png = save_overlay(Path(out_dir) / f"occlusion_{_file_safe(row['key'])}.png", _resized(pixels, x), result.heatmap)
        results.append(
            {
                "key": row["key"],
                "target": result.target,
                "target_label": _label(result.target, cnn.classes),
                "base_score": result.base_score,
                "rows": int(result.heatmap.shape[0]),
                "cols": int(result.heatmap.shape[1]),
                "heatmap": result.heatmap.ravel().tolist(),
                "max_drop": float(result.heatmap.max()),
                "mode": result.mode,
                "recomputed": float(result.stats.get("recomputed", 1.0)),
                "seconds": result.seconds,
                "reason": result.stats.get("reason"),
                "png": png,
            }
        )
    return results


def frame_tensors(session, model: str | None, images, heights, widths, channels) -> list:
    """``ml_frame_tensor``: frames as flat model inputs (C*H*W floats; pixels/255 without a model)."""
    preprocess = resolve_model(session, model).preprocess if model is not None else Preprocess()
    out = []
    for image, h, w, c in zip(images, heights, widths, channels, strict=True):
        if image is None:
            out.append(None)
            continue
        out.append(preprocess.tensor(blob_pixels(image, h, w, c)).flatten().numpy())
    return out


# -- helpers -----------------------------------------------------------------------------------


def _check_options(where: str, **options) -> None:
    mode = options.get("mode")
    if mode is not None and mode not in MODES:
        raise InvalidOptionError(where, "mode", f"expected 'incremental' or 'full', got {mode!r}")
    threshold = options.get("threshold")
    if threshold is not None and not 0 <= threshold <= 255:
        raise InvalidOptionError(where, "threshold", f"expected pixel levels in [0, 255], got {threshold!r}")
    tau = options.get("tau")
    if tau is not None and not 0 <= tau <= 1:
        raise InvalidOptionError(where, "tau", f"expected a fraction in [0, 1] (0: exact), got {tau!r}")
    for name in ("patch", "stride", "batch"):
        value = options.get(name)
        if value is not None and value < 1:
            raise InvalidOptionError(where, name, f"expected a positive integer, got {value!r}")
    feature = options.get("feature_threshold")
    if feature is not None and feature < 0:
        raise InvalidOptionError(where, "feature_threshold", f"expected a fraction >= 0 of a layer's spread (0: exact), got {feature!r}")
    refresh = options.get("refresh")
    if refresh is not None and refresh < 0:
        raise InvalidOptionError(where, "refresh", f"expected frames >= 0 (0: never), got {refresh!r}")


def _target_index(target, cnn: CnnModel) -> int | None:
    if target is None:
        return None
    text = str(target)
    if cnn.classes and text in cnn.classes:
        return cnn.classes.index(text)
    if text.lstrip("-").isdigit():
        return int(text)
    known = f"; its classes: {', '.join(cnn.classes)}" if cnn.classes else ""
    raise InvalidOptionError("ml_occlusion_map", "target", f"{text!r} is not a class of model {cnn.name!r}{known}")


def _label(index: int, classes) -> str:
    return str(classes[index]) if classes and 0 <= index < len(classes) else str(index)


def _floats(value, default: float) -> tuple[float, ...]:
    if value is None:
        return (default,)
    if isinstance(value, (int, float)):
        return (float(value),)
    return tuple(float(v) for v in value)


def _resized(pixels, x):
    import cv2

    h, w = x.shape[-2:]
    if pixels.shape[:2] == (h, w):
        return pixels[:, :, :3] if pixels.shape[2] >= 3 else cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    resized = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)
    return resized if resized.ndim == 3 else cv2.cvtColor(resized, cv2.COLOR_GRAY2RGB)


def _file_safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80] or "image"
