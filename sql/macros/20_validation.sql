-- Data validation readers: data schemas, their history and diffs, stored statistics.
-- Pure SQL over the sqlml catalog, so they run in a plain DuckDB shell too.
-- (ml_statistics, ml_validate and ml_drift scan data and live in Python: udfs/validation.py.)

-- The current (highest) version number of a data schema.
CREATE OR REPLACE MACRO ml_schema_current_version(data_schema) AS (
    SELECT max(version) FROM sqlml.data_schema_versions WHERE schema_name = data_schema
);

-- The columns of a data schema and their constraints (current version, or schema_version := n).
-- valid_min / valid_max are strict (one value outside is an anomaly); min_value / max_value
-- tolerate min_range_mass outside. evidence: each constraint inference set, why, and how sure.
CREATE OR REPLACE MACRO ml_schema(data_schema, schema_version := NULL) AS TABLE
    SELECT c.column_name, c.data_type, c.kind, c.min_fraction, c.domain, c.min_domain_mass,
           c.valid_min, c.valid_max, c.min_value, c.max_value, c.min_range_mass, c.allow_nan, c.allow_inf, c.is_unique,
           c.min_length, c.max_length, c.environments, c.drift_jsd, c.drift_linf, c.evidence, c.notes, c.version
    FROM sqlml.data_schema_columns AS c
    WHERE c.schema_name = data_schema
      AND c.version = coalesce(schema_version, ml_schema_current_version(data_schema))
    ORDER BY c.position;

-- Every version of a data schema: its parent, what made it, from which data, and why.
CREATE OR REPLACE MACRO ml_schema_history(data_schema) AS TABLE
    SELECT v.version, v.parent_version, v.created_at, v.action, v.source, v.reason,
           (SELECT count(*) FROM sqlml.data_schema_columns AS c
             WHERE c.schema_name = v.schema_name AND c.version = v.version) AS columns,
           (SELECT count(*) FROM sqlml.data_schema_checks AS k
             WHERE k.schema_name = v.schema_name AND k.version = v.version) AS checks,
           v.min_rows, v.max_rows, v.significance
    FROM sqlml.data_schema_versions AS v
    WHERE v.schema_name = data_schema
    ORDER BY v.version;

-- The custom checks of a data schema version ('row' checks every row, 'statistics' the batch).
CREATE OR REPLACE MACRO ml_schema_checks(data_schema, schema_version := NULL) AS TABLE
    SELECT k.check_name, k.scope, k.expression, k.version
    FROM sqlml.data_schema_checks AS k
    WHERE k.schema_name = data_schema
      AND k.version = coalesce(schema_version, ml_schema_current_version(data_schema))
    ORDER BY k.check_name;

-- What changed between two versions: one row per changed property (column NULL: the dataset).
-- A schema or version that does not exist is an error (sqlml reports it as UnknownObjectError),
-- never "every column removed".
CREATE OR REPLACE MACRO ml_schema_diff(data_schema, v1, v2) AS TABLE
    WITH known AS (
            SELECT list(version ORDER BY version) AS versions
            FROM sqlml.data_schema_versions WHERE schema_name = data_schema
         ),
         missing AS (
            SELECT CASE WHEN known.versions IS NULL THEN 'data schema ''' || data_schema || ''' does not exist'
                        ELSE 'data schema ''' || data_schema || ''' has no version ' || coalesce(CAST(asked.v AS VARCHAR), 'NULL')
                             || ' (its versions: ' || array_to_string(known.versions, ', ') || ')' END AS message
            FROM known, (SELECT unnest([v1, v2]) AS v) AS asked
            -- version 0 is the empty schema before the first (so v1 = 0 lists everything)
            WHERE asked.v IS NULL OR known.versions IS NULL OR (asked.v <> 0 AND NOT list_contains(known.versions, asked.v))
            LIMIT 1
         ),
         a AS (SELECT * FROM sqlml.data_schema_columns WHERE schema_name = data_schema AND version = v1),
         b AS (SELECT * FROM sqlml.data_schema_columns WHERE schema_name = data_schema AND version = v2),
         joined AS (
            SELECT coalesce(b.column_name, a.column_name) AS column_name,
                   coalesce(b.position, a.position) AS position,
                   CASE
                     WHEN a.column_name IS NULL THEN [{'property': 'column', 'before': NULL, 'after': 'added: ' || b.data_type}]
                     WHEN b.column_name IS NULL THEN [{'property': 'column', 'before': a.data_type, 'after': 'removed'}]
                     ELSE [
                       {'property': 'data_type', 'before': a.data_type, 'after': b.data_type},
                       {'property': 'min_fraction', 'before': CAST(a.min_fraction AS VARCHAR), 'after': CAST(b.min_fraction AS VARCHAR)},
                       {'property': 'domain_size', 'before': CAST(len(a.domain) AS VARCHAR), 'after': CAST(len(b.domain) AS VARCHAR)},
                       {'property': 'domain_added',
                        'before': NULL,
                        'after': nullif(array_to_string(list_filter(coalesce(b.domain, []), lambda x: NOT list_contains(coalesce(a.domain, []), x)), ', '), '')},
                       {'property': 'domain_removed',
                        'before': nullif(array_to_string(list_filter(coalesce(a.domain, []), lambda x: NOT list_contains(coalesce(b.domain, []), x)), ', '), ''),
                        'after': NULL},
                       {'property': 'min_domain_mass', 'before': CAST(a.min_domain_mass AS VARCHAR), 'after': CAST(b.min_domain_mass AS VARCHAR)},
                       {'property': 'valid_min', 'before': CAST(a.valid_min AS VARCHAR), 'after': CAST(b.valid_min AS VARCHAR)},
                       {'property': 'valid_max', 'before': CAST(a.valid_max AS VARCHAR), 'after': CAST(b.valid_max AS VARCHAR)},
                       {'property': 'min_value', 'before': CAST(a.min_value AS VARCHAR), 'after': CAST(b.min_value AS VARCHAR)},
                       {'property': 'max_value', 'before': CAST(a.max_value AS VARCHAR), 'after': CAST(b.max_value AS VARCHAR)},
                       {'property': 'min_range_mass', 'before': CAST(a.min_range_mass AS VARCHAR), 'after': CAST(b.min_range_mass AS VARCHAR)},
                       {'property': 'allow_nan', 'before': CAST(a.allow_nan AS VARCHAR), 'after': CAST(b.allow_nan AS VARCHAR)},
                       {'property': 'allow_inf', 'before': CAST(a.allow_inf AS VARCHAR), 'after': CAST(b.allow_inf AS VARCHAR)},
                       {'property': 'is_unique', 'before': CAST(a.is_unique AS VARCHAR), 'after': CAST(b.is_unique AS VARCHAR)},
                       {'property': 'min_length', 'before': CAST(a.min_length AS VARCHAR), 'after': CAST(b.min_length AS VARCHAR)},
                       {'property': 'max_length', 'before': CAST(a.max_length AS VARCHAR), 'after': CAST(b.max_length AS VARCHAR)},
                       {'property': 'environments', 'before': CAST(a.environments AS VARCHAR), 'after': CAST(b.environments AS VARCHAR)},
                       {'property': 'drift_jsd', 'before': CAST(a.drift_jsd AS VARCHAR), 'after': CAST(b.drift_jsd AS VARCHAR)},
                       {'property': 'drift_linf', 'before': CAST(a.drift_linf AS VARCHAR), 'after': CAST(b.drift_linf AS VARCHAR)}
                     ]
                   END AS changes
            FROM a FULL OUTER JOIN b ON a.column_name = b.column_name
         ),
         column_changes AS (
            SELECT column_name, position, t.change.property AS property, t.change.before AS before, t.change.after AS after
            FROM joined, unnest(joined.changes) AS t(change)
            WHERE t.change.before IS DISTINCT FROM t.change.after
         ),
         -- each inferred constraint in words: the rule (the reason; the confidence)
         ea AS (SELECT a.column_name, a.position, t.e.kind AS kind,
                       t.e.rule || ' (' || t.e.reason || coalesce('; confidence ' || CAST(t.e.confidence AS VARCHAR), '') || ')' AS text
                FROM a, unnest(a.evidence) AS t(e)),
         eb AS (SELECT b.column_name, b.position, t.e.kind AS kind,
                       t.e.rule || ' (' || t.e.reason || coalesce('; confidence ' || CAST(t.e.confidence AS VARCHAR), '') || ')' AS text
                FROM b, unnest(b.evidence) AS t(e)),
         evidence_changes AS (
            SELECT coalesce(eb.column_name, ea.column_name) AS column_name, coalesce(eb.position, ea.position) AS position,
                   'constraint ' || coalesce(eb.kind, ea.kind) AS property, ea.text AS before, eb.text AS after
            FROM ea FULL OUTER JOIN eb ON ea.column_name = eb.column_name AND ea.kind = eb.kind
            WHERE ea.text IS DISTINCT FROM eb.text
         ),
         va AS (SELECT * FROM sqlml.data_schema_versions WHERE schema_name = data_schema AND version = v1),
         vb AS (SELECT * FROM sqlml.data_schema_versions WHERE schema_name = data_schema AND version = v2),
         dataset_changes AS (
            SELECT NULL AS column_name, -1 AS position, t.change.property AS property, t.change.before AS before, t.change.after AS after
            FROM va, vb, unnest([
                {'property': 'min_rows', 'before': CAST(va.min_rows AS VARCHAR), 'after': CAST(vb.min_rows AS VARCHAR)},
                {'property': 'max_rows', 'before': CAST(va.max_rows AS VARCHAR), 'after': CAST(vb.max_rows AS VARCHAR)},
                {'property': 'significance', 'before': CAST(va.significance AS VARCHAR), 'after': CAST(vb.significance AS VARCHAR)}
            ]) AS t(change)
            WHERE t.change.before IS DISTINCT FROM t.change.after
         ),
         ka AS (SELECT * FROM sqlml.data_schema_checks WHERE schema_name = data_schema AND version = v1),
         kb AS (SELECT * FROM sqlml.data_schema_checks WHERE schema_name = data_schema AND version = v2),
         check_changes AS (
            SELECT NULL AS column_name, 1000000 AS position,
                   'check ' || coalesce(kb.check_name, ka.check_name) AS property,
                   CASE WHEN ka.check_name IS NULL THEN NULL ELSE ka.scope || ': ' || ka.expression END AS before,
                   CASE WHEN kb.check_name IS NULL THEN NULL ELSE kb.scope || ': ' || kb.expression END AS after
            FROM ka FULL OUTER JOIN kb ON ka.check_name = kb.check_name
            WHERE ka.check_name IS NULL OR kb.check_name IS NULL OR ka.expression <> kb.expression OR ka.scope <> kb.scope
         )
    SELECT column_name, property, before, after
    FROM (SELECT * FROM dataset_changes UNION ALL SELECT * FROM column_changes UNION ALL SELECT * FROM evidence_changes
          UNION ALL SELECT * FROM check_changes
          UNION ALL SELECT NULL, -2, CAST(error(message) AS VARCHAR), NULL, NULL FROM missing)
    ORDER BY position, column_name, property;

-- The drift reference of a data schema version (current by default): what ml_validate compares a
-- batch with when no baseline is given. Numeric columns: drift bins (value ranges with their
-- counts); string and boolean columns: the most frequent values and their counts.
CREATE OR REPLACE MACRO ml_schema_reference(data_schema, schema_version := NULL) AS TABLE
    SELECT r.column_name, r.data_type, r.rows, r.count, r.rows - r.count AS missing, r.mean,
           sqrt(r.m2 / nullif(r.finite - 1, 0)) AS std,
           CASE WHEN r.cuts IS NOT NULL THEN list_transform(
               range(1, len(r.bin_counts) + 1),
               lambda i: {'upper': CASE WHEN i > len(r.cuts) THEN NULL
                                   WHEN r.cuts[i] > 0 THEN pow(1.005 / 0.995, r.cuts[i] - 3000)
                                   WHEN r.cuts[i] < 0 THEN -pow(1.005 / 0.995, -r.cuts[i] - 3001)
                                   ELSE 0.0 END,
                     'count': r.bin_counts[i]}) END AS bins,
           CASE WHEN r."values" IS NOT NULL AND len(r."values") > 0
                THEN list_transform(range(1, len(r."values") + 1), lambda i: {'value': r."values"[i], 'count': r.value_counts[i]}) END AS top_values,
           r.values_exact, r.version
    FROM sqlml.data_schema_reference AS r
    WHERE r.schema_name = data_schema
      AND r.version = coalesce(schema_version, ml_schema_current_version(data_schema));

-- Stored statistics sets: which datasets and spans have statistics, and how big they were.
CREATE OR REPLACE MACRO ml_statistics_sets() AS TABLE
    SELECT stats_id, dataset, span, source, row_count, merged_from, created_at
    FROM sqlml.statistics
    ORDER BY dataset, span NULLS FIRST, stats_id;

-- The newest stored statistics of each span of a dataset (or of one span), per column.
CREATE OR REPLACE MACRO ml_stored_statistics(dataset_name, span_name := NULL) AS TABLE
    WITH sets AS (
        SELECT * FROM sqlml.statistics
        WHERE dataset = dataset_name AND (span_name IS NULL OR span = span_name)
        QUALIFY row_number() OVER (PARTITION BY span ORDER BY stats_id DESC) = 1
    ),
    tops AS (
        SELECT stats_id, column_name,
               list({'value': value, 'count': count} ORDER BY count DESC, value)[1:10] AS top_values
        FROM sqlml.statistics_values WHERE stats_id IN (SELECT stats_id FROM sets)
        GROUP BY ALL
    )
    SELECT s.dataset, s.span, c.column_name, c.data_type, c.kind, s.row_count, c.count, c.missing,
           c.missing / nullif(s.row_count, 0) AS missing_fraction, c.distinct_count, c.distinct_exact,
           c.min, c.max, c.mean, c.std, c.quantiles[7] AS median, c.zeros, c.nan, c.pos_inf + c.neg_inf AS inf,
           c.min_value, c.max_value, t.top_values,
           c.sum_length / nullif(c.count, 0) AS avg_length, c.stats_id
    FROM sets AS s
    JOIN sqlml.statistics_columns AS c USING (stats_id)
    LEFT JOIN tops AS t ON t.stats_id = c.stats_id AND t.column_name = c.column_name
    ORDER BY s.span NULLS FIRST, c.position;

-- Statistics of a dataset's spans merged without rescanning any data: counts add, means and
-- variances merge (Chan et al.), quantiles come from the summed sketch buckets.
CREATE OR REPLACE MACRO ml_merged_statistics(dataset_name) AS TABLE
    WITH newest AS (
        SELECT * FROM sqlml.statistics WHERE dataset = dataset_name
        QUALIFY row_number() OVER (PARTITION BY span ORDER BY stats_id DESC) = 1
    ),
    sets AS (
        SELECT * FROM newest
        WHERE span IS NOT NULL OR NOT EXISTS (SELECT 1 FROM newest WHERE span IS NOT NULL)
    ),
    cols AS (SELECT c.* FROM sqlml.statistics_columns AS c WHERE c.stats_id IN (SELECT stats_id FROM sets)),
    rows_total AS (SELECT sum(row_count) AS row_count, count(*) AS spans FROM sets),
    first_pass AS (
        SELECT column_name, min(position) AS position, any_value(data_type) AS data_type, any_value(kind) AS kind,
               sum(count) AS count, sum(finite) AS finite, sum(nan) AS nan, sum(pos_inf + neg_inf) AS inf,
               sum(zeros) AS zeros, min(min) AS min, max(max) AS max, min(min_value) AS min_value, max(max_value) AS max_value,
               sum(finite * mean) / nullif(sum(finite), 0) AS mean,
               bool_and(distinct_exact AND values_exact) AS exact_values, max(distinct_count) AS max_distinct,
               sum(sum_length) AS sum_length
        FROM cols GROUP BY column_name
    ),
    moments AS (
        SELECT c.column_name, sum(c.m2 + c.finite * (c.mean - f.mean) * (c.mean - f.mean)) AS m2
        FROM cols AS c JOIN first_pass AS f USING (column_name)
        WHERE c.finite > 0
        GROUP BY c.column_name
    ),
    buckets AS (
        SELECT column_name, bucket, sum(count) AS n
        FROM sqlml.statistics_sketches WHERE stats_id IN (SELECT stats_id FROM sets)
        GROUP BY ALL
    ),
    running AS (
        SELECT column_name, bucket,
               sum(n) OVER (PARTITION BY column_name ORDER BY bucket ROWS UNBOUNDED PRECEDING) AS upto,
               sum(n) OVER (PARTITION BY column_name) AS total
        FROM buckets
    ),
    median_buckets AS (
        SELECT column_name, min(bucket) FILTER (WHERE upto > 0.5 * (total - 1)) AS bucket FROM running GROUP BY 1
    ),
    medians AS (  -- the bucket's representative value (0.5% relative error), clipped to [min, max]
        SELECT m.column_name, f.kind,
               CASE WHEN m.bucket = 0 THEN 0.0
                    ELSE least(greatest(sign(m.bucket) * 2 * pow(1.005 / 0.995, abs(m.bucket) - 3000) / (1.005 / 0.995 + 1), f.min), f.max)
               END AS value,
               -- the integers the bucket can hold (bounds widened by 1e-9, clipped to [min, max])
               ceil(greatest(f.min, CASE WHEN m.bucket > 0 THEN pow(1.005 / 0.995, m.bucket - 3001) * (1 - 1e-9)
                                         WHEN m.bucket < 0 THEN -pow(1.005 / 0.995, -m.bucket - 3000) * (1 + 1e-9) ELSE 0 END)) AS first_int,
               floor(least(f.max, CASE WHEN m.bucket > 0 THEN pow(1.005 / 0.995, m.bucket - 3000) * (1 + 1e-9)
                                       WHEN m.bucket < 0 THEN -pow(1.005 / 0.995, -m.bucket - 3001) * (1 - 1e-9) ELSE 0 END)) AS last_int
        FROM median_buckets AS m JOIN first_pass AS f USING (column_name)
    ),
    integer_medians AS (  -- as sketch.integer_in_bucket: an integer only where it keeps the 0.5% bound
        SELECT column_name, value, first_int, last_int,
               least(greatest(round(value), first_int), last_int) AS nearest
        FROM medians WHERE kind = 'integer'
    ),
    merged_values AS (
        SELECT column_name, value, sum(count) AS count
        FROM sqlml.statistics_values WHERE stats_id IN (SELECT stats_id FROM sets)
        GROUP BY ALL
    ),
    value_summary AS (
        SELECT column_name, count(*) AS distinct_values,
               list({'value': value, 'count': count} ORDER BY count DESC, value)[1:10] AS top_values
        FROM merged_values GROUP BY 1
    )
    SELECT dataset_name AS dataset, r.spans, f.column_name, f.data_type, f.kind, r.row_count, f.count,
           r.row_count - f.count AS missing, (r.row_count - f.count) / nullif(r.row_count, 0) AS missing_fraction,
           CASE WHEN f.exact_values AND v.distinct_values IS NOT NULL THEN v.distinct_values ELSE f.max_distinct END AS distinct_count,
           coalesce(f.exact_values AND v.distinct_values IS NOT NULL, false) AS distinct_exact,
           f.min, f.max, f.mean,
           sqrt(m.m2 / nullif(f.finite - 1, 0)) AS std,
           CASE WHEN im.first_int > im.last_int OR im.first_int IS NULL THEN md.value
                WHEN im.first_int = im.last_int THEN im.first_int
                WHEN greatest(abs(im.nearest - im.first_int) / abs(im.first_int), abs(im.last_int - im.nearest) / abs(im.last_int)) <= 0.005
                     THEN im.nearest
                ELSE md.value END AS median,
           f.zeros, f.nan, f.inf, f.min_value, f.max_value, v.top_values,
           CASE WHEN f.kind IN ('string', 'list') THEN f.sum_length / nullif(f.count, 0) END AS avg_length
    FROM first_pass AS f
    CROSS JOIN rows_total AS r
    LEFT JOIN moments AS m USING (column_name)
    LEFT JOIN medians AS md USING (column_name)
    LEFT JOIN integer_medians AS im USING (column_name)
    LEFT JOIN value_summary AS v USING (column_name)
    ORDER BY f.position;
