# title: the function and its votes go; the table's other function stays
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS CASE WHEN x = 0 THEN 'pos' END
# setup: CREATE LABELING FUNCTION lf_y ON t AS CASE WHEN x = 2 THEN 'neg' END
# setup: APPLY LABELING FUNCTIONS ON t KEY id
# expect: [[2, "lf_y", "neg", ["lf_y"]], [5, "lf_y", "neg", ["lf_y"]]]
DROP LABELING FUNCTION lf_x;
SELECT *, (SELECT list(name) FROM sqlml.labeling_functions) FROM ml_votes('t') ORDER BY ALL;

# title: IF EXISTS on a missing name does nothing
# setup: CREATE TABLE t AS SELECT i AS id FROM range(3) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS 'pos'
# expect: [["lf_x"]]
DROP LABELING FUNCTION IF EXISTS lf_nothing;
SELECT name FROM sqlml.labeling_functions;

# title: a missing name
# setup: CREATE TABLE t AS SELECT i AS id FROM range(3) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS 'pos'
# error: UnknownObjectError
DROP LABELING FUNCTION lf_y;
SELECT kind, name, properties FROM sqlml.objects ORDER BY ALL;
