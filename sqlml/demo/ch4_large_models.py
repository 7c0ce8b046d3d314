"""Chapter 4: models larger than the device, and many models at once.

A wide delay classifier whose weights, gradients and Adam state are several times a
small ``device_memory`` budget trains with Hydra spilling: the memory estimate first,
then ``strategy := 'spill'``, then proof that it is the very model resident training
gives. Then ``CREATE MODELS`` trains a small hyper-parameter grid at once and marks
the best. Only chapter 0's tables are needed.
"""

from __future__ import annotations

import json

TITLE = "Chapter 4 - large models: spilling to a device budget, and a grid with CREATE MODELS"

FEATURES = "dep_hour, weekday, carrier, origin, distance, visib, precip, wind_speed"


def run(tour) -> None:
    con = tour.con
    quick = tour.quick
    rows = 4000 if quick else 40000
    epochs = 1 if quick else 3
    hidden = "[512, 512, 512, 512]" if quick else "[1024, 1024, 1024, 1024]"
    budget = "5MB" if quick else "20MB"
    tour.say("The same flight features as chapter 3, known before take-off (a view of its own here):")
    tour.run(
        f"""
CREATE OR REPLACE TABLE delay_rows AS
SELECT f.month, f.sched_dep_time // 100 AS dep_hour, dayofweek(f.time_hour) AS weekday, f.carrier, f.origin,
       f.distance, coalesce(w.visib, 10) AS visib, coalesce(w.precip, 0) AS precip,
       coalesce(w.wind_speed, 0) AS wind_speed,
       CASE WHEN f.arr_delay > 15 THEN 'late' ELSE 'on_time' END AS label
FROM flights AS f LEFT JOIN weather AS w USING (origin, time_hour)
WHERE f.arr_delay IS NOT NULL AND f.month = 1
ORDER BY f.flight_id
LIMIT {rows}
"""
    )
    query = f"SELECT {FEATURES}, label FROM delay_rows"
    options = f"architecture := 'mlp', hidden := {hidden}, epochs := {epochs}, batch_size := 256, lr := 0.001, seed := 0"

    tour.say(f"\n1. Before training: how much device memory does a {hidden} MLP need, shard by shard,")
    tour.say(f"   under a device_memory budget of {budget}? (weights, gradients and Adam's two moments)")
    estimate = tour.show(
        f"SELECT shard, layers, weights, gradients, optimizer_state, activations, peak, fits\n"
        f"FROM ml_memory_estimate('{query}',\n"
        f"    $${options}, device_memory := '{budget}'$$)"
    )
    state_bytes = sum(r[2] + r[3] + r[4] for r in estimate)
    tour.say(f"\n   Weights, gradients and optimizer state come to {state_bytes / 1e6:.1f} MB: "
             f"{state_bytes / _bytes(budget):.1f}x the budget. Spilling keeps the shards in host memory and")
    tour.say("   brings one at a time to the device; backward recomputes each shard's forward (Hydra).")

    tour.say("\n2. Train it spilled, and the same model resident, from the same seed:")
    tour.show(f"CREATE OR REPLACE MODEL delay_wide_spilled WITH ({options},\n    strategy := 'spill', device_memory := '{budget}') AS\n{query}")
    tour.show(f"CREATE OR REPLACE MODEL delay_wide WITH ({options}) AS\n{query}")
    spill = json.loads(con.sql("SELECT metrics FROM sqlml.models WHERE name = 'delay_wide_spilled' ORDER BY version DESC LIMIT 1").fetchall()[0][0])["spill"]
    tour.say(f"\n   {spill['shards']} shards, {spill['slots']} device slot(s); the ledger's peak of device-resident bytes was "
             f"{spill['peak_resident_bytes']:,} of the {spill['device_memory']:,} allowed; "
             f"{spill['bytes_moved'] / 1e6:.0f} MB moved between host and device.")
    tour.say("   Both models predict every flight identically (the weights are bit for bit the same):")
    same = tour.show(
        f"SELECT count(*) AS flights,\n"
        f"       count(*) FILTER (WHERE ml_predict_proba('delay_wide', {FEATURES})\n"
        f"                         = ml_predict_proba('delay_wide_spilled', {FEATURES})) AS identical_probabilities\n"
        f"FROM delay_rows"
    )

    workers = 1 if quick else 2
    tour.say(f"\n3. Many models at once: a grid of learning rates and widths on {workers} worker(s). The shard")
    tour.say("   alternator hands each worker the model with the longest remaining time, keeps models where")
    tour.say("   they are, and the models on a worker share one decoded pass over the batches.")
    grid = tour.show(
        f"CREATE OR REPLACE MODELS delay_grid FOR (lr IN (0.001, 0.01), hidden IN ([32], [64, 32]))\n"
        f"WITH (architecture := 'mlp', epochs := {2 if quick else 4}, batch_size := 256, validation_split := 0.2,\n"
        f"      workers := {workers}) AS\n{query}"
    )
    tour.say("\nThe best by validation loss is marked in the registry:")
    tour.show("SELECT model, params, round(value, 4) AS val_loss, best FROM ml_model_grid('delay_grid')")
    tour.facts["large_models"] = {
        "state_bytes": state_bytes,
        "budget_bytes": _bytes(budget),
        "spill": spill,
        "identical": same[0][0] == same[0][1],
        "grid": [{"model": r[0], "params": json.loads(r[2]), "value": r[4], "best": r[5]} for r in grid],
    }
    tour.say("\nOther strategies for large models: strategy := 'pipeline' (GPipe or 1F1B stages on worker")
    tour.say("processes, micro_batches := M); see docs/large-models.md.")


def _bytes(size: str) -> int:
    from sqlml.training.large.sizes import parse_bytes

    return parse_bytes(size)
