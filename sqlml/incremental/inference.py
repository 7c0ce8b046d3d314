"""Video inference over frame rows: preprocessing, one engine per video, per-frame results.

``infer_frames`` takes frames in order (video id, frame number, RGB pixels), turns
each into the model's input tensor, and runs it through a :class:`VideoEngine` per
video. A video's engine starts from the hot state of an earlier query in this
session, else from the state stored in DuckDB, else with a full pass; when the
video ends its last state goes back to both. Each result row says what the model
said (prediction, probabilities or a feature-map summary), which mode ran, and what
fraction of the model's compute it spent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlml.incremental import states
from sqlml.incremental.cost import CostModel
from sqlml.incremental.engine import VideoEngine
from sqlml.incremental.graph import Program


@dataclass
class Preprocess:
    """Pixels (H, W, C uint8 RGB) -> model input (1, C, H, W): ``(pixels/255 - mean) / std``.

    ``size`` (H, W) resizes frames that differ; ``mean``/``std`` are per channel (or one
    value) in 0..1 units, as torchvision writes them; ``channels`` converts color and gray.
    """

    size: tuple[int, int] | None = None
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    channels: int | None = None  # 1: color frames become gray; 3: gray frames are repeated

    def tensor(self, pixels):
        return self.to_tensor(self.prepare(pixels))

    def prepare(self, pixels):
        """The frame as the model sees it, still in pixels: (H, W, C) uint8 at the model's size
        and channels (what incremental inference compares frames on)."""
        import numpy as np

        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if self.channels == 1 and pixels.shape[2] == 3:
            import cv2

            pixels = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)[:, :, None]
        elif self.channels == 3 and pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        if self.size is not None and tuple(pixels.shape[:2]) != tuple(self.size):
            import cv2

            pixels = cv2.resize(np.ascontiguousarray(pixels), (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
            if pixels.ndim == 2:
                pixels = pixels[:, :, None]
        return np.require(pixels, requirements=["C"])

    def to_tensor(self, pixels):
        """Prepared pixels -> the model's input (1, C, H, W)."""
        import numpy as np
        import torch

        # (1, H, W, C) -> (1, C, H, W): channels last with a proper batch stride (an unsqueezed
        # batch dimension has stride C, which sends convolutions down a path twice as slow)
        hwc = torch.from_numpy(np.require(pixels, requirements=['C', 'W'])).float().div_(255.0)
        x = hwc.reshape(1, *hwc.shape).permute(0, 3, 1, 2)
        mean, std = self._per_channel(x.shape[1])
        return x.sub_(mean).div_(std)

    def threshold(self, pixel_threshold: float, channels: int):
        """A threshold in pixel levels (0..255) in input-tensor units, per channel."""
        _, std = self._per_channel(channels)
        values = (float(pixel_threshold) / 255.0 / std.abs()).flatten().tolist()
        return values[0] if len(set(values)) == 1 else values

    def color(self, pixel_color, channels: int):
        """An occluder color (one gray level or per channel, 0..255) in input-tensor units."""
        import torch

        levels = [pixel_color] if isinstance(pixel_color, (int, float)) else list(pixel_color)
        if len(levels) == 1:
            levels = levels * channels
        x = torch.tensor(levels, dtype=torch.float32).view(1, -1, 1, 1) / 255.0
        mean, std = self._per_channel(channels)
        return ((x - mean) / std).flatten().tolist()

    def _per_channel(self, channels: int):
        import torch

        def expand(values):
            values = list(values)
            if len(values) == 1:
                values = values * channels
            return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)

        return expand(self.mean), expand(self.std)


@dataclass
class VideoQuery:
    """Everything a video-inference query needs besides its frames."""

    program: Program
    model: str = "model"
    version: int = 1
    preprocess: Preprocess | None = None
    mode: str = "incremental"
    threshold: float = 0.0  # pixel levels (0..255)
    tau: float = 0.0
    feature_threshold: float = 0.0
    refresh: int = 100
    classes: list[str] | None = None
    output: int = 0
    hot: states.HotStates | None = None
    duck: Any = None  # a DuckDB connection for stored states (None: do not store or resume)
    keep: int = 4
    io: states.StateIO | None = None
    cost_factory: Callable[[], CostModel] | None = None  # None: default_cost()


def default_cost() -> CostModel:
    """The cost model of a video query: adaptive, timed on this machine."""
    return CostModel()


def infer_frames(query: VideoQuery, frames: Iterable[tuple[str, int, Any]]) -> Iterator[dict]:
    """One result dict per frame ``(video, frame, pixels)``, in input order."""
    preprocess = query.preprocess or Preprocess()
    device = query.program.device
    engine: VideoEngine | None = None
    key: states.StateKey | None = None
    current = None
    try:
        for (video, frame, pixels), last in _with_last(frames):
            prepared = preprocess.prepare(pixels)
            x = preprocess.to_tensor(prepared).to(device)
            if engine is None or video != current:
                _finish(query, engine, key)
                current = video
                engine, key = _start(query, video, frame, x, preprocess)
            # the outputs are summarized right away: no copies of the state's output maps
            result = engine.step(x, frame, keep_state=last, pixels=prepared, copy=False)
            yield {"video": video, "frame": frame, **summarize(result.output, query.classes, query.output),
                   "mode": result.mode, "recomputed": float(result.recomputed), "reason": result.reason,
                   "ms": result.seconds * 1e3}  # fmt: skip
    finally:
        _finish(query, engine, key)


def _with_last(frames):
    """(frame, whether it is its video's last) pairs: the last frame's state is the one stored."""
    iterator = iter(frames)
    previous = next(iterator, None)
    for item in iterator:
        yield previous, item[0] != previous[0]
        previous = item
    if previous is not None:
        yield previous, True


def _start(query: VideoQuery, video: str, frame, x, preprocess: Preprocess):
    program = query.program
    threshold = preprocess.threshold(query.threshold, x.shape[1]) if query.threshold else 0.0
    engine = VideoEngine(program, mode=query.mode, threshold=threshold, tau=query.tau,
                         feature_threshold=query.feature_threshold, refresh=query.refresh, cost=(query.cost_factory or default_cost)(),
                         pixel_threshold=float(query.threshold or 0.0))  # fmt: skip
    if query.mode == "full" or not program.supported:
        return engine, None
    key = states.StateKey(query.model, int(query.version), str(video), states.signature(program))
    state = query.hot.get(key) if query.hot is not None else None
    if state is not None and engine.exact and not state.exact:
        state = None  # an exact query never continues from an approximate state
    if state is None and query.duck is not None:
        state = states.load(query.duck, key, frame, exact_only=engine.exact, io=query.io)
    if state is not None and tuple(state.tensors[program.input_name].shape) == tuple(x.shape):
        engine.resume(state)
    return engine, key


def _finish(query: VideoQuery, engine: VideoEngine | None, key) -> None:
    if engine is None or key is None or engine.state is None:
        return
    if query.hot is not None:
        query.hot.put(key, engine.state)
    if query.duck is not None:
        states.save(query.duck, key, engine.state, keep=query.keep, io=query.io)


def summarize(output, classes: list[str] | None = None, index: int = 0) -> dict:
    """Prediction and probabilities of a classifier output; a per-channel summary of a map."""
    import torch

    if not isinstance(output, torch.Tensor):
        output = list(output.values())[index] if isinstance(output, dict) else output[index]
    primary = output.detach().float().cpu()
    shape = list(primary.shape[1:])
    if primary.ndim == 2:
        probabilities = primary[0].softmax(dim=0)
        best = int(probabilities.argmax())
        return {"prediction": _label(best, classes), "class_index": best,
                "probabilities": probabilities.tolist(), "summary": None, "output_shape": shape}  # fmt: skip
    if primary.ndim == 4:
        peaks = primary[0].flatten(1).max(dim=1).values
        best = int(peaks.argmax())
        return {"prediction": _label(best, classes), "class_index": best,
                "probabilities": None, "summary": peaks.tolist(), "output_shape": shape}  # fmt: skip
    flat = primary.flatten()
    best = int(flat.argmax()) if flat.numel() else None
    return {"prediction": None if best is None else _label(best, classes), "class_index": best,
            "probabilities": None, "summary": flat[:64].tolist(), "output_shape": shape}  # fmt: skip


def _label(index: int, classes: list[str] | None) -> str:
    if classes and 0 <= index < len(classes):
        return str(classes[index])
    return str(index)
