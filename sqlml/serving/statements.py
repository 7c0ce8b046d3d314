"""Rollout and portability statements: aliases, traffic splits, export and import.

    ALTER MODEL name SET ALIAS alias = version
    ALTER MODEL name DROP ALIAS [IF EXISTS] alias
    ALTER MODEL name SET TRAFFIC target = weight [, target = weight ...]   (targets: aliases or versions)
    ALTER MODEL name DROP TRAFFIC
    EXPORT MODEL reference TO 'file.onnx' | 'file.pt' | 'file.safetensors' [WITH (format := ..., opset := 17)]
    IMPORT MODEL [OR REPLACE] name FROM 'file' [WITH (format := ...)]

Setting an alias or a split also makes the database's serving folder (the files
``sqlml serve`` reads instead of the database, see ``sqlml.models.published``).
"""

from __future__ import annotations

from sqlml.models import aliases, published, registry


def alter_model(ctx):
    p = ctx.parser()
    p.expect("ALTER", "MODEL")
    name = p.identifier("a model name")
    duck = ctx.duck
    if p.accept("SET", "ALIAS"):
        alias_tok = p.current
        alias = p.identifier("an alias name")
        if not (p.accept("=") or p.accept(":=")):
            p.error("expected = and a version number after the alias")
        version = _version(p)
        p.end()
        try:
            aliases.check_alias(alias)
        except Exception as error:  # noqa: BLE001 - told at the alias's position
            p.error(str(error), alias_tok)
        _ensure_folder(duck)
        aliases.set_alias(duck, name, alias, version)
    elif p.accept("DROP", "ALIAS"):
        if_exists = p.accept("IF", "EXISTS")
        alias = p.identifier("an alias name")
        p.end()
        aliases.drop_alias(duck, name, alias, missing_ok=if_exists)
    elif p.accept("SET", "TRAFFIC"):
        split = []
        while True:
            tok = p.current
            if tok is not None and tok.kind == "number":
                target = str(_version(p))
            else:
                target = p.identifier("an alias (or version) to send traffic to")
            if not (p.accept("=") or p.accept(":=")):
                p.error("expected = and a weight after the traffic target")
            weight_tok = p.current
            weight = p.literal()
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                p.error("expected a number as the weight", weight_tok)
            split.append((target, float(weight)))
            if not p.accept(","):
                break
        p.end()
        _ensure_folder(duck)
        aliases.set_traffic(duck, name, split)
    elif p.accept("DROP", "TRAFFIC"):
        p.end()
        registry.load_record(duck, name)
        aliases.drop_traffic(duck, name)
    else:
        p.error("expected SET ALIAS, DROP ALIAS, SET TRAFFIC or DROP TRAFFIC")
    return None


def export_model(ctx):
    from sqlml.serving.export import export

    p = ctx.parser()
    p.expect("EXPORT", "MODEL")
    reference = _reference(p)
    p.expect("TO")
    path = _path(p)
    options = p.options() if p.accept("WITH") else {}
    p.end()
    with ctx.session.cursor() as cur:
        summary = export(cur, reference, path, options)
    return _table(ctx, summary)


def import_model(ctx):
    from sqlml.serving.export import import_model as do_import

    p = ctx.parser()
    p.expect("IMPORT", "MODEL")
    replace = p.accept("OR", "REPLACE")
    name = p.identifier("a model name")
    p.expect("FROM")
    path = _path(p)
    options = p.options() if p.accept("WITH") else {}
    p.end()
    summary = do_import(ctx.duck, name, path, options, replace=replace)
    return _table(ctx, summary)


def _version(p) -> int:
    tok = p.current
    if tok is None or tok.kind != "number" or not tok.text.isdigit():
        p.error("expected a version number")
    p.pos += 1
    return int(tok.text)


def _reference(p) -> str:
    """A model name, or a quoted 'name@N' / 'name@alias'."""
    tok = p.current
    if tok is not None and tok.kind == "string":
        value = p.literal()
        if not isinstance(value, str) or not value:
            p.error("expected a model name", tok)
        return value
    return p.identifier("a model name (or 'name@version')")


def _path(p) -> str:
    tok = p.current
    if tok is None or tok.kind != "string":
        p.error("expected a file name in quotes")
    value = p.literal()
    if not isinstance(value, str) or not value or "\x00" in value:
        p.error("expected a file name", tok)
    return value


def _ensure_folder(duck) -> None:
    """Setting an alias or split means serving: keep the serving folder (file databases)."""
    path = published.database_path(duck)
    folder = published.folder_of(path) if path else None
    if folder is not None:
        folder.mkdir(exist_ok=True)


def _table(ctx, summary: dict):
    import pyarrow as pa

    return ctx.connection.wrap(ctx.duck.from_arrow(pa.table({k: [v] for k, v in summary.items()})))
