# title: a majority-vote label model writes one label per voted row
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS CASE WHEN x = 0 THEN 'pos' WHEN x = 1 THEN 'neg' END
# setup: CREATE LABELING FUNCTION lf_y ON t AS CASE WHEN x = 2 THEN 'pos' END
# expect: [[0, "pos", [0.0, 1.0], "weak", ["lm"]], [1, "neg", [1.0, 0.0], "weak", ["lm"]], [2, "pos", [0.0, 1.0], "weak", ["lm"]], [3, "pos", [0.0, 1.0], "weak", ["lm"]], [4, "neg", [1.0, 0.0], "weak", ["lm"]], [5, "pos", [0.0, 1.0], "weak", ["lm"]]]
CREATE LABEL MODEL lm ON t KEY id WITH (method := 'majority');
SELECT id, label, probs, source, (SELECT list(name) FROM sqlml.objects WHERE kind = 'label model') FROM lm ORDER BY id;

# title: an unknown method
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS CASE WHEN x = 0 THEN 'pos' END
# error: InvalidOptionError
CREATE LABEL MODEL lm ON t KEY id WITH (method := 'bogus');
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM duckdb_tables() WHERE table_name = 'lm');

# title: a name taken
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS CASE WHEN x = 0 THEN 'pos' END
# setup: CREATE LABEL MODEL lm ON t KEY id WITH (method := 'majority')
# error: ObjectExistsError
CREATE LABEL MODEL lm ON t KEY id WITH (method := 'dawid_skene');
SELECT kind, name, properties FROM sqlml.objects ORDER BY ALL;
