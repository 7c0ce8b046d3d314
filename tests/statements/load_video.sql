# title: four lossless frames land as rows: ids, times, sizes and each frame's RGB colour
# clip: clip.avi
# expect: [["clip", 0, 0.0, 16, 24, 3, 1152, "0064C8", "frames", 4], ["clip", 1, 0.1, 16, 24, 3, 1152, "2864A0", "frames", 4], ["clip", 2, 0.2, 16, 24, 3, 1152, "506478", "frames", 4], ["clip", 3, 0.3, 16, 24, 3, 1152, "786450", "frames", 4]]
LOAD VIDEO '{tmp}/clip.avi' INTO frames WITH (video := 'clip');
SELECT f.video, f.frame, round(f.time_s, 3), f.height, f.width, f.channels, octet_length(f.image), hex(f.image)[1:6], r."table", r.frames
FROM frames f, result r ORDER BY f.frame;

# title: replace := true overwrites a table, resized to [8, 12]
# clip: clip.avi
# setup: CREATE TABLE frames AS SELECT 1 AS old
# expect: [[0, 8, 12, 288], [1, 8, 12, 288], [2, 8, 12, 288], [3, 8, 12, 288]]
LOAD VIDEO '{tmp}/clip.avi' INTO frames WITH (replace := true, size := [8, 12]);
SELECT frame, height, width, octet_length(image) FROM frames ORDER BY frame;

# title: a table of that name exists already
# clip: clip.avi
# setup: CREATE TABLE frames AS SELECT 1 AS old
# error: ObjectExistsError
LOAD VIDEO '{tmp}/clip.avi' INTO frames;
SELECT * FROM frames;

# title: a file that does not exist
# error: VideoError
LOAD VIDEO '{tmp}/missing.avi' INTO frames;
SELECT count(*) FROM duckdb_tables() WHERE table_name = 'frames';

# title: no frames per batch
# clip: clip.avi
# error: InvalidOptionError
LOAD VIDEO '{tmp}/clip.avi' INTO frames WITH (batch_frames := 0);
SELECT count(*) FROM duckdb_tables() WHERE table_name = 'frames';

# title: into a schema that does not exist
# clip: clip.avi
# error: UnknownObjectError
LOAD VIDEO '{tmp}/clip.avi' INTO nosuch.frames;
SELECT count(*) FROM duckdb_tables() WHERE table_name = 'frames';

# title: into an existing schema
# clip: clip.avi
# setup: CREATE SCHEMA media
# expect: [[4]]
LOAD VIDEO '{tmp}/clip.avi' INTO media.frames;
SELECT count(*) FROM media.frames;
