# title: an SQL expression becomes a labeling function; its classes are declared for the table
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# expect: [["lf_x", "t", "sql", "CASE WHEN x = 0 THEN 'pos' WHEN x = 1 THEN 'neg' END", ["neg", "pos"]]]
CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos'])
AS CASE WHEN x = 0 THEN 'pos' WHEN x = 1 THEN 'neg' END;
SELECT f.name, f.table_name, f.kind, f.definition, s.classes
FROM sqlml.labeling_functions f JOIN sqlml.label_sets s USING (table_name);

# title: OR REPLACE swaps the definition and keeps one function
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS 'pos'
# expect: [["lf_x", "CASE WHEN x > 1 THEN 'neg' END"]]
CREATE OR REPLACE LABELING FUNCTION lf_x ON t AS CASE WHEN x > 1 THEN 'neg' END;
SELECT name, definition FROM sqlml.labeling_functions;

# title: a name taken
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# setup: CREATE LABELING FUNCTION lf_x ON t WITH (classes := ['neg', 'pos']) AS 'pos'
# error: ObjectExistsError
CREATE LABELING FUNCTION lf_x ON t AS 'neg';
SELECT kind, name, properties FROM sqlml.objects ORDER BY ALL;

# title: an expression over a column the table does not have
# setup: CREATE TABLE t AS SELECT i AS id, i % 3 AS x FROM range(6) r(i)
# error: DataError
CREATE LABELING FUNCTION lf_w ON t WITH (classes := ['neg', 'pos']) AS CASE WHEN no_column THEN 'pos' END;
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM sqlml.label_sets);

# title: fewer than two classes
# setup: CREATE TABLE t AS SELECT i AS id FROM range(6) r(i)
# error: InvalidOptionError
CREATE LABELING FUNCTION lf_y ON t WITH (classes := ['neg']) AS 'neg';
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM sqlml.label_sets);
