import pytest


@pytest.fixture
def comments(con):
    """Ten comments with a gold label column; id is the key."""
    con.sql(
        """
        CREATE TABLE comments AS SELECT * FROM (VALUES
            (1, 'check out my channel http://x', 'spam'),
            (2, 'i love this song', 'ham'),
            (3, 'subscribe please http://y', 'spam'),
            (4, 'best song ever', 'ham'),
            (5, 'free stuff http://z', 'spam'),
            (6, 'nice voice', 'ham'),
            (7, 'love it, subscribe', 'spam'),
            (8, 'meh', NULL),
            (9, 'song of the year http://w', 'ham'),
            (10, 'lol', NULL)
        ) AS t(id, text, gold)
        """
    )
    return con


@pytest.fixture
def spam_lfs(comments):
    con = comments
    con.sql(
        "CREATE LABELING FUNCTION has_link ON comments WITH (classes := ['ham', 'spam']) AS "
        "CASE WHEN text LIKE '%http%' THEN 'spam' END"
    )
    con.sql("CREATE LABELING FUNCTION says_song ON comments AS CASE WHEN text LIKE '%song%' THEN 'ham' END")
    con.sql("CREATE LABELING FUNCTION says_subscribe ON comments AS CASE WHEN text LIKE '%subscribe%' THEN 1 END")
    return con


@pytest.fixture
def votes():
    """votes(con, table) -> {(key, lf name, class)} from ml_votes."""

    def read(con, table="comments"):
        return set(con.sql("SELECT * FROM ml_votes(?)", [table]).fetchall())

    return read
