# title: every version goes; another schema stays
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(10) r(i)
# setup: CREATE DATA SCHEMA ds FROM t
# setup: CREATE DATA SCHEMA keep FROM t
# setup: ALTER DATA SCHEMA ds ADD CHECK x_small AS x < 3
# expect: [["data schema", "keep", 1, 0]]
DROP DATA SCHEMA ds;
SELECT kind, name, (SELECT count(*) FROM sqlml.data_schema_versions), (SELECT count(*) FROM sqlml.data_schema_checks)
FROM sqlml.objects;

# title: a missing name
# setup: CREATE TABLE t AS SELECT i AS id FROM range(10) r(i)
# setup: CREATE DATA SCHEMA keep FROM t
# error: UnknownObjectError
DROP DATA SCHEMA ds;
SELECT kind, name, properties FROM sqlml.objects ORDER BY ALL;
