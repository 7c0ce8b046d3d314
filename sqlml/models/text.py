"""Text features: a VARCHAR column as a bag of word n-grams, tokenized by DuckDB.

``CREATE MODEL m WITH (text := ['message'], ...)`` makes each named column a text
feature. One SQL expression (``terms_sql``) turns a text into its terms (lower-cased
tokens of ``token_pattern``, then their n-grams, optionally hashed into buckets); the
vocabulary is learned from the training query by a ``GROUP BY`` over those terms
(document frequency, ``min_df``, the ``vocabulary_size`` most frequent), and one SQL
query (``bag_sql``) turns texts into (term id, weight) lists: tf-idf (l2-normalised, as
scikit-learn's ``TfidfVectorizer``), counts, or binary. Staging runs that query in the
training connection; ``ml_predict``, bulk inference and ``sqlml serve`` run the very same
query on a private in-memory DuckDB over the batch's Arrow strings (``TextEncoder``),
so training and serving read text identically.

A row's bag keeps its ``max_tokens`` heaviest terms and is padded: the network sees
``[ids | weights]`` (``2 * max_tokens`` floats; ids are exact in float32 below 2^24),
which the text-aware architectures (``logistic``, ``mlp``, ``fasttext``) feed to an
``EmbeddingBag``. A NULL text is an empty bag.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from sqlml.errors import DataError, InvalidOptionError
from sqlml.sqlutil import fetch_value, quote_ident, quote_literal

if TYPE_CHECKING:  # pyarrow loads at use
    import pyarrow as pa

    from sqlml.models.features import FeatureSpec

WHERE = "CREATE MODEL"
DEFAULT_PATTERN = r"[\p{L}\p{N}_]+"
WEIGHTINGS = ("tfidf", "count", "binary")
MAX_IDS = 1 << 24  # ids travel as float32 in the input tensor: exact below 2^24

#: option name -> (default, check, doc); the text options of CREATE MODEL
TEXT_OPTIONS: dict[str, tuple[Any, Callable[[Any], str | None], str]] = {}


def _option(name: str, default: Any, doc: str) -> Callable[[Callable[[Any], str | None]], Callable[[Any], str | None]]:
    def decorate(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
        TEXT_OPTIONS[name] = (default, check, doc)
        return check

    return decorate


@_option("ngrams", [1, 2], "word n-gram lengths [min, max], 1 <= min <= max <= 5")
def _check_ngrams(v: Any) -> str | None:
    ok = isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
    return None if ok and 1 <= v[0] <= v[1] <= 5 else "expected [min, max] with 1 <= min <= max <= 5"


@_option("vocabulary_size", 50_000, "most frequent terms kept (by document frequency), 1 .. 16,000,000")
def _check_vocabulary(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 1 <= v < MAX_IDS
    return None if ok else "expected an integer in 1 .. 16,000,000"


@_option("min_df", 1, "documents a term must occur in to enter the vocabulary, >= 1")
def _check_min_df(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else "expected an integer >= 1"


@_option("hash_buckets", 0, "0: a learned vocabulary of terms; N in 1024 .. 16,777,216: terms hashed (md5) into N buckets")
def _check_buckets(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and (v == 0 or 1024 <= v <= MAX_IDS)
    return None if ok else "expected 0 or an integer in 1024 .. 16,777,216"


@_option("text_weighting", "tfidf", "'tfidf' (l2-normalised tf x smoothed idf), 'count' or 'binary'")
def _check_weighting(v: Any) -> str | None:
    return None if v in WEIGHTINGS else "expected 'tfidf', 'count' or 'binary'"


@_option("max_tokens", 256, "distinct terms kept per text (the heaviest), 1 .. 4096")
def _check_max_tokens(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 else "expected an integer in 1 .. 4096"


@_option("lowercase", True, "lower-case text before tokenizing")
def _check_lowercase(v: Any) -> str | None:
    return None if isinstance(v, bool) else "expected true or false"


@_option("token_pattern", DEFAULT_PATTERN, "RE2 pattern of one token (default: runs of letters, digits and _)")
def _check_pattern(v: Any) -> str | None:
    return None if isinstance(v, str) and v and "\x00" not in v else "expected a non-empty RE2 pattern"


def text_config(options: dict[str, Any]) -> dict[str, Any]:
    """The tokenizer settings of a model (checked), without vocabulary."""
    return {name: options.get(name, default) for name, (default, _, _) in TEXT_OPTIONS.items()}


def terms_sql(column_sql: str, config: dict[str, Any]) -> str:
    """SQL: the list of terms (n-grams, or bucket numbers as text) of one text value."""
    text = f"coalesce(CAST({column_sql} AS VARCHAR), '')"
    if config["lowercase"]:
        text = f"lower({text})"
    tokens = f"regexp_extract_all({text}, {quote_literal(config['token_pattern'])})"
    low, high = config["ngrams"]
    parts = []
    for n in range(low, high + 1):
        if n == 1:
            parts.append("t")
        else:
            joined = " || ' ' || ".join(f"t[i + {j}]" for j in range(n))
            parts.append(f"[{joined} FOR i IN range(1, len(t) - {n - 2})]")
    body = parts[0] if len(parts) == 1 else f"flatten([{', '.join(parts)}])"
    # a lambda over a one-element list binds the token list once for every n
    terms = f"list_transform([{tokens}], lambda t: {body})[1]"
    if config["hash_buckets"]:
        terms = f"list_transform({terms}, lambda g: CAST(md5_number(g) % {int(config['hash_buckets'])} AS VARCHAR))"
    return terms


def learn_vocabulary(duck: Any, source_sql: str, column: str, config: dict[str, Any], *, model: str) -> dict[str, Any]:
    """Vocabulary and idf of ``column`` over the rows of ``source_sql``, computed by DuckDB."""
    terms = terms_sql(quote_ident(column), config)
    n_docs = int(fetch_value(duck, f"SELECT count(*) FROM {source_sql}") or 0)
    rows = duck.execute(
        f"SELECT term, count(*) AS df FROM (SELECT unnest(list_distinct({terms})) AS term FROM {source_sql}) "
        f"GROUP BY term HAVING count(*) >= ? ORDER BY df DESC, term LIMIT ?",
        [int(config["min_df"]), int(config["vocabulary_size"])],
    ).fetchnumpy()
    vocabulary = [str(t) for t in rows["term"]]
    if not vocabulary:
        raise DataError(
            f"model {model!r}: text column {column!r} gives an empty vocabulary ({n_docs} rows; no term occurs in "
            f"at least min_df := {config['min_df']} of them with token_pattern {config['token_pattern']!r}). "
            f"Check the column holds text, lower min_df, or change token_pattern.",
            obj=model, column=column,
        )
    df = np.asarray(rows["df"], dtype=np.float64)
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0  # scikit-learn's smooth idf
    return {**config, "vocabulary": vocabulary, "idf": [round(float(v), 6) for v in idf], "documents": n_docs}


def vocabulary_arrow(text: dict[str, Any]) -> pa.Table:
    import pyarrow as pa

    n = len(text["vocabulary"])
    return pa.table({
        "term": pa.array(text["vocabulary"], pa.string()),
        "id": pa.array(np.arange(n, dtype=np.int32)),
        "idf": pa.array(np.asarray(text["idf"], dtype=np.float32)),
    })


def bag_sql(source_sql: str, vocabulary_sql: str, text: dict[str, Any]) -> str:
    """SQL over ``source_sql`` (columns ``__row``, ``__text``): ``__row, ids INTEGER[], weights FLOAT[]``
    for the rows with at least one known term (the others have an empty bag)."""
    weight = {"tfidf": "tf * idf", "count": "tf", "binary": "1.0"}[text["text_weighting"]]
    norm = "w / sqrt(sum(w * w) OVER (PARTITION BY __row))" if text["text_weighting"] == "tfidf" else "w"
    return (
        f"WITH grams AS (SELECT __row, unnest({terms_sql('__text', text)}) AS term FROM {source_sql}), "
        f"counted AS (SELECT g.__row, v.id, v.idf, CAST(count(*) AS DOUBLE) AS tf FROM grams AS g "
        f"JOIN {vocabulary_sql} AS v ON v.term = g.term GROUP BY ALL), "
        f"weighted AS (SELECT __row, id, {weight} AS w FROM counted), "
        f"ranked AS (SELECT __row, id, CAST({norm} AS FLOAT) AS w, "
        f"row_number() OVER (PARTITION BY __row ORDER BY w DESC, id) AS r FROM weighted) "
        f"SELECT __row, list(id ORDER BY id) AS ids, list(w ORDER BY id) AS weights FROM ranked "
        f"WHERE r <= {int(text['max_tokens'])} GROUP BY __row"
    )


def pad(ids: Any, weights: Any, max_tokens: int, out: np.ndarray | None = None) -> np.ndarray:
    """List arrays of ids and weights -> float32 ``[n, 2 * max_tokens]``: ids, then weights, 0-padded."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if isinstance(weights, pa.ChunkedArray):
        weights = weights.combine_chunks()
    n = len(ids)
    block = out if out is not None else np.empty((n, 2 * max_tokens), dtype=np.float32)
    block[:] = 0.0
    lengths = pc.fill_null(pc.list_value_length(ids), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if lengths.sum():
        rows = np.repeat(np.arange(n), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        slots = np.arange(len(rows)) - starts
        block[rows, slots] = pc.list_flatten(ids).to_numpy(zero_copy_only=False)
        block[rows, max_tokens + slots] = pc.list_flatten(weights).to_numpy(zero_copy_only=False)
    return block


def fingerprint(text: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(text, sort_keys=True).encode()).hexdigest()


class TextEncoder:
    """Texts -> padded bags on a private in-memory DuckDB holding one feature's vocabulary.

    Thread-safe: each thread works on its own cursor of the private database.
    """

    def __init__(self, text: dict[str, Any]):
        import duckdb

        self.text = text
        self.duck = duckdb.connect()
        self.duck.execute("SET threads = 1")
        self.duck.register("__vocab_src", vocabulary_arrow(text))
        self.duck.execute("CREATE TABLE vocab AS FROM __vocab_src")
        self.duck.unregister("__vocab_src")
        self.sql = bag_sql("__batch", "vocab", text)
        self.local = threading.local()

    def bags(self, texts: Any) -> tuple[pa.Array, pa.Array]:
        """(ids, weights) list arrays, one entry per text (empty lists for no known term)."""
        import pyarrow as pa

        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        if not pa.types.is_string(texts.type) and not pa.types.is_large_string(texts.type):
            if pa.types.is_null(texts.type):
                texts = pa.nulls(len(texts), pa.string())
            else:
                raise DataError(f"a text feature expects text (VARCHAR), got {texts.type}")
        cur = getattr(self.local, "cursor", None)
        if cur is None:
            cur = self.local.cursor = self.duck.cursor()
        batch = pa.table({"__row": pa.array(np.arange(len(texts), dtype=np.int64)), "__text": texts})
        cur.register("__batch", batch)
        try:
            found = cur.sql(self.sql).to_arrow_table()
        finally:
            cur.unregister("__batch")
        return align(found, len(texts))

    def encode(self, texts: Any, out: np.ndarray | None = None) -> np.ndarray:
        ids, weights = self.bags(texts)
        return pad(ids, weights, int(self.text["max_tokens"]), out)


def align(found: pa.Table, n: int) -> tuple[pa.Array, pa.Array]:
    """(ids, weights) list arrays in row order 0..n-1 from ``bag_sql`` rows (missing rows: empty)."""
    import pyarrow as pa

    rows = found.column("__row").to_numpy()
    order = np.full(n, -1, dtype=np.int64)
    order[rows] = np.arange(len(rows))
    empty_ids = pa.array([[]], pa.list_(pa.int32()))
    empty_w = pa.array([[]], pa.list_(pa.float32()))
    ids = pa.concat_arrays([found.column("ids").combine_chunks().cast(pa.list_(pa.int32())), empty_ids])
    weights = pa.concat_arrays([found.column("weights").combine_chunks().cast(pa.list_(pa.float32())), empty_w])
    take = pa.array(np.where(order < 0, len(rows), order))
    return ids.take(take), weights.take(take)


_ENCODERS: dict[str, TextEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def encoder(text: dict[str, Any]) -> TextEncoder:
    """The encoder of a text feature, one per process and vocabulary."""
    key = text.get("_key")
    if key is None:
        key = text["_key"] = fingerprint(text)
    with _ENCODERS_LOCK:
        found = _ENCODERS.get(key)
        if found is None:
            if len(_ENCODERS) > 64:
                _ENCODERS.clear()
            found = _ENCODERS[key] = TextEncoder(text)
        return found


def check_text_columns(names: list[str], types: dict[str, Any], options: dict[str, Any], *, model: str, features: list[str]) -> list[str]:
    """The ``text := [...]`` columns, checked: in the query, VARCHAR, features (not the label)."""
    wanted = options.get("text")
    if wanted is None:
        return []
    for column in wanted:
        if column not in names:
            raise DataError(
                f"model {model!r}: text column {column!r} is not in the training query (its columns: {', '.join(names)}).",
                obj=model, column=column,
            )
        if types[column].id != "varchar":
            raise DataError(
                f"model {model!r}: option text names column {column!r}, which is {types[column]}, not text (VARCHAR). "
                f"Only VARCHAR columns can be text features; cast it in the query or leave it out of text := [...].",
                obj=model, column=column,
            )
        if column not in features:
            raise DataError(
                f"model {model!r}: text column {column!r} is the label, weight or soft label, not a feature.",
                obj=model, column=column,
            )
    return list(wanted)


def check_options(options: dict[str, Any]) -> None:
    """Text options are refused without ``text := [...]``; their values are checked."""
    has_text = options.get("text") is not None
    for name, (default, check, _) in TEXT_OPTIONS.items():
        value = options.get(name, default)
        if name in options and value != default and not has_text:  # (settled options carry the defaults)
            raise InvalidOptionError(WHERE, name, "is a text option; name the text columns with text := ['column']")
        problem = check(value)
        if problem:
            raise InvalidOptionError(WHERE, name, f"{problem}, got {value!r}")


def layout(spec: FeatureSpec) -> dict[str, Any] | None:
    """Where the text bags sit in an encoded row (``[offset, max_tokens, vocabulary]`` per text
    feature), for the text-aware architectures; None without text features."""
    blocks = [
        [int(at), int(f.text["max_tokens"]), len(f.text["vocabulary"])]
        for f, at in zip(spec.features, spec.offsets, strict=True) if f.text is not None
    ]
    return {"blocks": blocks, "width": int(spec.width)} if blocks else None
