"""GPU check for large-model training: what only a CUDA device can show (under 5 minutes).

NOT MEASURED YET: no GPU has been lent to this project's runs, so no CUDA code path of
sqlml (pinned host store, spill prefetch on a side stream, nccl pipeline stages, bulk
inference on a GPU) has been measured. The numbers in the docs are all from the CPU;
nothing here has run on a device. Run it as one prepared script when a GPU is lent.

1. Copy bandwidth, host to device and back, pinned vs pageable memory (8-256 MB).
2. Resident vs spilled training of a ~2 GB-parameter MLP at 1k, 4k and 16k tokens per
   shard pass: spilled synchronously, with side-stream prefetch (double buffering), and
   with kept activations; step time ratio against resident, peak device memory
   (``torch.cuda.max_memory_allocated``), weight difference after the timed steps.
   Theory says copies hide behind compute from about 10^4 tokens per pass on this
   class of device (see ../shared/research/training.md, section 3.3).
3. The largest model that trains at a fixed device budget: models 2x, 4x and 8x the
   budget train one spilled step each, while host memory allows.

    python bench/gpu_check.py [--quick] [--out bench/results/gpu_check.json]

Without CUDA it says so and exits 0. ``--cpu-smoke`` runs every code path on the CPU at
toy sizes (to check the script itself on a machine without a GPU; the numbers mean
nothing there).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> float:
    """Best seconds of ``repeats`` calls (after one warm-up)."""
    fn()
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


# -- 1. bandwidth --------------------------------------------------------------------------------


def bandwidth(device, sizes_mb, repeats: int) -> list[dict]:
    import torch

    rows = []
    for mb in sizes_mb:
        n = mb * 2**20
        on_device = torch.empty(n, dtype=torch.uint8, device=device)
        for pinned in (False, True):
            if pinned and device.type != "cuda":
                continue
            host = torch.empty(n, dtype=torch.uint8, pin_memory=pinned)
            host.fill_(1)
            h2d = timed(lambda: on_device.copy_(host, non_blocking=pinned), device, repeats)
            d2h = timed(lambda: host.copy_(on_device, non_blocking=pinned), device, repeats)
            rows.append({"mb": mb, "pinned": pinned, "h2d_gbps": round(n / h2d / 1e9, 2), "d2h_gbps": round(n / d2h / 1e9, 2)})
            print(f"  {mb:4d} MB {'pinned  ' if pinned else 'pageable'}: H2D {rows[-1]['h2d_gbps']:7.2f} GB/s, "
                  f"D2H {rows[-1]['d2h_gbps']:7.2f} GB/s", flush=True)
            del host
        del on_device
    return rows


# -- 2. resident vs spilled -------------------------------------------------------------------------


def mlp(width: int, depth: int, seed: int = 0, device="cpu"):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width, device=device), nn.ReLU()]
    return nn.Sequential(*layers)


def param_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def spill_vs_resident(device, width: int, depth: int, tokens_list, steps: int) -> list[dict]:
    import torch

    from sqlml.training.job import OptimizerSpec
    from sqlml.training.large.layers import sequential_layers
    from sqlml.training.large.partition import budget_plan
    from sqlml.training.large.spill import SpillTrainer, slots_needed

    spec = OptimizerSpec("sgd", lr=1e-4, momentum=0.0)
    size = param_bytes(mlp(width, depth))
    variants = {
        "spill_sync": dict(budget=size // 4, prefetch=False, checkpoint_activations=True),
        "spill_prefetch": dict(budget=size // 2, prefetch=True, checkpoint_activations=True),
        "spill_prefetch_keep_activations": dict(budget=size // 2, prefetch=True, checkpoint_activations=False),
    }
    rows = []
    for tokens in tokens_list:
        torch.manual_seed(1)
        x = torch.randn(tokens, width, device=device)
        target = torch.randn(tokens, width, device=device)

        def loss_of(out):
            return ((out - target) ** 2).mean()

        row = {"tokens": tokens, "model_gb": round(size / 1e9, 2)}
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        resident = mlp(width, depth).to(device)
        optimizer = spec.build(resident.parameters())

        def resident_step():
            optimizer.zero_grad(set_to_none=True)
            loss_of(resident(x)).backward()
            optimizer.step()

        row["resident_s"] = timed(resident_step, device, steps)
        row["resident_peak_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2) if device.type == "cuda" else None
        total_steps = steps + 1
        for name, v in variants.items():
            model = mlp(width, depth)
            layers = sequential_layers(model)
            plan = budget_plan(layers, v["budget"] // slots_needed(v["prefetch"]), state_tensors_per_param=0)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            trainer = SpillTrainer(model, plan, spec, device_memory=v["budget"], device=device,
                                   prefetch=v["prefetch"], checkpoint_activations=v["checkpoint_activations"])
            seconds = timed(lambda: trainer.step(x, loss_of), device, steps)
            trainer.flush()
            # same number of steps as the resident model: same weights up to kernel nondeterminism
            diff = 0.0
            if trainer.steps == total_steps:
                for p, q in zip(model.parameters(), resident.parameters()):
                    diff = max(diff, (p.detach().float().cpu() - q.detach().float().cpu()).abs().max().item())
            row[name] = {
                "s": round(seconds, 4), "ratio": round(seconds / row["resident_s"], 3),
                "budget_gb": round(v["budget"] / 1e9, 3), "shards": plan.n_shards, "slots": trainer.n_slots,
                "ledger_peak_gb": round(trainer.ledger.peak / 1e9, 3),
                "device_peak_gb": round(torch.cuda.max_memory_allocated(device) / 1e9, 3) if device.type == "cuda" else None,
                "moved_gb_per_step": round(trainer.bytes_moved / trainer.steps / 1e9, 3),
                "max_abs_weight_diff_vs_resident": diff,
            }
            trainer.close()
            del trainer, model
        del resident, optimizer
        rows.append(row)
        print(f"  {tokens:6d} tokens/pass: resident {row['resident_s'] * 1000:.1f} ms; "
              + "; ".join(f"{n.removeprefix('spill_')} {row[n]['ratio']}x (peak {row[n]['device_peak_gb']} GB)" for n in variants),
              flush=True)
    return rows


# -- 3. the largest model at a budget -----------------------------------------------------------------


def available_host_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def largest_model(device, budget: int, width: int, multiples, tokens: int, deadline: float) -> list[dict]:
    import torch
    from torch import nn

    from sqlml.training.job import OptimizerSpec
    from sqlml.training.large.layers import sequential_layers
    from sqlml.training.large.partition import budget_plan
    from sqlml.training.large.spill import SpillTrainer

    spec = OptimizerSpec("sgd", lr=1e-4, momentum=0.0)
    layer_bytes = (width * width + width) * 4
    rows = []
    for multiple in multiples:
        depth = max(1, round(multiple * budget / layer_bytes))
        need = depth * layer_bytes
        if need * 2.5 > available_host_bytes():
            rows.append({"multiple": multiple, "skipped": f"needs ~{need * 2.5 / 1e9:.0f} GB of host memory"})
            print(f"  {multiple}x: skipped, not enough host memory", flush=True)
            break
        if time.monotonic() > deadline:
            rows.append({"multiple": multiple, "skipped": "out of time"})
            break
        started = time.perf_counter()
        with torch.no_grad():
            layers = []
            for _ in range(depth):
                layer = nn.Linear(width, width, device="meta")
                layer = layer.to_empty(device="cpu")
                layer.weight.uniform_(-1 / width**0.5, 1 / width**0.5)
                layer.bias.zero_()
                layers += [layer, nn.ReLU()]
        model = nn.Sequential(*layers)
        plan = budget_plan(sequential_layers(model), budget, state_tensors_per_param=0)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        trainer = SpillTrainer(model, plan, spec, device_memory=budget, device=device)
        built = time.perf_counter() - started
        x = torch.randn(tokens, width, device=device)
        seconds = timed(lambda: trainer.step(x, lambda out: out.float().pow(2).mean()), device, 1)
        rows.append({
            "multiple": multiple, "params_gb": round(need / 1e9, 2), "budget_gb": round(budget / 1e9, 2),
            "shards": plan.n_shards, "slots": trainer.n_slots, "step_s": round(seconds, 3), "build_s": round(built, 1),
            "ledger_peak_gb": round(trainer.ledger.peak / 1e9, 3),
            "device_peak_gb": round(torch.cuda.max_memory_allocated(device) / 1e9, 3) if device.type == "cuda" else None,
        })
        print(f"  {multiple}x the budget ({rows[-1]['params_gb']} GB of parameters, {plan.n_shards} shards): "
              f"one step {seconds:.2f} s, device peak {rows[-1]['device_peak_gb']} GB", flush=True)
        trainer.close()
        del trainer, model, layers
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller model and fewer steps (about a minute)")
    parser.add_argument("--cpu-smoke", action="store_true", help="run every part on the CPU at toy sizes (checks the script)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_check.json"))
    parser.add_argument("--minutes", type=float, default=4.5, help="stop starting new measurements after this")
    args = parser.parse_args()
    import torch

    if args.cpu_smoke:
        device = torch.device("cpu")
        width, depth, tokens, steps = 256, 8, [64, 256], 2
        sizes, budget, big_width, multiples = [8], 4 * 2**20, 512, [2, 4]
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to measure. "
              "Run it on a machine with an NVIDIA GPU, or with --cpu-smoke to check the script.")
        return
    else:
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if args.quick:
            width, depth, tokens, steps = 4096, 8, [1024, 4096, 16384], 2
            sizes, budget, big_width, multiples = [8, 64, 256], 1 * 2**30, 8192, [2, 4]
        else:
            width, depth, tokens, steps = 8192, 8, [1024, 4096, 16384], 3
            sizes, budget, big_width, multiples = [8, 64, 256], 4 * 2**30, 16384, [2, 4, 8]
    deadline = time.monotonic() + args.minutes * 60
    results = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke run)",
               "torch": torch.__version__, "cpu_smoke": args.cpu_smoke}
    started = time.perf_counter()
    print("1. copy bandwidth", flush=True)
    results["bandwidth"] = bandwidth(device, sizes, repeats=5)
    print("2. resident vs spilled", flush=True)
    results["spill"] = spill_vs_resident(device, width, depth, tokens, steps)
    print("3. largest model at a budget", flush=True)
    results["largest"] = largest_model(device, budget, big_width, multiples, tokens=4096 if device.type == "cuda" else 64,
                                       deadline=deadline)
    results["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"done in {results['seconds']} s; wrote {out}")


if __name__ == "__main__":
    main()
