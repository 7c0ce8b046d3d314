"""What bench/incremental.py measures besides video: clips and models, occlusion maps, exactness
per layer type, and materialized states in DuckDB (imported by it; not a script)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import rounds
import torch

from sqlml.incremental import states, video
from sqlml.incremental.cost import CostModel
from sqlml.incremental.engine import VideoEngine
from sqlml.incremental.graph import compile_model
from sqlml.incremental.nets import pnet, vgg_style
from sqlml.incremental.occlusion import occlusion_map

CLIPS = {"highway": "highway_static.mp4", "bikes": "bikes.mp4", "carphone": "carphone_pristine.mp4",
         "bigbuckbunny": "bigbuckbunny.mp4"}  # fmt: skip

def log(*parts) -> None:
    print(*parts, flush=True)


# -- clips -----------------------------------------------------------------------------------


def real_clip(data: Path, name: str, limit: int, longest: int | None = None) -> list[np.ndarray]:
    """Frames of a clip in ``data``; ``longest`` scales them down so the longer side fits."""
    path = str(data / "video" / CLIPS[name])
    size = None
    if longest is not None:
        info = video.probe(path)
        scale = min(1.0, longest / max(info.width, info.height))
        size = [round(info.height * scale), round(info.width * scale)]
    return [f.pixels for _, f in zip(range(limit), video.iter_frames(path, size=size), strict=False)]


def cv2_resize(pixels: np.ndarray, side: int) -> np.ndarray:
    import cv2

    return cv2.resize(pixels, (side, side), interpolation=cv2.INTER_AREA)


def surveillance_clip(width: int, limit: int, seed: int = 0) -> list[np.ndarray]:
    """A fixed camera over a still scene with sensor noise and a few small moving objects.

    Encoded with mp4v and decoded again, so codec noise is real (not bit-exact frames).
    """
    rng = np.random.default_rng(seed)
    w = width
    h = width * 9 // 16
    k = w / 448  # sizes scale with the frame
    yy, xx = np.mgrid[0:h, 0:w]
    scene = np.stack([90 + 60 * yy / h, 110 + 40 * xx / w, 100 + 30 * np.sin(xx / 17.0)], -1)
    for _ in range(14):  # buildings, windows, a road
        y0, x0 = rng.integers(0, h - 20), rng.integers(0, w - 20)
        scene[y0 : y0 + int(rng.integers(10, 60) * k), x0 : x0 + int(rng.integers(10, 60) * k)] = rng.integers(30, 220, 3)
    scene[int(h * 0.7) : int(h * 0.8)] = (70, 70, 75)
    scene = np.clip(scene + rng.normal(0, 6, scene.shape), 0, 255)
    walkers = [
        {"y": int(h * 0.72), "x": -20.0 * k, "vx": 2.5 * k, "size": (round(14 * k), round(22 * k)), "color": (200, 40, 40)},
        {"y": int(h * 0.45), "x": float(w), "vx": -1.2 * k, "size": (round(18 * k), round(8 * k)), "color": (40, 40, 200)},
        {"y": int(h * 0.25), "x": w * 0.3, "vx": 0.6 * k, "size": (round(12 * k), round(6 * k)), "color": (230, 230, 60)},
    ]
    with rounds.scratch("sqlml-surveillance-") as folder:
        return _encoded(folder / "surveillance.mp4", scene, walkers, rng, limit, w, h)


def _encoded(path, scene, walkers, rng, limit, w, h) -> list[np.ndarray]:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
    for _ in range(limit):
        frame = scene + rng.normal(0, 1.5, scene.shape)  # sensor noise
        for p in walkers:
            p["x"] += p["vx"]
            x0, y0 = int(p["x"]), p["y"]
            fh, fw = p["size"]
            frame[max(y0, 0) : max(y0 + fh, 0), max(x0, 0) : max(x0 + fw, 0)] = p["color"]
        writer.write(cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    writer.release()
    return [f.pixels for f in video.iter_frames(str(path))]


# -- models ----------------------------------------------------------------------------------


def vgg_classifier(size: int, tensors: list, device, k: int = 8, seed: int = 0):
    """VGG16 layout at 1/4 width, random convs, a nearest-class-mean head over k scene clusters.

    The pooled features are standardised over the clip, clustered (k-means), and the
    linear layer scores a frame by its distance to each centre, scaled so the typical
    margin between the best two classes is about one logit: the top-1 follows the
    scene's content, and probabilities are neither flat nor saturated.
    """
    torch.manual_seed(seed)
    model = vgg_style((3, size, size), k, {"width": 0.25}).to(device).eval()
    features = model[:-1]  # everything up to the linear layer
    with torch.inference_mode():
        raw = torch.cat([features(x) for x in tensors]).float()
    mean, std = raw.mean(0), raw.std(0).clamp_min(1e-6)
    feats = (raw - mean) / std
    rng = np.random.default_rng(seed)
    centres = feats[torch.as_tensor(rng.choice(len(feats), size=min(k, len(feats)), replace=False))].clone()
    for _ in range(25):  # k-means
        assign = torch.cdist(feats, centres).argmin(1)
        for j in range(len(centres)):
            if (assign == j).any():
                centres[j] = feats[assign == j].mean(0)
    weight = centres  # argmin |f - c|^2 == argmax (c.f - |c|^2 / 2)
    bias = -(centres.norm(dim=1) ** 2) / 2
    logits = feats @ weight.T + bias
    top2 = logits.topk(2, dim=1).values
    scale = 1.0 / (top2[:, 0] - top2[:, 1]).median().clamp_min(1e-6)
    head = model[-1]
    with torch.no_grad():  # fold the standardisation into the layer: W (f - mean) / std + b
        head.weight.zero_()
        head.bias.fill_(-1e4)
        head.weight[: len(centres)] = weight / std * scale
        head.bias[: len(centres)] = (bias - (weight / std * mean).sum(1)) * scale
    return model


def real_pnet(data: Path, device):
    model = pnet()
    model.load_state_dict(torch.load(data / "weights" / "pnet.pt", weights_only=True))
    return model.to(device).eval()


# -- occlusion maps, exactness per layer type, states --------------------------------------


def occlusion_case(name, model, x, patch, stride, batch, rounds_n, clock, target=None, tau=0.0) -> dict:
    """Naive batched re-inference vs batched incremental inference: paired rounds."""
    program = compile_model(model, tuple(x.shape))
    maps = {}

    def side(mode):
        def run():
            maps[mode] = occlusion_map(program, x, patch=patch, stride=stride, batch=batch, mode=mode, target=target,
                                       tau=tau if mode == "incremental" else 0.0)  # fmt: skip
        return run

    times = rounds.paired({"naive": side("full"), "incremental": side("incremental")}, rounds_n, clock=clock)
    a, b = maps["full"], maps["incremental"]
    row = {"case": name, "image": list(x.shape[-2:]), "patch": patch, "stride": stride, "batch": batch, "tau": tau,
           "queries": len(a.positions), "naive": rounds.summary(times["naive"]),
           "incremental": rounds.summary(times["incremental"]), "speedup": rounds.ratio(times, "naive", "incremental"),
           "max_abs_diff": float(np.abs(a.heatmap - b.heatmap).max()), "recomputed": b.stats.get("recomputed")}  # fmt: skip
    log(f"  {name:<26} {row['queries']:5d} queries  naive {row['naive']['median_s']:6.2f}s  "
        f"incremental {row['incremental']['median_s']:6.2f}s  {rounds.fmt(row['speedup'])}  diff {row['max_abs_diff']:.1e}")  # fmt: skip
    return row


def layer_exactness(device) -> dict:
    """Max |incremental - full| for each supported layer type, over random patches."""
    import torch.nn as nn

    bn = nn.BatchNorm2d(8)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    layers = {
        "conv3x3": nn.Conv2d(8, 8, 3, padding=1), "conv_stride2": nn.Conv2d(8, 8, 3, 2, 1),
        "conv_dilated": nn.Conv2d(8, 8, 3, padding=2, dilation=2), "conv_grouped": nn.Conv2d(8, 8, 3, padding=1, groups=4),
        "maxpool": nn.MaxPool2d(2), "maxpool_ceil": nn.MaxPool2d(3, 2, ceil_mode=True),
        "avgpool_pad": nn.AvgPool2d(3, 2, padding=1, count_include_pad=False), "batchnorm_eval": bn,
        "relu": nn.ReLU(), "prelu": nn.PReLU(8), "sigmoid": nn.Sigmoid(), "softmax_channels": nn.Softmax(dim=1),
    }  # fmt: skip
    out = {}
    for name, layer in layers.items():
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), layer, nn.Conv2d(8, 4, 3, padding=1)).to(device).eval()
        out[name] = _max_diff(model, device)
    out["residual_add"] = _max_diff(_Residual().to(device).eval(), device)
    out["concat"] = _max_diff(_Concat().to(device).eval(), device)
    return out


def _max_diff(model, device, shape=(3, 57, 61), trials=20) -> float:
    program = compile_model(model, shape)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, *shape, generator=generator).to(device)
    engine = VideoEngine(program, cost=CostModel(margin=10.0, adaptive=False, call_seconds=0.0))  # always update
    worst = 0.0
    engine.step(x)
    for _ in range(trials):
        h, w = (int(v) for v in torch.randint(1, 20, (2,), generator=generator))
        y0 = int(torch.randint(0, shape[1] - h + 1, (1,), generator=generator))
        x0 = int(torch.randint(0, shape[2] - w + 1, (1,), generator=generator))
        x = x.clone()
        x[..., y0 : y0 + h, x0 : x0 + w] = torch.randn(1, 3, h, w, generator=generator).to(device)
        result = engine.step(x)
        assert result.mode == "incremental", result.reason
        with torch.inference_mode():
            worst = max(worst, float((result.output - model(x)).abs().max()))
    return worst


class _Residual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        y = torch.relu(self.a(x))
        return torch.relu(self.b(y) + y)


class _Concat(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, 4, 1), torch.nn.Conv2d(3, 4, 5, padding=2)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=1)


def states_case(program, x, reps: int) -> dict:

    with torch.inference_mode():
        output, tensors = program.run(x)
    from sqlml.incremental.engine import State

    state = State(tensors, output, frame=0, key_frame=0)
    key = states.StateKey("bench", 1, "clip", states.signature(program))
    with rounds.scratch("sqlml-states-") as folder:
        return _states_timed(program, x, reps, state, key, folder / "states.duckdb", tensors)


def _states_timed(program, x, reps, state, key, path, tensors) -> dict:
    import sqlml

    con = sqlml.connect(str(path))
    io = states.StateIO()
    write = read = float("inf")
    for i in range(reps + 1):
        started = time.perf_counter()
        states.save(con.duckdb, key, state, io=io)
        w = time.perf_counter() - started
        started = time.perf_counter()
        states.load(con.duckdb, key, io=io)
        r = time.perf_counter() - started
        if i:  # the first round pays one-off imports
            write, read = min(write, w), min(read, r)
    con.close()
    full = float("inf")
    with torch.inference_mode():
        for _ in range(reps):
            started = time.perf_counter()
            program.module(x)
            full = min(full, time.perf_counter() - started)
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    return {"layers": len(tensors), "megabytes": size / 2**20, "write_ms": write * 1e3, "read_ms": read * 1e3,
            "full_inference_ms": full * 1e3}  # fmt: skip


