# title: every function votes on every row; the votes are stored
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS CASE WHEN x = 0 THEN 'pos' WHEN x = 1 THEN 'neg' END
# setup: CREATE LABELING FUNCTION lf_y ON t AS CASE WHEN x = 2 THEN 'pos' END
# expect: [[0, "lf_x", "pos"], [1, "lf_x", "neg"], [2, "lf_y", "pos"], [3, "lf_x", "pos"], [4, "lf_x", "neg"], [5, "lf_y", "pos"]]
APPLY LABELING FUNCTIONS ON t KEY id;
SELECT * FROM ml_votes('t') ORDER BY ALL;

# title: a row updated after APPLY gets new votes under full := true
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(3) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS CASE WHEN x = 0 THEN 'pos' WHEN x = 1 THEN 'neg' END
# setup: APPLY LABELING FUNCTIONS ON t KEY id
# setup: UPDATE t SET x = 1 WHERE id = 0
# expect: [[0, "lf_x", "neg"], [1, "lf_x", "neg"]]
APPLY LABELING FUNCTIONS ON t KEY id WITH (full := true);
SELECT * FROM ml_votes('t') ORDER BY ALL;

# title: an unknown option
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS 'pos'
# error: InvalidOptionError
APPLY LABELING FUNCTIONS ON t KEY id WITH (fast := true);
SELECT name, applied_at IS NULL, faults FROM sqlml.labeling_functions;

# title: a table without labeling functions
# error: UnknownObjectError
APPLY LABELING FUNCTIONS ON nowhere KEY id;
SELECT count(*) FROM sqlml.objects;
