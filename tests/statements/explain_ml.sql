# title: a filter on a model call: the rules that fire and the work planned, nothing run
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# expect: [["SELECT id, ml_predict_value('m', x) AS p FROM t WHERE ml_predict_value('m', x) > 1 AND id < 5", ["predicate_placement", "distinct_inputs", "prediction_cache"], ["fill sqlml.prediction_cache with ml_predict_value('m') version 1 for the distinct inputs of __ml_keys_1 that it lacks\n-- keys to look up\nWITH __ml_keys_1 AS (SELECT DISTINCT x AS __ml_k1_0 FROM t WHERE id < 5) SELECT * FROM __ml_keys_1"], 0]]
EXPLAIN ML SELECT id, ml_predict_value('m', x) AS p FROM t WHERE ml_predict_value('m', x) > 1 AND id < 5;
SELECT original_sql, rules_fired, steps, (SELECT count(*) FROM sqlml.prediction_cache) FROM result;

# title: a query without model calls is left as written
# expect: [["SELECT 1 AS one", "SELECT 1 AS one", [], ["bulk_inference", "predicate_placement", "distinct_inputs", "prediction_cache", "compute_once"]]]
EXPLAIN ML SELECT 1 AS one;
SELECT original_sql, rewritten_sql, rules_fired, available_rules FROM result;

# title: no query after EXPLAIN ML
# error: SqlmlSyntaxError
EXPLAIN ML;
SELECT count(*) FROM sqlml.objects;
