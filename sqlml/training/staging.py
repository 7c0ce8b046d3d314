"""Staging: run the training query once, stream it into an Arrow file, learn its statistics.

DuckDB streams the query (``to_arrow_reader`` with large batches, bounded memory) into an
uncompressed Arrow IPC file of fixed-size record batches ("blocks"). Every later pass
memory-maps that file, so reading a block is zero-copy, blocks can be visited in any
order (block shuffle), the data may be larger than memory (the OS pages it), and worker
processes read the same file without opening the database (a DuckDB file has one owning
process). The same pass gathers what the feature spec needs: row count, means and
standard deviations, categories, classes, and the NULL / NaN checks that refuse bad
training data before any model is built.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sqlml.errors import DataError, suggest
from sqlml.models.features import Feature, FeatureSpec, Target, array_type, example_shape, feature_kind, staging_expression
from sqlml.models.text import bag_sql, check_text_columns, learn_vocabulary, text_config, vocabulary_arrow
from sqlml.sqlutil import is_query_text, quote_ident, select_query

READ_BATCH_ROWS = 131_072  # DuckDB -> Arrow batch size while staging (>= 64K rows measured fastest)
BLOCK_BYTES = 8 << 20  # target size of one staged block
MAX_CLASSES = 10_000
FLOAT32_MAX = float(np.finfo(np.float32).max)  # networks compute in float32: larger magnitudes become inf


@dataclass
class TrainingSet:
    """Staged rows plus the spec learned from them; picklable, so other processes can read it."""

    path: str  # Arrow IPC file: columns f0..fN, then label / weight / soft as present
    spec: FeatureSpec
    n_rows: int
    directory: str  # scratch folder owning the files (removed by ``cleanup``)
    seed: int = 0
    validation_fraction: float = 0.0  # rows held out of ``path`` by a seeded hash of their position
    validation_path: str | None = None  # a staged validation query, when given
    stats: dict[str, Any] = field(default_factory=dict)

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Columns:
    """Which columns of the training query play which role."""

    features: list[str]
    label: str | None
    weight: str | None
    soft_label: str | None


def resolve_columns(columns: list[str], options: dict[str, Any], what: str = "training query") -> Columns:
    """Split the query's columns into features and label / weight / soft-label columns."""
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise DataError(f"the {what} returns the column name(s) {', '.join(map(repr, dupes))} more than once; alias them apart")

    def pick(option: str) -> str | None:
        name = options.get(option)
        if name is None:
            return None
        if name not in columns:
            near = suggest(name, columns)
            hint = f" Did you mean {' or '.join(map(repr, near))}?" if near else ""
            raise DataError(
                f"{option} column {name!r} is not in the {what} (its columns: {', '.join(columns)}).{hint}",
                column=name,
            )
        return name

    label, weight, soft = pick("label"), pick("weight"), pick("soft_label")
    roles = {c for c in (label, weight, soft) if c}
    if options.get("features") is not None:
        wanted = options["features"]
        if not isinstance(wanted, list) or not wanted:
            raise DataError(f"features must be a non-empty list of column names, got {wanted!r}")
        for name in wanted:
            if name not in columns:
                raise DataError(f"feature column {name!r} is not in the {what} (its columns: {', '.join(columns)})", column=name)
            if name in roles:
                raise DataError(f"column {name!r} cannot be both a feature and the label, weight or soft label", column=name)
        features = list(wanted)
    else:
        features = [c for c in columns if c not in roles]
    if not features:
        raise DataError(f"the {what} has no feature columns besides the label, weight and soft label")
    return Columns(features, label, weight, soft)


def infer_task(duck_type) -> str:
    return "regression" if duck_type.id in ("float", "double", "decimal") else "classification"


def scratch_directory(options: dict[str, Any]) -> str:
    """A new folder for one run's staged data, named after this process.

    A killed process cannot remove its folder, so folders of processes that no longer
    run are removed here, before a new one is made.
    """
    base = options.get("scratch_dir") or tempfile.gettempdir()
    try:
        os.makedirs(base, exist_ok=True)
        for entry in os.listdir(base):
            match = re.match(r"sqlml-train-(\d+)-", entry)
            if match and not _alive(int(match.group(1))):
                shutil.rmtree(os.path.join(base, entry), ignore_errors=True)
        return tempfile.mkdtemp(prefix=f"sqlml-train-{os.getpid()}-", dir=base)
    except OSError as error:
        from sqlml.errors import InvalidOptionError

        option = "scratch_dir" if options.get("scratch_dir") else "scratch_dir (default: the system temp folder)"
        raise InvalidOptionError(
            "CREATE MODEL", option,
            f"cannot create a folder for the staged training data in {base!r} ({error.strerror or error}); "
            f"give scratch_dir := a writable folder",
        ) from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stage(duck, query: str, options: dict[str, Any], *, directory: str, model: str = "model") -> TrainingSet:
    """Stage ``query`` for training under ``options`` (label, weight, soft_label, task, ...)."""
    relation = _relation(duck, query, "training query")
    names = list(relation.columns)
    types = dict(zip(names, relation.types, strict=True))
    cols = resolve_columns(names, options)
    task = options.get("task") or (infer_task(types[cols.label]) if cols.label else "classification")
    if task == "regression" and cols.soft_label:
        raise DataError("soft_label needs task := 'classification'; a regression model learns from numeric labels")
    if cols.label is None and cols.soft_label is None:
        raise DataError("give label := 'column' (or soft_label := 'probs_column' with classes := [...])")
    if task == "regression" and types[cols.label].id not in _NUMBER_IDS:
        raise DataError(
            f"regression needs a numeric label; column {cols.label!r} is {types[cols.label]}", column=cols.label
        )
    text_columns = check_text_columns(names, types, options, model=model, features=cols.features)
    kinds = {c: ("text", []) if c in text_columns else feature_kind(c, types[c]) for c in cols.features}

    select = staged_features([(c, kind, dims) for c, (kind, dims) in kinds.items()])
    where = []
    if cols.label:
        target_type = "DOUBLE" if task == "regression" else "VARCHAR"
        select.append(f"CAST({quote_ident(cols.label)} AS {target_type}) AS label")
    if cols.weight:
        select.append(f"CAST({quote_ident(cols.weight)} AS FLOAT) AS weight")
    if cols.soft_label:
        select.append(f"CAST({quote_ident(cols.soft_label)} AS FLOAT[]) AS soft")
    have = [quote_ident(c) + " IS NOT NULL" for c in (cols.label, cols.soft_label) if c]
    if have:
        where.append("(" + " OR ".join(have) + ")")
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""
    texts = {}
    if text_columns:
        config = text_config(options)
        source = f"(SELECT * FROM ({_strip(query)}) AS q{where_sql}) AS __src"
        texts = {c: learn_vocabulary(duck, source, c, config, model=model) for c in text_columns}
    positions = [(i, c, texts[c]) for i, c in enumerate(kinds) if c in texts]

    acc = _Stats(cols, kinds, task, int(options.get("max_categories", 1000)), texts)
    block_rows = options.get("block_rows") or _auto_block_rows(kinds)
    path = os.path.join(directory, "train.arrow")
    with _bag_query(duck, _strip(query), where_sql, select, positions) as staged_sql:
        n_rows = _write_blocks(duck, staged_sql, path, block_rows, acc.update)
    if n_rows == 0:
        dropped = "" if not have else " (rows whose label is NULL are left out)"
        raise DataError(f"the training query returned no rows{dropped}; there is nothing to train on")

    spec = acc.spec(options, n_rows)
    training = TrainingSet(path, spec, n_rows, directory, seed=int(options.get("seed", 0)), stats=acc.summary())
    fraction = options.get("validation_split") or 0.0
    if fraction:
        training.validation_fraction = float(fraction)
    if options.get("validation_query"):
        training.validation_path = stage_evaluation(
            duck, options["validation_query"], spec, os.path.join(directory, "validation.arrow"), block_rows
        )
    return training


@contextmanager
def _bag_query(duck, query: str, where_sql: str, select: list[str], texts: list[tuple[int, str, dict]]):
    """The staging SELECT; with text features, each text column's bag (``text.bag_sql``) is
    joined to its row as ``f{i}`` (term ids) and ``g{i}`` (weights), rows in query order.
    The vocabularies live in TEMP tables while the query runs."""
    if not texts:
        yield f"SELECT {', '.join(select)} FROM ({query}) AS q{where_sql}"
        return
    ctes = [f"__q AS MATERIALIZED (SELECT row_number() OVER () AS __row, * FROM ({query}) AS q{where_sql})"]
    joins, items, temps = [], list(select), []
    try:
        for i, column, text in texts:
            vocab = f"__sqlml_vocab_{i}"
            duck.register("__sqlml_vocab_src", vocabulary_arrow(text))
            try:
                duck.execute(f"CREATE OR REPLACE TEMP TABLE {vocab} AS FROM __sqlml_vocab_src")
            finally:
                duck.unregister("__sqlml_vocab_src")
            temps.append(vocab)
            source = f"(SELECT __row, {quote_ident(column)} AS __text FROM __q)"
            ctes.append(f"__bag{i} AS ({bag_sql(source, vocab, text)})")
            joins.append(f" LEFT JOIN (SELECT __row AS __r{i}, ids AS __ids{i}, weights AS __w{i} FROM __bag{i}) "
                         f"ON __r{i} = __q.__row")
            items += [f"coalesce(__ids{i}, []::INTEGER[]) AS f{i}", f"coalesce(__w{i}, []::FLOAT[]) AS g{i}"]
        yield f"WITH {', '.join(ctes)} SELECT {', '.join(items)} FROM __q{''.join(joins)} ORDER BY __q.__row"
    finally:
        for temp in temps:
            duck.execute(f"DROP TABLE IF EXISTS {temp}")


def stage_evaluation(duck, query: str, spec: FeatureSpec, path: str, block_rows: int) -> str:
    """Stage a second query (validation) with the training set's columns, looked up by name."""
    relation = _relation(duck, query, "validation query")
    names = list(relation.columns)
    target = spec.target
    wanted = [f.name for f in spec.features] + [c for c in (target.label, target.weight, target.soft_label) if c]
    missing = [c for c in wanted if c not in names]
    if missing:
        raise DataError(
            f"the validation query lacks the training column(s) {', '.join(map(repr, missing))} (it has: {', '.join(names)})"
        )
    select = staged_features([(f.name, f.kind, f.shape) for f in spec.features])
    if target.label:
        select.append(f"CAST({quote_ident(target.label)} AS {'DOUBLE' if target.task == 'regression' else 'VARCHAR'}) AS label")
    if target.weight:
        select.append(f"CAST({quote_ident(target.weight)} AS FLOAT) AS weight")
    if target.soft_label:
        select.append(f"CAST({quote_ident(target.soft_label)} AS FLOAT[]) AS soft")
    where_sql = f" WHERE {quote_ident(target.label)} IS NOT NULL" if target.label else ""
    texts = [(i, f.name, f.text) for i, f in enumerate(spec.features) if f.kind == "text"]
    with _bag_query(duck, _strip(query, "validation_query"), where_sql, select, texts) as sql:
        rows = _write_blocks(duck, sql, path, block_rows, None)
    if rows == 0:
        raise DataError("the validation query returned no rows with a label")
    return path


def staged_features(features: list[tuple[str, str, list[int]]]) -> list[str]:
    """SELECT items staging features: numeric ones packed in one ``FLOAT[k]`` column ``num``
    (row-major, what the network reads), the others as ``f{i}`` by argument position."""
    numeric = [quote_ident(name) for name, kind, _ in features if kind == "numeric"]
    items = [f"[{', '.join(f'CAST({c} AS FLOAT)' for c in numeric)}]::FLOAT[{len(numeric)}] AS num"] if numeric else []
    items += [
        f"{staging_expression(kind, dims, quote_ident(name))} AS f{i}"
        for i, (name, kind, dims) in enumerate(features)
        if kind not in ("numeric", "text")  # text: see _bag_query
    ]
    return items


# -- internals ----------------------------------------------------------------------------

_NUMBER_IDS = frozenset(
    "tinyint smallint integer bigint hugeint utinyint usmallint uinteger ubigint uhugeint float double decimal".split()
)


def _strip(query: str, argument: str = "query") -> str:
    """The query checked to be exactly one read-only statement, ready to wrap in ``(...)``."""
    return select_query(query, argument=argument, where="CREATE MODEL")


def _relation(duck, query: str, what: str):
    import duckdb

    if not is_query_text(query):
        raise DataError(f"the {what} must be a query (SELECT ...), not a statement: {query[:80]!r}")
    try:
        relation = duck.sql(_strip(query, "validation_query" if what.startswith("validation") else "query"))
    except duckdb.Error as error:
        raise DataError(f"the {what} failed: {error}") from None
    if relation is None:
        raise DataError(f"the {what} must be a query (SELECT ...), not a statement: {query[:80]!r}")
    return relation


def _hint(error) -> str:
    if "out of range for the destination type FLOAT" in str(error):
        return (f" (numeric features are staged as FLOAT, at most ±{FLOAT32_MAX:.3g}: scale the feature in the query, "
                f"or filter WHERE abs(x) < 1e38)")
    return ""


def _auto_block_rows(kinds: dict[str, tuple[str, list[int]]]) -> int:
    row_bytes = 16
    for kind, dims in kinds.values():
        row_bytes += 4 * math.prod(dims) if kind == "array" else ({"categorical": 16, "text": 512}.get(kind, 4))
    return int(min(65_536, max(1_024, BLOCK_BYTES // row_bytes)))


def _write_blocks(duck, sql: str, path: str, block_rows: int, observe) -> int:
    """Stream ``sql`` into an Arrow IPC file of ``block_rows``-row record batches.

    DuckDB is asked for batches of a multiple of ``block_rows``, so blocks are zero-copy
    slices of what it hands over; only a block that spans two batches is concatenated.
    """
    import duckdb
    import pyarrow as pa

    read_rows = block_rows * max(1, READ_BATCH_ROWS // block_rows)
    try:
        reader = duck.sql(sql).to_arrow_reader(read_rows)
    except duckdb.Error as error:
        raise DataError(f"the training query failed: {error}{_hint(error)}") from None
    rows = 0
    carry = None  # rows read but not yet written (fewer than a block)
    with reader, pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, reader.schema) as writer:
        try:
            for batch in reader:
                if not batch.num_rows:
                    continue
                if observe is not None:
                    observe(batch)
                rows += batch.num_rows
                if carry is not None:
                    batch = pa.Table.from_batches([carry, batch]).combine_chunks().to_batches()[0]
                    carry = None
                start = 0
                while batch.num_rows - start >= block_rows:
                    writer.write_batch(batch.slice(start, block_rows))
                    start += block_rows
                if start < batch.num_rows:
                    carry = batch.slice(start)
        except duckdb.Error as error:
            raise DataError(f"the training query failed: {error}{_hint(error)}") from None
        if carry is not None:
            writer.write_batch(carry)
    return rows


class _Stats:
    """Statistics gathered while staging, and the checks that refuse bad training data."""

    def __init__(self, cols: Columns, kinds, task: str, max_categories: int, texts: dict | None = None):
        self.cols, self.kinds, self.task, self.max_categories = cols, kinds, task, max_categories
        self.texts = texts or {}
        self.numeric = [c for c, (k, _) in kinds.items() if k == "numeric"]
        self.sums = np.zeros(len(self.numeric))
        self.squares = np.zeros(len(self.numeric))
        self.count = 0
        self.categories: dict[str, dict[str, int]] = {c: {} for c, (k, _) in kinds.items() if k == "categorical"}
        self.labels: dict[str, int] = {}
        self.label_sums = [0.0, 0.0, 0]
        self.soft_width: int | None = None
        self.pairs: dict[tuple[str, int], int] = {}  # (label, argmax of its soft label) -> rows
        self.weight_sum = 0.0

    def update(self, batch) -> None:
        import pyarrow.compute as pc

        if self.numeric:
            self._numeric(batch.column("num"))
        for i, (name, (kind, _)) in enumerate(self.kinds.items()):
            if kind in ("numeric", "text"):
                continue
            column = batch.column(f"f{i}")
            if kind == "categorical":
                self._count(self.categories[name], column, name)
                continue
            if column.null_count:
                raise _bad_values(name, column.null_count, "NULL")
            bad = int((~np.isfinite(_leaf_values(column))).sum())
            if bad:
                raise _bad_values(name, bad, "NaN or infinite")
        names = batch.schema.names
        if "label" in names:
            label = batch.column("label")
            if self.task == "classification":
                self._count(self.labels, label, self.cols.label, limit=MAX_CLASSES)
            else:
                v = label.drop_null().to_numpy(zero_copy_only=False)
                bad = int((~np.isfinite(v)).sum())
                if bad:
                    raise _bad_values(self.cols.label, bad, "NaN or infinite", role="label")
                huge = int((np.abs(v) > FLOAT32_MAX).sum())
                if huge:
                    raise DataError(
                        f"label column {self.cols.label!r} has {huge} value(s) beyond ±{FLOAT32_MAX:.3g}, the float32 range "
                        f"the network computes in. Scale the label in the training query (e.g. {self.cols.label} / 1e30) "
                        f"or filter them (WHERE abs({self.cols.label}) < 1e38).",
                        column=self.cols.label,
                    )
                self.label_sums[0] += float(v.sum())
                self.label_sums[1] += float((v * v).sum())
                self.label_sums[2] += len(v)
        if "weight" in names:
            weight = batch.column("weight")
            if weight.null_count:
                raise DataError(
                    f"weight column {self.cols.weight!r} has {weight.null_count} NULL value(s); "
                    f"give every row a weight (e.g. coalesce({self.cols.weight}, 1.0))",
                    column=self.cols.weight,
                )
            w = weight.to_numpy(zero_copy_only=False)
            if not np.isfinite(w).all() or (w < 0).any():
                bad = int((~np.isfinite(w) | (w < 0)).sum())
                raise DataError(
                    f"weight column {self.cols.weight!r} has {bad} negative, NaN or infinite value(s); keep the rows "
                    f"with WHERE isfinite({self.cols.weight}) AND {self.cols.weight} >= 0",
                    column=self.cols.weight,
                )
            self.weight_sum += float(w.sum())
        if "soft" in names:
            soft = batch.column("soft")
            bad = int((~np.isfinite(pc.list_flatten(soft).fill_null(0.0).to_numpy(zero_copy_only=False))).sum())
            if bad:
                raise DataError(
                    f"soft label column {self.cols.soft_label!r} has {bad} NaN or infinite probabilit(ies); every "
                    f"probability must be a finite number",
                    column=self.cols.soft_label,
                )
            lengths = pc.list_value_length(soft).drop_null().to_numpy(zero_copy_only=False)
            if len(lengths):
                if self.soft_width is None:
                    self.soft_width = int(lengths[0])
                if (lengths != self.soft_width).any():
                    raise DataError(
                        f"soft label column {self.cols.soft_label!r} has arrays of different lengths "
                        f"({sorted(set(lengths.tolist()))[:5]}); every row needs one probability per class",
                        column=self.cols.soft_label,
                    )
                if "label" in names:
                    self._agreement(batch.column("label"), soft)

    def _agreement(self, label, soft) -> None:
        """Count (label, position of the largest probability) pairs: they reveal the class order."""
        import pyarrow.compute as pc

        both = pc.and_(label.is_valid(), soft.is_valid())
        label, soft = label.filter(both), soft.filter(both)
        if not len(label):
            return
        top = pc.fill_null(soft.flatten(), 0.0).to_numpy(zero_copy_only=False).reshape(-1, self.soft_width).argmax(axis=1)
        for position in np.unique(top):
            counts = pc.value_counts(label.filter(top == position))
            for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
                key = (value, int(position))
                self.pairs[key] = self.pairs.get(key, 0) + count

    def _numeric(self, column) -> None:
        """NULL / NaN checks and running sums of the packed numeric block."""
        k = len(self.numeric)
        child = column.values.slice(column.offset * k, len(column) * k)
        if child.null_count:
            nulls = child.is_null().to_numpy(zero_copy_only=False).reshape(-1, k).sum(axis=0)
            j = int(np.flatnonzero(nulls)[0])
            raise _bad_values(self.numeric[j], int(nulls[j]), "NULL")
        values = child.to_numpy(zero_copy_only=False).reshape(-1, k)
        sums = values.sum(axis=0, dtype=np.float64)
        if not np.isfinite(sums).all():  # float32 values sum to at most 1e38 * rows in float64: only NaN/inf break it
            j = int(np.flatnonzero(~np.isfinite(sums))[0])
            raise _bad_values(self.numeric[j], int((~np.isfinite(values[:, j])).sum()), "NaN or infinite")
        self.sums += sums
        self.squares += np.einsum("ij,ij->j", values, values, dtype=np.float64)
        self.count += len(values)

    def _count(self, into: dict[str, int], column, name: str, limit: int | None = None) -> None:
        import pyarrow.compute as pc

        limit = limit or self.max_categories
        counts = pc.value_counts(column.drop_null())
        for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
            into[value] = into.get(value, 0) + count
        if len(into) > limit:
            if into is self.labels:
                raise DataError(
                    f"label column {name!r} has more than {limit} distinct values; for a numeric target "
                    f"use task := 'regression'",
                    column=name,
                )
            raise DataError(
                f"categorical feature {name!r} has more than {limit} distinct values; raise max_categories, "
                f"bucket it in SQL, or leave it out",
                column=name,
            )

    def spec(self, options: dict[str, Any], n_rows: int) -> FeatureSpec:
        normalize = options.get("normalize", True)
        features = []
        for name, (kind, dims) in self.kinds.items():
            if kind == "numeric":
                j = self.numeric.index(name)
                mean = float(self.sums[j] / self.count)
                std = math.sqrt(max(float(self.squares[j] / self.count) - mean * mean, 0.0))
                features.append(Feature(name, kind, "FLOAT", 1, [], None, mean if normalize else None, (std or 1.0) if normalize else None))
            elif kind == "array":
                features.append(Feature(name, kind, array_type(dims), math.prod(dims), list(dims)))
            elif kind == "text":
                text = self.texts[name]
                features.append(Feature(name, kind, "VARCHAR", 2 * int(text["max_tokens"]), [], text=text))
            else:
                cats = sorted(self.categories[name])
                features.append(Feature(name, kind, "VARCHAR", len(cats) + 1, [], cats))
        target = Target(self.task, self.cols.label, None, self.cols.weight, self.cols.soft_label)
        if self.task == "classification":
            target.classes = self._classes(options)
        else:
            total, squares, count = self.label_sums
            target.mean = total / count
            target.std = math.sqrt(max(squares / count - target.mean**2, 0.0)) or 1.0
        if self.texts and options.get("input_shape"):
            raise DataError("input_shape cannot be given with text features (a text feature is a bag of terms, not a grid)")
        if self.weight_sum == 0.0 and self.cols.weight:
            raise DataError(f"every weight in column {self.cols.weight!r} is 0; there is nothing to learn from")
        return FeatureSpec(features, example_shape(features, options.get("input_shape")), target)

    def _classes(self, options: dict[str, Any]) -> list[str]:
        given = options.get("classes")
        seen = sorted(self.labels, key=_class_order)
        if given is not None:
            if not isinstance(given, list) or len(given) < 2 or len(set(map(str, given))) != len(given):
                raise DataError(f"classes must be a list of at least two distinct names, got {given!r}")
            given = [class_name(c) for c in given]
            unknown = [c for c in seen if c not in given]
            if unknown:
                raise DataError(
                    f"label column {self.cols.label!r} has value(s) {', '.join(map(repr, unknown[:5]))} that are "
                    f"not among classes {given}"
                )
            classes = given
        else:
            classes = seen
            if len(classes) < 2 and not self.cols.soft_label:
                only = f" ({classes[0]!r})" if classes else ""
                raise DataError(
                    f"label column {self.cols.label!r} has only one class{only} in the training data; "
                    f"a classifier needs at least two"
                )
        if self.cols.soft_label and self.soft_width is not None and self.soft_width != len(classes):
            raise DataError(
                f"soft label column {self.cols.soft_label!r} has {self.soft_width} probabilities per row, but there "
                f"are {len(classes)} classes ({classes}); give classes := [...] in the order of the probabilities"
            )
        if given is None and self.pairs:
            self._check_order(classes)
        return classes

    def _check_order(self, classes: list[str]) -> None:
        """Refuse sorted class names that do not match the order of the probabilities."""
        total = sum(self.pairs.values())
        agree = sum(self.pairs.get((c, i), 0) for i, c in enumerate(classes)) / total
        if agree >= 0.5:
            return
        likely = [max(classes, key=lambda c, i=i: self.pairs.get((c, i), 0)) for i in range(len(classes))]
        hint = f"; they look ordered as {likely}" if sorted(likely) == sorted(classes) else ""
        raise DataError(
            f"soft label column {self.cols.soft_label!r}: taking classes in sorted order {classes}, the most likely "
            f"class agrees with the label in only {agree:.0%} of rows{hint}. Give classes := [...] in the order of "
            f"the probabilities (a label model's class order)"
        )

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.labels:
            out["class_counts"] = dict(sorted(self.labels.items(), key=lambda kv: _class_order(kv[0])))
        return out


def class_name(value) -> str:
    """A class as the text DuckDB gives for it: true -> 'true', 3 -> '3'."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _class_order(name: str):
    try:
        return (0, float(name), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(name))


def _leaf_values(column) -> np.ndarray:
    import pyarrow as pa

    flat = column
    while pa.types.is_fixed_size_list(flat.type):
        step = flat.type.list_size
        flat = flat.values.slice(flat.offset * step, len(flat) * step)
    return flat.to_numpy(zero_copy_only=False)


def _bad_values(name: str, count: int, what: str, role: str = "feature") -> DataError:
    """A refusal of NULL or non-finite training values, with a filter that removes them."""
    if what == "NULL":
        hint = f"Filter them (WHERE {name} IS NOT NULL) or fill them (coalesce({name}, 0))"
    else:  # NaN <> NaN and NaN IS NOT NULL: only isfinite removes both NaN and ±inf (and NULL)
        hint = f"Filter them (WHERE isfinite({name})) or replace them (CASE WHEN isfinite({name}) THEN {name} ELSE 0 END)"
    return DataError(f"{role} column {name!r} has {count} {what} value(s) in the training data. {hint} in the training query.", column=name)
