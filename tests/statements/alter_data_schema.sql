# title: ADD CHECK writes version 2 with the check
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(10) r(i)
# setup: CREATE DATA SCHEMA ds FROM t
# expect: [["ds", 1, null, "infer", null], ["ds", 2, 1, "add check", "x_small: x < 3 (row)"]]
ALTER DATA SCHEMA ds ADD CHECK x_small AS x < 3;
SELECT v.schema_name, v.version, v.parent_version, v.action, c.check_name || ': ' || c.expression || ' (' || c.scope || ')'
FROM sqlml.data_schema_versions v LEFT JOIN sqlml.data_schema_checks c USING (schema_name, version) ORDER BY v.version;

# title: SET COLUMN changes one property in the next version
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(10) r(i)
# setup: CREATE DATA SCHEMA ds FROM t
# expect: [[1, null], [2, 5.0]]
ALTER DATA SCHEMA ds SET COLUMN x (valid_max := 5);
SELECT version, valid_max FROM sqlml.data_schema_columns WHERE column_name = 'x' ORDER BY version;

# title: a column the schema does not have
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(10) r(i)
# setup: CREATE DATA SCHEMA ds FROM t
# error: UnknownObjectError
ALTER DATA SCHEMA ds SET COLUMN nope (valid_max := 5);
SELECT schema_name, version, action FROM sqlml.data_schema_versions ORDER BY ALL;

# title: a check over a column the data does not have
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(10) r(i)
# setup: CREATE DATA SCHEMA ds FROM t
# error: ValidationError
ALTER DATA SCHEMA ds ADD CHECK bad AS no_col < 3;
SELECT (SELECT count(*) FROM sqlml.data_schema_versions), (SELECT count(*) FROM sqlml.data_schema_checks);

# title: a negative row bound
# setup: CREATE TABLE t AS SELECT i AS id FROM range(10) r(i)
# setup: CREATE DATA SCHEMA ds FROM t
# error: InvalidOptionError
ALTER DATA SCHEMA ds SET (min_rows := -1);
SELECT version, min_rows, max_rows FROM sqlml.data_schema_versions;
