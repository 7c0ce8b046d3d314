# title: the output table and the model's records go; the labeling functions stay
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS CASE WHEN x = 0 THEN 'pos' WHEN x = 1 THEN 'neg' END
# setup: CREATE LABEL MODEL lm ON t KEY id WITH (method := 'majority')
# expect: [["labeling function", "lf_x", 0]]
DROP LABEL MODEL lm;
SELECT kind, name, (SELECT count(*) FROM duckdb_tables() WHERE table_name = 'lm') FROM sqlml.objects;

# title: a missing name
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS 'pos'
# error: UnknownObjectError
DROP LABEL MODEL lm;
SELECT kind, name, properties FROM sqlml.objects ORDER BY ALL;
