"""Chapter 6: incremental CNN inference over real fixed-camera footage, exact mode on a lossless
clip, materialized states, and an occlusion heat map.

The real part needs the project's shared data folder (``highway_static.mp4`` and MTCNN's
``pnet.pt``), found through ``SQLML_DATA`` or at ``../shared/data``; without it the chapter says
so and its numbers come from the generated clip only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TITLE = "Chapter 6 - video: incremental CNN inference and occlusion maps (Krypton)"


def write_clip(path: Path, frames: int, height: int, width: int) -> str:
    """A fixed camera over a textured scene, a walker crossing it and a lift going up and down.

    Lossless FFV1 and no sensor noise, so pixels that did not change are bit-identical:
    exact incremental inference can reuse everything the objects did not touch.
    """
    import cv2
    import numpy as np

    rng = np.random.default_rng(6)
    yy, xx = np.mgrid[0:height, 0:width]
    scene = np.stack([80 + 90 * yy / height, 120 + 50 * np.sin(xx / 9.0), 100 + 60 * xx / width], axis=-1)
    for _ in range(8):  # walls, windows
        y0, x0 = int(rng.integers(0, height - 12)), int(rng.integers(0, width - 12))
        scene[y0 : y0 + int(rng.integers(6, height // 3)), x0 : x0 + int(rng.integers(6, width // 4))] = rng.integers(20, 230, 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (width, height))
    side = max(6, height // 8)
    for i in range(frames):
        frame = scene.copy()
        x = walker_x(i, frames, width, side)
        frame[height // 2 : height // 2 + side, max(0, x) : max(0, x + side)] = (230, 40, 40)
        y = int(4 + (i * 2) % (height - side - 8))
        frame[y : y + side // 2, width - side - 6 : width - 6] = (40, 40, 220)  # the lift
        writer.write(cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


def walker_x(i: int, frames: int, width: int, side: int) -> int:
    """The walker enters after a third of the clip and is gone before its end."""
    start, stop = frames // 3, frames - frames // 6
    if not start <= i < stop:
        return -2 * side  # off screen
    return int(2 + (i - start) * (width // 2 - side) / max(1, stop - start))


def walker_visible(frames: int) -> tuple[int, int]:
    return frames // 3, frames - frames // 6


def run(tour) -> None:
    import torch

    saved_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small operators: one thread is steadier on a busy machine
    try:
        data = real_data()
        if data is not None:
            _real_footage(tour, data)
        else:
            tour.say("The real fixed-camera clip (highway_static.mp4) and MTCNN's weights are not here (set SQLML_DATA")
            tour.say("to the shared data folder): this chapter falls back to its generated clip, so its speedups are")
            tour.say("that clip's, not real footage's (see docs: Benchmarks, for the measured ones).")
            tour.facts["real_clip"] = None
        _run(tour)
    finally:
        torch.set_num_threads(saved_threads)


def real_data() -> Path | None:
    """The shared data folder with the highway clip and PNet's weights, or None."""
    candidates = [os.environ["SQLML_DATA"]] if os.environ.get("SQLML_DATA") else [
        Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"]  # fmt: skip
    for folder in map(Path, candidates):
        if (folder / "video" / "highway_static.mp4").is_file() and (folder / "weights" / "pnet.pt").is_file():
            return folder
    return None


def _real_footage(tour, data: Path) -> None:
    """MTCNN's PNet (real weights) over real fixed-camera footage, full vs threshold 24 vs exact."""
    import sqlml
    from sqlml.incremental.nets import pnet
    from sqlml.incremental.service import hot_states
    from sqlml.sqlutil import quote_literal

    clip = data / "video" / "highway_static.mp4"
    frames = 24 if tour.quick else 96
    tour.say(f"Real footage: {clip.name}, a fixed camera over a highway (1280x720 H.264), its first {frames} frames")
    tour.say("at 640x360; MTCNN's face-proposal net PNet with its real weights (a registered architecture).")
    sqlml.register_architecture("pnet", pnet, options={"mean": [0.5], "std": [128 / 255]})
    tour.run(f"LOAD VIDEO {quote_literal(str(clip))} INTO highway WITH (size := [360, 640], stop := {frames / 24 - 1e-3}, "
             "replace := true)")  # fmt: skip
    tour.run(f"CREATE OR REPLACE MODEL face WITH (architecture := 'pnet', weights := {quote_literal(str(data / 'weights' / 'pnet.pt'))}, "
             "input_shape := [3, 360, 640], n_outputs := 2)")  # fmt: skip
    tour.say("\nThe same query three ways: mode 'full', exact incremental (threshold 0: H.264 changes almost every")
    tour.say("pixel a little, so it falls back to full inference), and threshold 24 (mean change per 8 px block,")
    tour.say("accumulated since the block was last recomputed: codec noise and flicker are ignored, cars are not).")
    seconds = {}
    for label, options in (("full", "mode := 'full'"), ("exact", "mode := 'incremental'"), ("threshold 24", "threshold := 24")):
        hot_states(tour.con.session)._states.clear()  # each starts cold: its first frame is a full pass
        started = time.perf_counter()
        tour.con.sql(f"CREATE OR REPLACE TABLE highway_{label.replace(' ', '_')} AS SELECT * FROM "
                     f"ml_video_inference('face', 'highway', {options}, persist := false)")  # fmt: skip
        seconds[label] = time.perf_counter() - started
    tour.show("SELECT mode, count(*) AS frames, round(avg(recomputed), 3) AS avg_recomputed, round(avg(ms), 1) AS avg_ms "
              "FROM highway_threshold_24 GROUP BY mode ORDER BY mode")  # fmt: skip
    within = tour.con.sql(
        "SELECT avg(CASE WHEN abs(f.summary[2] - t.summary[2]) <= 0.02 THEN 1.0 ELSE 0.0 END), "
        "max(abs(f.summary[2] - t.summary[2])) FROM highway_full f JOIN highway_threshold_24 t USING (video, frame)"
    ).fetchall()[0]
    speedup = seconds["full"] / seconds["threshold 24"]
    tour.say(f"  on {clip.name}: whole queries full {seconds['full']:.2f}s, exact {seconds['exact']:.2f}s, "
             f"threshold 24 {seconds['threshold 24']:.2f}s: x{speedup:.2f} (one run on this machine)")  # fmt: skip
    tour.say(f"  face-map maximum within 0.02 of full inference's on {within[0]:.0%} of frames (largest difference")
    tour.say(f"  {within[1]:.3f}); PNet's maximum moves that much under +-1 level of noise on some frames too.")
    tour.facts["real_clip"] = clip.name
    tour.facts["real_speedup"] = speedup
    tour.facts["real_face_max_within"] = within[0]
    tour.say("")


def walker_detector(frames_rgb, height: int, width: int, visible: set[int]):
    """The built-in 'cnn' architecture with hand-set weights: filter 0 responds to red (the walker).

    Its global-average response is calibrated on the clip so that P(walker) crosses one half
    midway between frames with and without the walker. The other filters keep random weights.
    """
    import torch

    from sqlml.models.architectures import cnn

    torch.manual_seed(6)
    model = cnn((3, height, width), 2, {"channels": [32, 64], "kernel_size": 3}).eval()
    conv1, conv2, head = model[0], model[3], model[-1]
    with torch.no_grad():
        conv1.weight[0] = 0.0
        conv1.weight[0, 0] = 1 / 9  # red up, green and blue down: red things light up
        conv1.weight[0, 1:] = -1 / 9
        conv1.bias[0] = -0.2
        conv2.weight[0] = 0.0
        conv2.weight[0, 0, 1, 1] = 1.0  # passes the red map on
        conv2.bias[0] = 0.0
        features = model[:-1]
        red = [float(features(torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255)[0, 0]) for f in frames_rgb]
        seen = [r for i, r in enumerate(red) if i in visible]
        unseen = [r for i, r in enumerate(red) if i not in visible]
        middle = (min(seen) + max(unseen)) / 2
        scale = 6.0 / max(1e-6, min(seen) - max(unseen))
        head.weight.zero_()
        head.weight[1, 0], head.weight[0, 0] = scale, -scale
        head.bias[1], head.bias[0] = -scale * middle, scale * middle
    return model


def _run(tour) -> None:
    import torch

    from sqlml.incremental.video import iter_frames
    from sqlml.sqlutil import quote_literal

    frames, height, width = (24, 96, 160) if tour.quick else (60, 180, 320)
    out = Path(tour.out_dir)
    clip = write_clip(out / "static_camera.avi", frames, height, width)
    tour.say("Exact mode needs pixels that did not change to be bit-identical, which compressed footage never")
    tour.say(f"has: a {frames}-frame generated static-camera clip ({width}x{height}, lossless FFV1) is written to")
    tour.say(f"{clip}: a walker crosses part of it, a lift goes up and down.")
    tour.say("ml_read_video decodes it with OpenCV: one row per frame, pixels as an RGB BLOB with their shape.")
    tour.run("CREATE OR REPLACE TABLE frames AS SELECT * FROM ml_read_video(?)", [clip])
    tour.show("SELECT video, frame, time_s, height, width, channels, octet_length(image) AS bytes FROM frames LIMIT 3")

    start, stop = walker_visible(frames)
    weights = out / "walker_cnn.pt"
    pixels = [f.pixels for f in iter_frames(clip)]
    torch.save(walker_detector(pixels, height, width, set(range(start, stop))).state_dict(), weights)
    tour.say("\nA CNN of the built-in 'cnn' architecture (conv, ReLU, max-pool blocks, global pooling, linear),")
    tour.say("its weights imported from a state-dict file: hand-set so that its first filter responds to red")
    tour.say("(the walker); the other 95 filters keep random weights and cost what they cost.")
    tour.run(
        f"CREATE OR REPLACE MODEL walker WITH (architecture := 'cnn', weights := {quote_literal(str(weights))}, "
        f"input_shape := [3, {height}, {width}], channels := [32, 64], classes := ['nobody', 'walker'])"
    )
    middle = (start + stop) // 2
    tour.say("\nFull inference on frames with ml_predict (ml_frame_tensor turns a frame into the model's input):")
    tour.show(
        "SELECT frame, ml_predict('walker', ml_frame_tensor(image, height, width, channels, 'walker')) AS seen "
        f"FROM frames WHERE frame IN (0, {start}, {middle}, {frames - 1}) ORDER BY frame"
    )

    tour.say("\nml_video_inference runs the CNN over the frames. mode := 'full' recomputes every frame;")
    tour.say("exact incremental (threshold 0) recomputes, layer by layer, only the cells the change reaches.")
    timings = {}
    for label, options in (("full", "mode := 'full', persist := false"), ("incremental", "persist := false")):
        started = time.perf_counter()
        tour.con.sql(f"CREATE OR REPLACE TABLE run_{label} AS SELECT * FROM ml_video_inference('walker', 'frames', {options})")
        timings[label] = time.perf_counter() - started
    tour.show(
        "SELECT mode, count(*) AS frames, round(avg(recomputed), 3) AS avg_recomputed, round(avg(ms), 1) AS avg_ms "
        "FROM run_incremental GROUP BY mode ORDER BY mode"
    )
    top1, error = tour.con.sql(
        "SELECT avg(CASE WHEN f.prediction = i.prediction THEN 1.0 ELSE 0.0 END), "
        "max(list_max(list_transform(list_zip(f.probabilities, i.probabilities), lambda p: abs(p[1] - p[2])))) "
        "FROM run_full f JOIN run_incremental i USING (video, frame)"
    ).fetchall()[0]
    full_ms, inc_ms = tour.con.sql(
        "SELECT (SELECT sum(ms) FROM run_full), (SELECT sum(ms) FROM run_incremental)"
    ).fetchall()[0]
    tour.say(f"  on the generated clip: model time full {full_ms / 1e3:.2f}s, incremental {inc_ms / 1e3:.2f}s: "
             f"x{full_ms / inc_ms:.2f}; whole queries {timings['full']:.2f}s vs {timings['incremental']:.2f}s")  # fmt: skip
    tour.say(f"  top-1 agreement {top1:.0%}, largest probability difference {error:.1e}")
    tour.say("  (on a shared machine; bench/incremental.py measures carefully, see docs/benchmarks/incremental.md)")
    tour.facts["video_speedup"] = full_ms / inc_ms
    tour.facts["video_agreement"] = top1

    tour.say("\nEach video's last state is materialized in DuckDB (one BLOB per layer): a later query over")
    tour.say("the same video and model resumes from it instead of paying a full pass.")
    tour.run("CREATE OR REPLACE TABLE first_half AS SELECT * FROM ml_video_inference('walker', 'SELECT * FROM frames WHERE frame < 10')")
    tour.show("SELECT model, version, frame, exact, layers, round(bytes / 1e6, 2) AS mb FROM sqlml.incremental_states")
    rows = tour.show("SELECT frame, mode, reason FROM ml_video_inference('walker', 'SELECT * FROM frames WHERE frame >= 9') LIMIT 3")
    tour.facts["resumed_mode"] = rows[0][1] if rows else None

    tour.say("\nOcclusion map: slide a gray square over a frame and record how much P(walker) drops.")
    tour.say("Every occluded copy shares the frame's materialized activations (batched incremental inference).")
    patch, stride = (16, 8) if tour.quick else (24, 6)
    query = (
        "SELECT key, target_label, rows, cols, round(max_drop, 3) AS max_drop, mode, round(seconds, 2) AS seconds, png "
        f"FROM ml_occlusion_map('walker', 'SELECT * FROM frames WHERE frame = {middle}', patch := {patch}, "
        f"stride := {stride}, target := 'walker', mode := ?, out_dir := ?)"
    )
    naive = tour.show(query, ["full", str(out)])
    fast = tour.show(query, ["incremental", str(out)])
    tour.say(f"  batched incremental: x{naive[0][6] / max(fast[0][6], 1e-9):.2f} over naive re-inference")
    tour.say(f"  heat map (red: hiding that spot costs P(walker) most): {fast[0][7]}")
    tour.facts["occlusion_png"] = fast[0][7]
