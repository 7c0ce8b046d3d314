# title: a schema inferred from a table: types, bounds widened from the quantiles, a string domain
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END AS s FROM range(10) r(i)
# expect: [["ds", 1, "id", "BIGINT", null, 0.0, 12.0, "inferred from t (10 rows)"], ["ds", 1, "s", "VARCHAR", ["a", "b"], null, null, "inferred from t (10 rows)"], ["ds", 1, "x", "BIGINT", null, 0.0, 3.0, "inferred from t (10 rows)"]]
CREATE DATA SCHEMA ds FROM t;
SELECT c.schema_name, c.version, c.column_name, c.data_type, c.domain, c.min_value, c.max_value, v.reason
FROM sqlml.data_schema_columns c JOIN sqlml.data_schema_versions v USING (schema_name, version) ORDER BY c.column_name;

# title: an unknown option
# setup: CREATE TABLE t AS SELECT i AS id FROM range(10) r(i)
# error: InvalidOptionError
CREATE DATA SCHEMA ds FROM t WITH (bogus := 1);
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM sqlml.data_schema_versions), (SELECT count(*) FROM sqlml.statistics);

# title: a source that does not exist
# error: DataError
CREATE DATA SCHEMA ds FROM nowhere;
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM sqlml.data_schema_versions), (SELECT count(*) FROM sqlml.statistics);

# title: a name taken
# setup: CREATE TABLE t AS SELECT i AS id FROM range(10) r(i)
# setup: CREATE DATA SCHEMA ds FROM t
# error: ObjectExistsError
CREATE DATA SCHEMA ds FROM t;
SELECT schema_name, version, action FROM sqlml.data_schema_versions ORDER BY ALL;
