"""Large-model training benchmark (CPU): spilling, pipelining and grids against their anchors.

Part 1, spill vs resident. An MLP of 8 blocks (Linear 1024x1024, ReLU, Linear 1024x1024,
ReLU; 15.7M parameters, 63 MB) trains with SGD from the same seed (a) resident: plain
autograd and one optimizer, the anchor; (b) spilled through a device budget a quarter
and a half of the model (RAM tier, Hydra recompute), with kept activations
(``checkpoint_activations := false``), with prefetch, and from the disk tier. Batches
16, 64, 256; shards cut by the strategy's default planner (``spill_plan``). Every variant's weights after 3 steps are compared bit for bit with
resident training, and the ledger's peak with the budget.

Part 2, pipeline vs one process. 8 x Linear(1024) + ReLU and a head, batch 512, split
into 2 stages on 2 gloo worker processes (GPipe and 1F1B, M = 4 and 8), against one
process running the same micro-batches (gradient accumulation) and the whole batch.
Gradients are compared (relative error), and the measured idle share against GPipe's
bubble (K-1)/(M+K-1).

Part 3, a grid. ``CREATE MODELS`` of 4 (and 8) MLPs over a generated table, on 2 worker
processes, against the same grid on one worker and against training the models one
after another with ``CREATE MODEL`` on 1 thread and on torch's default threads.

Spill and grid timings are paired interleaved rounds (``bench/rounds.py``): every ratio is
the median of the per-round ratios, with min and max; the load average is recorded with
each part. The pipeline part still reports best-of rounds beside its per-round ratios.
Temporary folders (the disk tier's spill files) are removed.

    python bench/large_models.py [--quick] [--only spill,pipeline,grid] [--out bench/results/large_models.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from rounds import fmt, log, machine, paired, ratio, scratch, summary  # noqa: E402


def best_of(fn, rounds: int, steps: int):
    """(best wall seconds per step, best CPU seconds per step) over ``rounds`` of ``steps``."""
    wall, cpu = [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(steps):
            fn()
        wall.append((time.perf_counter() - t) / steps)
        cpu.append((time.process_time() - c) / steps)
    return min(wall), min(cpu)


# -- part 1: spill ---------------------------------------------------------------------------------


def spill_model(width: int, blocks: int, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers = []
    for k in range(blocks):
        layers += [nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width if k < blocks - 1 else 1)]
        if k < blocks - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def bench_spill(args) -> dict:
    import torch
    from torch import nn

    from sqlml.training.job import OptimizerSpec
    from sqlml.training.large.layers import sequential_layers
    from sqlml.training.large.partition import budget_plan, spill_plan
    from sqlml.training.large.spill import SpillTrainer, slots_needed

    torch.set_num_threads(1)
    width, blocks = (512, 8) if args.quick else (1024, 8)
    spec = OptimizerSpec("sgd", lr=1e-3, momentum=0.0)
    loss_fn = nn.MSELoss()
    params = sum(p.numel() for p in spill_model(width, blocks).parameters())
    param_bytes = params * 4
    layer_count = len(sequential_layers(spill_model(width, blocks)))
    variants = {
        "spill_ram_quarter": dict(budget=param_bytes // 4, tier="ram"),
        "spill_ram_half": dict(budget=param_bytes // 2, tier="ram"),
        # the code before this change, in the same run: the fewest shards that fit, every shard recomputed
        "spill_ram_half_before": dict(budget=param_bytes // 2, tier="ram", before=True),
        # the fewest shards that fit, shards that stay in their slot across the turn kept (not recomputed)
        "spill_ram_half_fewest": dict(budget=param_bytes // 2, tier="ram", fewest=True),
        "spill_ram_quarter_keep_activations": dict(budget=param_bytes // 4, tier="ram", checkpoint_activations=False),
        "spill_ram_half_keep_activations": dict(budget=param_bytes // 2, tier="ram", checkpoint_activations=False),
        "spill_ram_half_prefetch": dict(budget=param_bytes // 2, tier="ram", prefetch=True),
        "spill_disk_half": dict(budget=param_bytes // 2, tier="disk"),
        "spill_disk_half_prefetch": dict(budget=param_bytes // 2, tier="disk", prefetch=True),
    }
    if args.quick:
        variants = {k: v for k, v in variants.items() if k in ("spill_ram_quarter", "spill_ram_half", "spill_ram_half_before", "spill_disk_half_prefetch")}
    if args.spill_variants:
        variants = {k: variants[k] for k in args.spill_variants.split(",")}

    def build(name, batch, folder):
        model = spill_model(width, blocks)
        if name == "resident":
            optimizer = spec.build(model.parameters())

            def step(x, y):
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                optimizer.step()

            return model, step, None
        v = dict(variants[name])
        budget, before, fewest = v.pop("budget"), v.pop("before", False), v.pop("fewest", False)
        if before or fewest:
            plan = budget_plan(sequential_layers(model), budget // slots_needed(v.get("prefetch", False)), state_tensors_per_param=0)
        else:  # the strategy's own default plan (spill_plan): the cut that moves and recomputes least
            plan = spill_plan(sequential_layers(model), budget, state_tensors_per_param=0, prefetch=v.get("prefetch", False),
                              recompute=v.get("checkpoint_activations", True), batch_size=batch, device="cpu")
        spill_dir = str(folder / f"{name}_{batch}") if v.get("tier") == "disk" else None
        trainer = SpillTrainer(model, plan, spec, device_memory=budget, device="cpu", spill_dir=spill_dir, **v)
        if before:
            trainer.kept = set()  # recompute every shard, as before shards kept across the turn
        return model, (lambda x, y: trainer.step(x, lambda out: loss_fn(out, y))), trainer

    out = {"model": {"width": width, "blocks": blocks, "layers": layer_count, "parameters": params, "mb": param_bytes / 1e6},
           "threads": "torch 1 thread on both sides", "batches": {}}
    with scratch("sqlml-bench-spill-") as folder:
        for batch in ([int(b) for b in args.spill_batches.split(",")] if args.spill_batches else [16, 64] if args.quick else [16, 64, 256]):
            torch.manual_seed(1)
            x, y = torch.randn(batch, width), torch.randn(batch, 1)
            # correctness: 3 steps from the same seed, every variant against resident
            reference, step, _ = build("resident", batch, folder)
            for _ in range(3):
                step(x, y)
            row = {"identical": {}, "peak_over_budget": {}}
            for name in variants:
                model, step, trainer = build(name, batch, folder)
                for _ in range(3):
                    step(x, y)
                trainer.flush()
                row["identical"][name] = all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), model.state_dict().values()))
                row["peak_over_budget"][name] = round(trainer.ledger.peak / trainer.budget, 3)
                trainer.close()
            # timing: paired interleaved rounds of ``steps`` steps per side; ratio = median of per-round ratios
            runners = {name: build(name, batch, folder) for name in ["resident", *variants]}
            for trainer in (r[2] for r in runners.values() if r[2] is not None):
                trainer.mover.seconds, trainer.steps, trainer.bytes_moved = 0.0, 0, 0
            sides = {name: (lambda step=step: [step(x, y) for _ in range(args.steps)]) for name, (_, step, _) in runners.items()}
            times = paired(sides, args.rounds, warmup=1, label=f"spill B={batch}")
            row["resident"] = summary([t / args.steps for t in times["resident"]])
            for name in variants:
                trainer = runners[name][2]
                steps = max(trainer.steps, 1)
                row[name] = {
                    "ratio": ratio(times, name, "resident"),
                    "step": summary([t / args.steps for t in times[name]]),
                    "shards": len(trainer.shards),
                    "slots": trainer.n_slots,
                    "moved_mb_per_step": round(trainer.bytes_moved / steps / 1e6, 1),
                    "copy_share": round(trainer.mover.seconds / steps / statistics.median(t / args.steps for t in times[name]), 3),
                }
            for _, _, trainer in runners.values():
                if trainer is not None:
                    trainer.close()
            out["batches"][str(batch)] = row
            log(f"spill B={batch}: resident {row['resident']['median_s'] * 1000:.1f} ms/step; "
                + "; ".join(f"{n.removeprefix('spill_')} {fmt(row[n]['ratio'])} ({row[n]['shards']} shards)" for n in variants))
    out["machine"] = machine({"resident": 1, "spill": 1})
    return out


# -- part 2: pipeline ------------------------------------------------------------------------------


def pipe_model(width: int, depth: int, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def bench_pipeline(args) -> dict:
    import torch

    from sqlml.training.job import OptimizerSpec
    from sqlml.training.large.layers import sequential_layers
    from sqlml.training.large.partition import balance_plan
    from sqlml.training.large.pipeline import PipelineRunner, bubble_fraction
    from sqlml.training.large.pipeline_worker import PipelineLoss

    torch.set_num_threads(1)
    width, depth, batch = (512, 8, 256) if args.quick else (1024, 8, 512)
    torch.manual_seed(123)
    x, y = torch.randn(batch, width), torch.randn(batch)
    target = torch.stack([y, torch.ones(batch)], dim=1)  # label, weight: what the stages' loss reads
    loss = PipelineLoss("regression", has_soft=False)
    loss.weight_total = float(batch)
    base = pipe_model(width, depth)
    reference = pipe_model(width, depth)
    loss(reference(x), target).backward()
    ref_grads = [p.grad.clone() for p in reference.parameters()]

    def full_step():
        base.zero_grad(set_to_none=True)
        loss(base(x), target).backward()

    def accum_step(m):
        base.zero_grad(set_to_none=True)
        for xc, tc in zip(x.chunk(m), target.chunk(m)):
            loss(base(xc), tc).backward()

    out = {"model": {"width": width, "depth": depth, "batch": batch, "stages": 2}, "runs": []}
    configs = [("gpipe", 4), ("gpipe", 8), ("1f1b", 4), ("1f1b", 8)]
    if args.quick:
        configs = [("gpipe", 4), ("1f1b", 4)]
    for schedule, m in configs:
        model = pipe_model(width, depth)
        plan = balance_plan(sequential_layers(model), 2)
        with PipelineRunner(model, plan, OptimizerSpec("sgd", lr=1e-3, momentum=0.0), loss,
                            micro_batches=m, schedule=schedule) as runner:
            runner.step(x, target, weight_total=batch, update=False)
            grads = runner.gradients()
            rel = max(((g - r).norm() / r.norm()).item() for g, r in zip(grads, ref_grads))
            runner.history.clear()
            pipe, full, accum = [], [], []
            for _ in range(args.rounds):
                pipe.append(best_of(lambda: runner.step(x, target, weight_total=batch, update=False), 1, args.steps))
                full.append(best_of(full_step, 1, args.steps))
                accum.append(best_of(lambda: accum_step(m), 1, args.steps))
            stats = runner.stats()
        p, f, a = min(w for w, _ in pipe), min(w for w, _ in full), min(w for w, _ in accum)
        ratios = sorted(round(pw / aw, 3) for (pw, _), (aw, _) in zip(pipe, accum))  # round by round: the spread
        row = {
            "schedule": schedule, "micro_batches": m, "max_rel_grad_error": rel,
            "pipeline_ms": round(p * 1000, 1), "single_full_batch_ms": round(f * 1000, 1),
            "single_same_microbatches_ms": round(a * 1000, 1),
            "pipeline_over_single_same_microbatches": round(p / a, 3),
            "pipeline_over_single_full_batch": round(p / f, 3),
            "bubble_theory": round(bubble_fraction(2, m), 3), "idle_measured": stats["bubble_measured"],
            "ratio_per_round": ratios,
            "stage_cpu_ms": [round(c * 1000, 1) for c in stats["stage_cpu_seconds"]],
            "single_same_microbatches_cpu_ms": round(min(c for _, c in accum) * 1000, 1),
        }
        out["runs"].append(row)
        print(f"pipeline {schedule} M={m}: {row['pipeline_ms']} ms vs same micro-batches {row['single_same_microbatches_ms']} ms "
              f"= {row['pipeline_over_single_same_microbatches']}x (full batch {row['pipeline_over_single_full_batch']}x); "
              f"grad err {rel:.1e}; idle {row['idle_measured']} vs bubble {row['bubble_theory']}; rounds {ratios}; "
              f"stage CPU {row['stage_cpu_ms']} ms vs one process {row['single_same_microbatches_cpu_ms']} ms", flush=True)
    return out


# -- part 3: grid ----------------------------------------------------------------------------------


def bench_grid(args) -> dict:
    """Paired interleaved rounds of four ways to train the same ``n`` models: the grid on 2
    workers (1 torch thread each), the grid on one worker (1 thread), and ``n`` CREATE MODELs
    one after another on 1 thread and on torch's default threads (2 here)."""
    import torch

    import sqlml

    rows = 20_000 if args.quick else 60_000
    con = sqlml.connect()
    features = ", ".join(f"((hash(i, {k}) % 2000) / 1000.0 - 1)::FLOAT AS f{k}" for k in range(16))
    con.sql(f"CREATE TABLE t AS SELECT {features}, (hash(i, 99) % 3)::VARCHAR AS label FROM range({rows}) r(i)")
    query = "SELECT * FROM t"
    common = ("architecture := 'mlp', hidden := [256, 256], epochs := 2, batch_size := 256, optimizer := 'sgd', "
              "momentum := 0, checkpoint := false")
    default_threads = torch.get_num_threads()
    out = {"rows": rows, "model": "mlp [256, 256], 2 epochs, batch 256", "grids": [],
           "threads": {"two_workers": "1 per worker", "one_worker": 1, "sequential_1_thread": 1,
                       "sequential_default_threads": default_threads}}
    started = time.perf_counter()  # the first worker processes pay for the forkserver importing torch
    con.sql(f"CREATE MODELS warmup FOR (lr IN (0.1, 0.2)) WITH ({common}, threads := 1, workers := 2) AS SELECT * FROM t LIMIT 512")
    out["first_worker_start_seconds"] = round(time.perf_counter() - started, 2)
    counter = iter(range(1_000_000))
    for n in ([int(k) for k in args.grid_sizes.split(",")] if args.grid_sizes else [4] if args.quick else [4, 8]):
        lrs = [round(0.01 * (k + 1), 4) for k in range(n)]
        head = f"FOR (lr IN ({', '.join(map(str, lrs))}))"

        def grid(extra: str, n=n, head=head) -> None:
            name = f"g{n}_{next(counter)}"
            con.sql(f"CREATE MODELS {name} {head} WITH ({common}, {extra}) AS {query}")

        def sequential(extra: str, n=n, lrs=lrs) -> None:
            for lr in lrs:
                con.sql(f"CREATE MODEL s{n}_{next(counter)} WITH ({common}{extra}, lr := {lr}) AS {query}")

        sides = {
            "two_workers": lambda: grid("threads := 1, workers := 2, unit_batches := 16"),
            "one_worker": lambda: grid("threads := 1, workers := 1, unit_batches := 16"),
            "sequential_1_thread": lambda: sequential(", threads := 1"),
            "sequential_default_threads": lambda: sequential(""),
        }
        load_before = os.getloadavg()
        times = paired(sides, args.grid_rounds, warmup=1, label=f"grid of {n}")
        row = {
            "models": n,
            "seconds": {k: summary(v, 2) for k, v in times.items()},
            "speedup_vs_one_worker_grid": ratio(times, "one_worker", "two_workers"),
            "speedup_vs_sequential_1_thread": ratio(times, "sequential_1_thread", "two_workers"),
            "speedup_vs_sequential_default_threads": ratio(times, "sequential_default_threads", "two_workers"),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
        out["grids"].append(row)
        log(f"grid of {n}: vs one worker {fmt(row['speedup_vs_one_worker_grid'])}; vs sequential on 1 thread "
            f"{fmt(row['speedup_vs_sequential_1_thread'])}; vs sequential on {default_threads} threads "
            f"{fmt(row['speedup_vs_sequential_default_threads'])}; load {row['load_average_after']}")
    con.close()
    return out


def parallel_capacity() -> dict:
    """How much two busy processes get here: (work done by 2 processes) / (work done by 1), same wall time."""
    import subprocess

    code = "import time\nt=time.perf_counter();n=0\nwhile time.perf_counter()-t<2.0:\n    sum(range(10000)); n+=1\nprint(n)"
    one = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    two = sum(int(p.communicate()[0]) for p in procs)
    return {"two_process_throughput_over_one": round(two / one, 3), "cpus": os.cpu_count(), "load_average": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller models, fewer rounds (a minute or two)")
    parser.add_argument("--only", default="spill,pipeline,grid")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--grid-rounds", type=int, default=None)
    parser.add_argument("--grid-sizes", default=None, help="grid sizes, e.g. 4 (default 4,8; 4 with --quick)")
    parser.add_argument("--spill-batches", default=None, help="batch sizes of the spill part, e.g. 64 (default 16,64,256)")
    parser.add_argument("--spill-variants", default=None, help="spill variants to run, comma-separated (default: all)")
    parser.add_argument("--out", default=None, help="default: bench/results/large_models.json (_quick.json with --quick)")
    args = parser.parse_args()
    args.out = args.out or str(ROOT / "bench" / "results" / ("large_models_quick.json" if args.quick else "large_models.json"))
    args.rounds = args.rounds or (5 if args.quick else 9)
    args.grid_rounds = args.grid_rounds or (3 if args.quick else 5)
    parts = args.only.split(",")
    results = {"machine": parallel_capacity(), "quick": args.quick}
    print(f"machine: {results['machine']}", flush=True)
    if "spill" in parts:
        results["spill"] = bench_spill(args)
    if "pipeline" in parts:
        results["pipeline"] = bench_pipeline(args)
    if "grid" in parts:
        results["grid"] = bench_grid(args)
    results["machine_after"] = parallel_capacity()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update({k: v for k, v in results.items()})
    out.write_text(json.dumps(previous, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
