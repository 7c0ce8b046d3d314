# title: safetensors with the model's record in its metadata
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# expect: [[{"name": "m", "version": "1"}, true]]
EXPORT MODEL 'm@1' TO '{tmp}/m.safetensors';
SELECT regexp_extract(decode(unhex(hex(content)[17:816])), '\\"name\\": \\"(\w+)\\", \\"version\\": (\d+)', ['name', 'version']),
       size > 1000
FROM read_blob('{tmp}/m.safetensors');

# title: a version the model does not have; no file written
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# error: UnknownObjectError
EXPORT MODEL 'm@5' TO '{tmp}/m5.pt';
SELECT count(*) FROM glob('{tmp}/*.pt');

# title: a file name whose format cannot be told
# setup: CREATE TABLE t AS SELECT i AS id, (i % 10) / 10.0 AS x, (i % 10) / 5.0 + 1 AS y FROM range(40) r(i)
# setup: CREATE MODEL m WITH (label := 'y', epochs := 1, hidden := [4]) AS SELECT x, y FROM t
# error: InvalidOptionError
EXPORT MODEL m TO '{tmp}/m.txt';
SELECT count(*) FROM glob('{tmp}/m.*');
