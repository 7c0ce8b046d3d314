# title: a long votes table becomes one imported function per lf, with its votes
# setup: CREATE TABLE t AS SELECT i AS id FROM range(4) r(i)
# setup: CREATE TABLE votes AS SELECT * FROM (VALUES (0, 'a', 'pos'), (1, 'a', 'neg'), (2, 'b', 'pos')) v(id, lf, label)
# expect: [["imp_a", "imported", "(SELECT __v.label FROM votes AS __v WHERE __v.id = t.id AND CAST(__v.lf AS VARCHAR) = 'a')", ["neg", "pos"]], ["imp_b", "imported", "(SELECT __v.label FROM votes AS __v WHERE __v.id = t.id AND CAST(__v.lf AS VARCHAR) = 'b')", ["neg", "pos"]]]
CREATE LABELING FUNCTIONS ON t FROM TABLE votes KEY id WITH (classes := ['neg', 'pos'], prefix := 'imp_');
SELECT f.name, f.kind, replace(f.definition, '"', ''), s.classes
FROM sqlml.labeling_functions f JOIN sqlml.label_sets s USING (table_name) ORDER BY f.name;

# title: an INTEGER[] label matrix column (named v), one function per entry (-1 abstains)
# setup: CREATE TABLE m AS SELECT i AS id, [i % 2, CASE WHEN i < 2 THEN 1 ELSE -1 END]::INTEGER[] AS v FROM range(4) r(i)
# expect: [["c0", "imported", "CASE WHEN v[1] <> -1 THEN v[1] END"], ["c1", "imported", "CASE WHEN v[2] <> -1 THEN v[2] END"]]
CREATE LABELING FUNCTIONS ON m FROM COLUMN v WITH (classes := ['neg', 'pos'], names := ['c0', 'c1']);
SELECT name, kind, replace(definition, '"', '') FROM sqlml.labeling_functions ORDER BY name;

# title: a vote index past the classes in a label matrix column
# setup: CREATE TABLE m AS SELECT i AS id, [i]::INTEGER[] AS v FROM range(4) r(i)
# error: DataError
CREATE LABELING FUNCTIONS ON m FROM COLUMN v WITH (classes := ['neg', 'pos']);
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM sqlml.labeling_functions), (SELECT count(*) FROM sqlml.label_sets);

# title: a vote outside the classes is refused before anything is written
# setup: CREATE TABLE t AS SELECT i AS id FROM range(4) r(i)
# setup: CREATE TABLE votes AS SELECT * FROM (VALUES (0, 'a', 'pos'), (1, 'c', 'maybe')) v(id, lf, label)
# error: DataError
CREATE LABELING FUNCTIONS ON t FROM TABLE votes KEY id WITH (classes := ['neg', 'pos']);
SELECT (SELECT count(*) FROM sqlml.objects), (SELECT count(*) FROM sqlml.labeling_functions), (SELECT count(*) FROM sqlml.label_sets);
