"""Deterministic synthetic data in SQL (hash-based uniforms, Box-Muller normals): no RNG state."""


def uniform(i: str, salt: str) -> str:
    return f"((hash({i}, '{salt}') % 1000000007)::DOUBLE + 0.5) / 1000000007"


def normal(i: str, salt: str) -> str:
    return f"sqrt(-2 * ln({uniform(i, salt + 'a')})) * cos(2 * pi() * {uniform(i, salt + 'b')})"


def create_mixed(con, name: str, rows: int, seed: str = "s") -> None:
    """Ten columns like the TFDV comparison's: normal with 2% NULL, lognormal, uniform, ints, categories, a flag."""
    u = lambda tag: uniform("i", seed + tag)  # noqa: E731
    con.sql(
        f"""
        CREATE OR REPLACE TABLE {name} AS SELECT
            i AS id,
            CASE WHEN {u('n0')} < 0.02 THEN NULL ELSE {normal('i', seed + 'n')} END AS f_norm,
            exp({normal('i', seed + 'l')}) AS f_lognorm,
            {u('u')} * 100 AS f_uniform,
            CAST(floor({u('s')} * 101) AS BIGINT) AS i_small,
            CAST(floor(-3 * ln({u('c')})) AS BIGINT) AS i_count,
            CASE WHEN {u('l0')} < 0.01 THEN NULL ELSE ['a', 'b', 'c', 'd', 'e'][CAST(floor({u('lo')} * 5) AS INTEGER) + 1] END AS c_low,
            'cat_' || CAST(floor(200 * pow({u('m')}, 3)) AS INTEGER) AS c_mid,
            'u_' || CAST(floor({u('h')} * 5000) AS INTEGER) AS c_high,
            CAST({u('b')} < 0.3 AS BIGINT) AS b_flag
        FROM range({rows}) t(i)
        """
    )
