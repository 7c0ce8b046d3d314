"""Incremental CNN inference vs full inference, real clips first, in paired rounds.

Video (the headline): MTCNN's PNet with its real weights at 640x360 and a VGG16-layout
classifier at 224x224 on ``highway_static.mp4`` (real fixed-camera footage), then the
moving-camera clip ``bikes.mp4`` and the other real clips; the synthetic surveillance
clip only with ``--clips ...,surveillance``, as a diagnostic. For each setting, full
inference (the plain torch module, one frame at a time) and the engine (a fresh one
per round: state built from the first frame; layer timings shared within the process,
as a query's are) each process the whole clip once per round, in alternating order,
after one untimed warm-up of each (``bench/rounds.py``): the speedup is the median of
the per-round ratios, with min and max. On CPU with one thread the clock is the
thread's CPU time (other jobs on the machine do not count). Both sides reduce each
frame to what the accuracy metrics read (PNet: the face map's maximum; the classifier:
its top-1), so neither keeps outputs the other does not.

Accuracy against full inference, from an extra untimed run of each setting: PNet, the
share of frames whose face-map maximum is within 0.02 (and 0.05) of full inference's,
and of output cells with the same face / no-face call; the classifier, top-1
agreement. Beside them, the models' own noise floor: the same metrics for full
inference on frames with +-1 level of uniform noise (PNet) or +-2 (classifier).

Also measured: ``ml_video_inference`` from SQL on the highway clip (full vs threshold
24 vs exact, wall clock, DuckDB on one thread), occlusion maps (naive batched
re-inference vs batched incremental), exactness per layer type, states in DuckDB.

    python bench/incremental.py [--data ../shared/data] [--device cpu|cuda] [--quick]
        [--clips highway,bikes] [--models pnet,vgg] [--settings 'exact;threshold 24'] [--only-video]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import incremental_cases as cases  # noqa: E402
import rounds  # noqa: E402

from sqlml.incremental.engine import VideoEngine  # noqa: E402
from sqlml.incremental.graph import compile_model  # noqa: E402
from sqlml.incremental.inference import Preprocess  # noqa: E402

PNET_PREPROCESS = Preprocess(mean=(0.5,), std=(128 / 255,))  # MTCNN: (pixel - 127.5) / 128
SETTINGS = {
    "exact": {"threshold": 0.0},
    "threshold 24": {"threshold": 24.0},
    "threshold 12": {"threshold": 12.0},
    "threshold 24, tau 0.5": {"threshold": 24.0, "tau": 0.5},
    "threshold 24, feature 0.05": {"threshold": 24.0, "feature_threshold": 0.05},
}
log = cases.log


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reduce(kind: str, output):
    """What the accuracy metrics read of one frame's output (both sides compute it)."""
    if kind == "pnet":
        return float(output[0][0, 1].max())
    return int(output.argmax(1))


def engine_for(program, preprocess, options) -> VideoEngine:
    levels = options["threshold"]
    return VideoEngine(program, threshold=preprocess.threshold(levels, program.input_shape[1]) if levels else 0.0,
                       pixel_threshold=levels, tau=options.get("tau", 0.0),
                       feature_threshold=options.get("feature_threshold", 0.0))  # fmt: skip


def video_case(name, kind, model, frames, preprocess, device, settings, rounds_n, clock) -> dict:
    pixels = [preprocess.prepare(f) for f in frames]
    tensors = [preprocess.to_tensor(p).to(device) for p in pixels]
    if kind == "vgg":
        model = cases.vgg_classifier(frames[0].shape[0], tensors, device)
    program = compile_model(model, tuple(tensors[0].shape))
    with torch.inference_mode():
        reference = [model(x) for x in tensors]
    row = {"clip": name, "model": kind, "frames": len(frames), "size": list(tensors[0].shape[-2:]),
           "noise_floor": noise_floor(kind, model, pixels, preprocess, device, reference), "settings": {}}  # fmt: skip
    if kind == "vgg":
        row["distinct_full_top1"] = len({int(o.argmax(1)) for o in reference})

    def full():
        with torch.inference_mode():
            for x in tensors:
                reduce(kind, model(x))
        sync(device)

    for label, options in settings.items():
        modes: list[str] = []

        def incremental(options=options, modes=modes):
            engine = engine_for(program, preprocess, options)
            modes.clear()
            for x, p in zip(tensors, pixels, strict=True):
                result = engine.step(x, pixels=p, copy=False)
                reduce(kind, result.output)
                modes.append(result.mode)
            sync(device)

        times = rounds.paired({"full": full, "engine": incremental}, rounds_n, clock=clock, label=f"{name} {kind} {label}")
        checked = engine_for(program, preprocess, options)
        accuracy = agreement(kind, reference, [checked.step(x, pixels=p).output for x, p in zip(tensors, pixels, strict=True)])
        s = row["settings"][label] = {
            **options,
            "speedup": rounds.ratio(times, "full", "engine"),
            "full_ms_per_frame": 1e3 * float(np.median(times["full"])) / len(frames),
            "engine_ms_per_frame": 1e3 * float(np.median(times["engine"])) / len(frames),
            "modes": {m: modes.count(m) for m in ("full", "incremental", "reuse")},
            **accuracy,
        }
        what = (f"face max within 0.02: {s['face_max_within_0.02']:.1%}" if kind == "pnet"
                else f"top-1 {s['top1_agreement']:.1%}")  # fmt: skip
        log(f"  {name:<12} {kind:<4} {label:<26} {rounds.fmt(s['speedup'])}  {what}  {s['modes']}")
    return row


def agreement(kind: str, reference, outputs) -> dict:
    if kind == "pnet":
        want = np.array([float(o[0][0, 1].max()) for o in reference])
        got = np.array([float(o[0][0, 1].max()) for o in outputs])
        cells = np.mean([float(((a[0][:, 1] > 0.5) == (b[0][:, 1] > 0.5)).float().mean()) for a, b in zip(reference, outputs)])
        error = np.abs(want - got)
        return {"face_max_within_0.02": float(np.mean(error <= 0.02)), "face_max_within_0.05": float(np.mean(error <= 0.05)),
                "face_max_mean_error": float(error.mean()), "cell_agreement": float(cells),
                "max_prob_error": max(float((a[0] - b[0]).abs().max()) for a, b in zip(reference, outputs))}  # fmt: skip
    top1 = np.mean([int(a.argmax(1)) == int(b.argmax(1)) for a, b in zip(reference, outputs)])
    prob = max(float((a.softmax(1) - b.softmax(1)).abs().max()) for a, b in zip(reference, outputs))
    return {"top1_agreement": float(top1), "max_prob_error": prob}


def noise_floor(kind, model, pixels, preprocess, device, reference) -> dict:
    """The metrics for full inference on frames with a little uniform noise (below codec noise)."""
    amplitude = 1 if kind == "pnet" else 2
    generator = np.random.default_rng(0)
    with torch.inference_mode():
        noisy = [model(preprocess.to_tensor(np.clip(p.astype(np.int16) + generator.integers(-amplitude, amplitude + 1, p.shape),
                                                     0, 255).astype(np.uint8)).to(device)) for p in pixels]  # fmt: skip
    return {"noise_levels": amplitude, **agreement(kind, reference, noisy)}


def sql_case(data: Path, frames: int, rounds_n: int) -> dict:
    """``ml_video_inference`` on the highway clip from SQL: full vs threshold 24 vs exact (wall clock)."""
    import sqlml
    from sqlml.incremental.nets import pnet
    from sqlml.incremental.service import hot_states

    sqlml.register_architecture("bench_pnet", pnet, options={"mean": [0.5], "std": [128 / 255]})
    with rounds.scratch("sqlml-bench-video-") as folder:
        con = sqlml.connect(str(folder / "video.duckdb"))
        con.sql("SET threads = 1")
        con.sql(f"CREATE MODEL face WITH (architecture := 'bench_pnet', weights := '{data / 'weights' / 'pnet.pt'}', "
                "input_shape := [3, 360, 640], n_outputs := 2)")  # fmt: skip
        clip = data / "video" / cases.CLIPS["highway"]
        con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{clip}', size := [360, 640]) WHERE frame < {frames}")
        results = {}

        def query(label, options):
            def run():
                hot_states(con.session)._states.clear()  # every round starts cold (first frame: a full pass)
                results[label] = con.sql(f"SELECT frame, summary, mode FROM ml_video_inference('face', 'frames', "
                                         f"{options}, persist := false) ORDER BY frame").fetchall()  # fmt: skip
            return run

        sides = {"full": query("full", "mode := 'full'"), "threshold 24": query("threshold 24", "threshold := 24"),
                 "exact": query("exact", "mode := 'incremental'")}  # fmt: skip
        times = rounds.paired(sides, rounds_n, label="SQL ml_video_inference")
        con.close()
    full_max = np.array([r[1][1] for r in results["full"]])
    out = {"clip": cases.CLIPS["highway"], "frames": frames, "clock": "wall", "duckdb_threads": 1,
           "full_s": rounds.summary(times["full"])}  # fmt: skip
    for label in ("threshold 24", "exact"):
        rows = results[label]
        error = np.abs(np.array([r[1][1] for r in rows]) - full_max)
        out[label] = {"seconds": rounds.summary(times[label]), "speedup": rounds.ratio(times, "full", label),
                      "modes": {m: sum(r[2] == m for r in rows) for m in ("full", "incremental", "reuse")},
                      "face_max_within_0.02": float(np.mean(error <= 0.02)), "face_max_max_error": float(error.max())}  # fmt: skip
        log(f"  SQL {label:<14} {rounds.fmt(out[label]['speedup'])}  {out[label]['modes']}")
    return out


def markdown(result: dict) -> str:
    """The benchmark page's tables for a results JSON."""
    lines = ["| clip | model | setting | speedup: median (min–max) | full / engine ms a frame | accuracy | frames full / inc. / reuse |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in result["video"]:
        model = "VGG16/4 224px" if row["model"] == "vgg" else f"PNet (real) {row['size'][1]}x{row['size'][0]}"
        for label, s in row["settings"].items():
            r = s["speedup"]
            accuracy = (f"face max ±0.02: {s['face_max_within_0.02']:.0%}, ±0.05: {s['face_max_within_0.05']:.0%}; "
                        f"cells {s['cell_agreement']:.2%}" if row["model"] == "pnet" else f"top-1 {s['top1_agreement']:.1%}")  # fmt: skip
            m = s["modes"]
            lines.append(f"| {row['clip']} | {model} | {label} | **{r['median']:.2f}x** ({r['min']:.2f}–{r['max']:.2f}) | "
                         f"{s['full_ms_per_frame']:.1f} / {s['engine_ms_per_frame']:.1f} | {accuracy} | "
                         f"{m['full']} / {m['incremental']} / {m['reuse']} |")  # fmt: skip
        floor = row["noise_floor"]
        what = (f"face max ±0.02: {floor['face_max_within_0.02']:.0%}" if row["model"] == "pnet"
                else f"top-1 {floor['top1_agreement']:.1%}")  # fmt: skip
        lines.append(f"| {row['clip']} | {model} | *full inference, ±{floor['noise_levels']} level noise* | | | {what} | |")
    if "sql" in result:
        sql = result["sql"]
        lines += ["", "| ml_video_inference from SQL (highway, PNet 640x360) | speedup: median (min–max) | face max ±0.02 | frames full / inc. / reuse |",
                  "|---|---|---|---|"]  # fmt: skip
        for label in ("threshold 24", "exact"):
            s, r = sql[label], sql[label]["speedup"]
            lines.append(f"| {label} | **{r['median']:.2f}x** ({r['min']:.2f}–{r['max']:.2f}) | {s['face_max_within_0.02']:.0%} | "
                         f"{s['modes']['full']} / {s['modes']['incremental']} / {s['modes']['reuse']} |")  # fmt: skip
    if "occlusion" in result:
        lines += ["", "| occlusion map | image | patch / stride | queries | speedup: median (min–max) | max diff |", "|---|---|---|---|---|---|"]
        for row in result["occlusion"]:
            r = row["speedup"]
            lines.append(f"| {row['case']} | {row['image'][1]}x{row['image'][0]} | {row['patch']} / {row['stride']} | "
                         f"{row['queries']} | **{r['median']:.2f}x** ({r['min']:.2f}–{r['max']:.2f}) | {row['max_abs_diff']:.1e} |")  # fmt: skip
    if "states" in result:
        lines += ["", "| state | layers | MB | write | read | one full inference |", "|---|---|---|---|---|---|"]
        for name, row in result["states"].items():
            lines.append(f"| {name} | {row['layers']} | {row['megabytes']:.1f} | {row['write_ms']:.0f} ms | "
                         f"{row['read_ms']:.0f} ms | {row['full_inference_ms']:.0f} ms |")  # fmt: skip
    if "exactness" in result:
        worst = max(result["exactness"].values())
        lines += ["", f"Exact mode, max |incremental - full| over {len(result['exactness'])} layer types: {worst:.1e}."]
    machine = result.get("machine", {})
    lines += ["", f"Load average at the start {machine.get('load_average')}, at the end {result.get('machine_at_end', {}).get('load_average')}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with video/ and weights/ (default ../shared/data)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: stable on a shared machine)")
    parser.add_argument("--frames", type=int, default=96, help="frames per clip")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=224, help="frames resized to size x size for the classifier")
    parser.add_argument("--pnet-size", type=int, default=640, help="PNet sees the clip with its longer side at most this")
    parser.add_argument("--quick", action="store_true", help="32 frames, 3 rounds, smaller occlusion grids")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "incremental.json"))
    parser.add_argument("--markdown", metavar="JSON", help="print the benchmark page's tables of a results file and exit")
    parser.add_argument("--clips", default="highway,bikes,bigbuckbunny,carphone", help="comma-separated; 'surveillance' adds the synthetic clip")
    parser.add_argument("--models", default="pnet,vgg")
    parser.add_argument("--settings", help="semicolon-separated setting labels (default: all)")
    parser.add_argument("--only-video", action="store_true", help="skip SQL, occlusion, exactness and states")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return
    if args.quick:
        args.frames, args.rounds = min(args.frames, 32), min(args.rounds, 3)
    data = rounds.data_folder(args.data, needs=("video/highway_static.mp4", "weights/pnet.pt"))
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock = time.perf_counter
    if device.type == "cpu" and args.threads == 1:
        import cv2

        cv2.setNumThreads(1)
        clock = time.thread_time  # CPU time of this thread: other jobs on the machine do not count
    result = {"device": str(device), "torch": torch.__version__, "clock": "thread_cpu_time" if clock is time.thread_time else "wall",
              "frames_per_clip": args.frames, "rounds": args.rounds, "machine": rounds.machine({"torch": args.threads})}  # fmt: skip
    settings = SETTINGS if not args.settings else {label: SETTINGS[label] for label in args.settings.split(";")}
    log("video, real clips first (speedup over full inference, paired rounds):")
    result["video"] = []
    for name in args.clips.split(","):
        native = (cases.surveillance_clip(args.pnet_size, args.frames) if name == "surveillance"
                  else cases.real_clip(data, name, args.frames, longest=args.pnet_size))  # fmt: skip
        for kind in args.models.split(","):
            if kind == "pnet":
                model, frames, preprocess = cases.real_pnet(data, device), native, PNET_PREPROCESS
            else:
                model, frames, preprocess = None, [cases.cv2_resize(f, args.size) for f in native], Preprocess()
            result["video"].append(video_case(name, kind, model, frames, preprocess, device, settings, args.rounds, clock))
    if not args.only_video:
        log("ml_video_inference from SQL on the highway clip:")
        result["sql"] = sql_case(data, args.frames, args.rounds)
        other_cases(result, data, device, args, clock)
    result["seconds"] = time.perf_counter() - START
    path = rounds.write(result, "incremental", args.out)
    log(f"done in {result['seconds']:.0f}s -> {path}")


def other_cases(result: dict, data: Path, device, args, clock) -> None:
    """Occlusion maps, exactness per layer type, states in DuckDB."""
    from sqlml.incremental.nets import vgg_style

    log("occlusion maps (naive batched re-inference vs batched incremental):")
    frame = cases.cv2_resize(cases.real_clip(data, "highway", 1, longest=args.pnet_size)[0], args.size)
    image = Preprocess().tensor(frame).to(device)
    torch.manual_seed(0)
    vgg = vgg_style((3, args.size, args.size), 10, {"width": 0.25}).to(device).eval()
    stride = 32 if args.quick else 16
    face = PNET_PREPROCESS.tensor(cases.real_clip(data, "carphone", 1)[0]).to(device)
    pnet_model = cases.real_pnet(data, device)
    result["occlusion"] = [
        cases.occlusion_case("vgg16/4 224px exact", vgg, image, 16, stride, 16, args.rounds, clock),
        cases.occlusion_case("vgg16/4 224px tau 0.5", vgg, image, 16, stride, 16, args.rounds, clock, tau=0.5),
        cases.occlusion_case("pnet (real) 176x144 exact", pnet_model, face, 16, 8 if args.quick else 4, 64, args.rounds, clock, target=1),
    ]
    log("exact mode, max |incremental - full| per layer type:")
    result["exactness"] = cases.layer_exactness(device)
    log("  " + ", ".join(f"{k} {v:.1e}" for k, v in result["exactness"].items()))
    log("states in DuckDB:")
    program = compile_model(vgg, (1, 3, args.size, args.size))
    result["states"] = {"vgg16/4 224px": cases.states_case(program, image, max(args.rounds, 3))}
    program = compile_model(pnet_model, (1, 3, 360, 640))
    highway = PNET_PREPROCESS.tensor(cases.real_clip(data, "highway", 1, longest=640)[0]).to(device)
    result["states"]["pnet 640x360"] = cases.states_case(program, highway, max(args.rounds, 3))


START = time.perf_counter()

if __name__ == "__main__":
    main()
