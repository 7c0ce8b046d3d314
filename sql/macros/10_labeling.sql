-- Weak supervision: LF analysis over the votes tables, in plain SQL (runs in the DuckDB shell).
-- A labeled table T keeps its votes in sqlml.votes_<h> (key, lf, label) and its labeled rows
-- in sqlml.rows_<h> (key), <h> = left(md5(name), 16) of T's lower-case name without 'main.'.

-- The canonical name of a labeled table, as sqlml.label_sets stores it.
CREATE OR REPLACE MACRO ml_labeled_table(tbl) AS regexp_replace(lower(tbl), '^main\.', '');

-- The table name quoted for query_table: 'my "odd" table' becomes '"my ""odd"" table"', 's.t' becomes '"s"."t"'.
CREATE OR REPLACE MACRO ml_quoted_table(tbl) AS
    CASE WHEN contains(tbl, '.')
         THEN '"' || replace(split_part(tbl, '.', 1), '"', '""') || '"."'
              || replace(substr(tbl, strpos(tbl, '.') + 1), '"', '""') || '"'
         ELSE '"' || replace(tbl, '"', '""') || '"' END;

-- Where the votes and labeled rows of a table live.
CREATE OR REPLACE MACRO ml_votes_table(tbl) AS 'sqlml.votes_' || left(md5(ml_labeled_table(tbl)), 16);
CREATE OR REPLACE MACRO ml_rows_table(tbl) AS 'sqlml.rows_' || left(md5(ml_labeled_table(tbl)), 16);

-- Class index (0-based) of a gold value: a declared class name, else an integer index in range.
CREATE OR REPLACE MACRO ml_class_index(classes, value) AS (
    CASE
        WHEN value IS NULL THEN NULL
        WHEN list_position(classes, CAST(value AS VARCHAR)) IS NOT NULL
            THEN list_position(classes, CAST(value AS VARCHAR)) - 1
        WHEN TRY_CAST(CAST(value AS VARCHAR) AS INTEGER) BETWEEN 0 AND len(classes) - 1
            THEN TRY_CAST(CAST(value AS VARCHAR) AS INTEGER)
    END
);

-- The votes of a table with names: key column (as in the table), labeling function, class.
CREATE OR REPLACE MACRO ml_votes(tbl) AS TABLE
    SELECT COLUMNS(* EXCLUDE (lf, label, lf_id, name, classes)), name AS labeling_function, classes[label + 1] AS label
    FROM query_table(ml_votes_table(tbl))
    JOIN (SELECT lf_id, name FROM sqlml.labeling_functions WHERE table_name = ml_labeled_table(tbl)) ON lf_id = lf
    CROSS JOIN (SELECT classes FROM sqlml.label_sets WHERE table_name = ml_labeled_table(tbl));

-- Table-level coverage, overlap and conflict (Snorkel's label_coverage / label_overlap /
-- label_conflict): fractions of all labeled rows with >= 1 vote, >= 2 votes, >= 2 distinct labels.
CREATE OR REPLACE MACRO ml_label_stats(tbl) AS TABLE
    WITH per_row AS (
        SELECT COLUMNS(* EXCLUDE (lf, label)), count(*) AS n_votes, count(DISTINCT label) AS n_labels
        FROM query_table(ml_votes_table(tbl)) GROUP BY ALL
    ), n AS (SELECT count(*) AS n FROM query_table(ml_rows_table(tbl)))
    SELECT n.n AS rows,
           count(per_row.n_votes) / greatest(n.n, 1) AS coverage,
           count(per_row.n_votes) FILTER (WHERE per_row.n_votes >= 2) / greatest(n.n, 1) AS overlap,
           count(per_row.n_votes) FILTER (WHERE per_row.n_labels >= 2) / greatest(n.n, 1) AS conflict
    FROM n LEFT JOIN per_row ON true
    GROUP BY n.n;

-- Per labeling function, Snorkel's LFAnalysis.lf_summary definitions (fractions of all labeled
-- rows n): coverage = rows where the LF votes; overlap = rows where it votes and >= 2 LFs vote;
-- conflict = rows where it votes and the row's votes hold >= 2 distinct labels. With gold :=
-- column, over the rows whose gold value is a declared class: correct / incorrect votes and
-- emp_accuracy = correct / (correct + incorrect) (0 when it never votes there), i.e.
-- lf_summary(Y) on the gold rows. learned_accuracy: from label model `label_model`, or the latest
-- label model fitted on the table that learns accuracies (majority vote does not).
CREATE OR REPLACE MACRO ml_lf_summary(tbl, gold := NULL, label_model := NULL) AS TABLE
    WITH ls AS (
        SELECT classes FROM sqlml.label_sets WHERE table_name = ml_labeled_table(tbl)
    ), n AS (
        SELECT count(*) AS n FROM query_table(ml_rows_table(tbl))
    ), votes AS (
        SELECT * FROM query_table(ml_votes_table(tbl)) NATURAL JOIN (
            SELECT COLUMNS(lambda c: c = coalesce(gold, '__sqlml_no_gold')) AS __gold,
                   COLUMNS(lambda c: c NOT IN ('lf', 'label', '__sqlml_no_gold'))
            FROM (SELECT NULL AS __sqlml_no_gold, * FROM query_table(ml_quoted_table(tbl)))
        )
    ), per_row AS (
        SELECT COLUMNS(* EXCLUDE (lf, label)), count(*) AS n_votes, count(DISTINCT label) AS n_labels
        FROM query_table(ml_votes_table(tbl)) GROUP BY ALL
    ), marked AS (
        SELECT v.lf, v.label, r.n_votes, r.n_labels, ml_class_index(ls.classes, v.__gold) AS gold_index
        FROM votes AS v NATURAL JOIN per_row AS r CROSS JOIN ls
    ), per_lf AS (
        SELECT lf,
               list(DISTINCT label ORDER BY label) AS labels,
               count(*) AS n_votes,
               count(*) FILTER (WHERE n_votes >= 2) AS overlaps,
               count(*) FILTER (WHERE n_labels >= 2) AS conflicts,
               count(*) FILTER (WHERE gold_index = label) AS correct,
               count(*) FILTER (WHERE gold_index IS NOT NULL AND gold_index <> label) AS incorrect
        FROM marked GROUP BY lf
    ), learned AS (
        SELECT a.lf, a.learned_accuracy FROM sqlml.label_model_lfs AS a
        WHERE a.table_name = ml_labeled_table(tbl)
          AND a.model = coalesce(label_model, (SELECT arg_max(m.model, m.fitted_at) FROM sqlml.label_model_lfs AS m
                                               WHERE m.table_name = ml_labeled_table(tbl)
                                                 AND m.learned_accuracy IS NOT NULL))
    )
    SELECT f.lf_id AS j,
           f.name AS lf,
           f.kind,
           coalesce(list_transform(p.labels, lambda i: ls.classes[i + 1]), []) AS polarity,
           coalesce(p.n_votes, 0) / greatest(n.n, 1) AS coverage,
           coalesce(p.overlaps, 0) / greatest(n.n, 1) AS overlap,
           coalesce(p.conflicts, 0) / greatest(n.n, 1) AS conflict,
           CASE WHEN gold IS NOT NULL THEN coalesce(p.correct, 0) END AS correct,
           CASE WHEN gold IS NOT NULL THEN coalesce(p.incorrect, 0) END AS incorrect,
           CASE WHEN gold IS NOT NULL THEN
               coalesce(p.correct / nullif(p.correct + p.incorrect, 0), 0.0) END AS emp_accuracy,
           l.learned_accuracy
    FROM sqlml.labeling_functions AS f
    CROSS JOIN n
    CROSS JOIN ls
    LEFT JOIN per_lf AS p ON p.lf = f.lf_id
    LEFT JOIN learned AS l ON l.lf = f.name
    WHERE f.table_name = ml_labeled_table(tbl)
    ORDER BY f.lf_id;

-- Labeling functions (of one table, or all) with their state.
CREATE OR REPLACE MACRO ml_labeling_functions(tbl := NULL) AS TABLE
    SELECT name, table_name, kind, definition, inputs, output, faults,
           applied_fingerprint IS NOT DISTINCT FROM fingerprint AS up_to_date, applied_at, created_at
    FROM sqlml.labeling_functions
    WHERE tbl IS NULL OR table_name = ml_labeled_table(tbl)
    ORDER BY table_name, lf_id;

-- Majority vote in plain SQL: per row with votes, the class with most votes (ties: the lower
-- class index) and how many of the row's votes it got. The label model's table is richer.
CREATE OR REPLACE MACRO ml_majority_vote(tbl) AS TABLE
    WITH counts AS (
        SELECT COLUMNS(* EXCLUDE (lf)), count(*) AS n
        FROM query_table(ml_votes_table(tbl)) GROUP BY ALL
    ), best AS (
        SELECT COLUMNS(* EXCLUDE (label, n)), arg_max(label, n * 65536 - label) AS top, max(n) AS votes,
               CAST(sum(n) AS BIGINT) AS all_votes
        FROM counts GROUP BY ALL
    )
    SELECT COLUMNS(* EXCLUDE (top, votes, all_votes, classes)), classes[top + 1] AS label, votes, all_votes
    FROM best CROSS JOIN (SELECT classes FROM sqlml.label_sets WHERE table_name = ml_labeled_table(tbl));
