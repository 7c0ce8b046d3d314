"""``sqlml serve DB --model NAME [--port 8080] ...``: the online endpoint from the command line.

Every option has a range, checked when the command line is read (docs/serving.md lists them).
"""

from __future__ import annotations

import argparse
import os
import sys


def _ranged(kind, low, high, what: str):
    """An argparse type: ``kind`` within [low, high]."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if kind is float and value != value:
            raise argparse.ArgumentTypeError(f"{what} must be a number, not NaN")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be between {low:g} and {high:g}, got {text}")
        return value

    return parse


#: option -> (type, low, high, default, help); the ranges docs/serving.md documents
RANGES = {
    "--port": (int, 0, 65535, 8080, "port (0 picks a free one)"),
    "--max-batch": (int, 1, 65536, 512, "largest model batch, rows"),
    "--target-ms": (float, 0.1, 60_000, 25.0, "model time per batch the batch size adapts to, ms"),
    "--max-wait-ms": (float, 0, 10_000, 0.0, "longest a request waits for a batch to fill, ms"),
    "--max-queue": (int, 1, 10_000_000, 4096, "rows waiting at most before answering 503"),
    "--max-rows": (int, 1, 1_000_000, 1024, "inputs per request at most (413 beyond)"),
    "--max-body-bytes": (int, 64, 1 << 30, 1 << 20, "request body size limit, bytes (413 beyond)"),
    "--max-depth": (int, 4, 1000, 16, "nesting of a request body at most (400 beyond)"),
    "--cache-entries": (int, 0, 100_000_000, 100_000, "in-memory answer cache size (0: off)"),
    "--read-timeout": (float, 0.05, 3600, 10.0, "seconds a connection has to send a request (headers and body); idle keep-alive included"),
    "--max-connections": (int, 1, 1_000_000, 1024, "open connections at most"),
    "--reload-seconds": (float, 0.05, 3600, 1.0, "how often a moving reference (alias, latest, traffic split) is looked up"),
    "--open-timeout": (float, 0, 3600, 30.0, "how long to retry a database another process holds (only when the model is not published)"),
    "--log-flush-ms": (float, 10, 60_000, 1000.0, "how often the request log is written to its segment files, ms"),
    "--log-sample": (float, 0, 1, 1.0, "fraction of requests whose inputs are logged (every request's row is)"),
    "--log-max-request-bytes": (int, 0, 1 << 30, 65536, "JSON of one request's inputs logged at most (larger: features NULL)"),
    "--log-max-pending": (int, 1, 10_000_000, 100_000, "log records waiting to be written at most (more are dropped, counted)"),
    "--log-retention-hours": (float, 0.001, 1_000_000, 720.0, "segment files older than this are deleted"),
    "--log-max-mb": (float, 1, 1_000_000, 1024.0, "this server's segment files at most, MB (oldest deleted first)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqlml serve",
        description="Serve a trained model over HTTP/JSON. The server never holds the database: it reads models "
        "from the serving folder beside it and logs requests to Parquet segment files there.",
    )
    parser.add_argument("database", help="the database file holding the model (it must exist)")
    parser.add_argument("--model", required=True, help="model name, name@version, name@alias or name@latest")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    for option, (kind, low, high, default, text) in RANGES.items():
        parser.add_argument(option, type=_ranged(kind, low, high, option), default=default, help=f"{text} [{low:g}..{high:g}, default {default:g}]")
    parser.add_argument("--no-batching", action="store_true", help="one request per model call")
    parser.add_argument("--no-access-log", action="store_true", help="no access log lines on stdout")
    return parser


def serve_main(argv: list[str]) -> int:
    """Entry point of ``sqlml serve``; blocks until SIGINT/SIGTERM; returns the exit status."""
    from sqlml.errors import SqlmlError
    from sqlml.serving.batcher import BatchPolicy
    from sqlml.serving.requestlog import LogPolicy
    from sqlml.serving.server import Server, ServerConfig

    args = build_parser().parse_args(argv)
    problem = _database_problem(args.database)
    if problem:
        print(f"sqlml serve: {problem}", file=sys.stderr)
        return 1
    config = ServerConfig(
        host=args.host,
        port=args.port,
        max_rows=args.max_rows,
        max_body_bytes=args.max_body_bytes,
        max_depth=args.max_depth,
        cache_entries=args.cache_entries,
        read_timeout=args.read_timeout,
        max_connections=args.max_connections,
        reload_seconds=args.reload_seconds,
        open_timeout=args.open_timeout,
        log=LogPolicy(
            flush_seconds=args.log_flush_ms / 1000,
            sample=args.log_sample,
            max_request_bytes=args.log_max_request_bytes,
            max_pending=args.log_max_pending,
            retention_seconds=args.log_retention_hours * 3600,
            max_bytes=int(args.log_max_mb * (1 << 20)),
        ),
    )
    if args.no_batching:
        policy = BatchPolicy.unbatched(max_queue=args.max_queue)
    else:
        policy = BatchPolicy(
            max_batch=args.max_batch, target_ms=args.target_ms, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue
        )
    if not args.no_access_log:
        _access_log_to_stdout()
    try:
        server = Server(args.database, args.model, policy=policy, config=config)
    except SqlmlError as error:
        print(f"sqlml serve: {error}", file=sys.stderr)
        return 1

    def listening(server):
        print(f"listening on {server.url}; loading {args.model} (GET /ready says when it is served)", file=sys.stderr, flush=True)

    def ready(server):
        versions = ", ".join(f"{d.predictor.model}@{d.predictor.version} ({d.label}, {d.weight:.0%})" for d in server.endpoint.deployments)
        follows = " (followed: a new version is picked up without a restart)" if server.source and server.source.follows else ""
        print(
            f"serving {versions}{follows} on {server.url} (POST /predict, GET /ready, /health, /metrics); Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )

    try:
        server.serve_forever(on_listening=listening, on_ready=ready)
    except SqlmlError as error:
        print(f"sqlml serve: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the port is taken, the address is wrong
        print(f"sqlml serve: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"stopped; every request is in the log ({server.log.segments.folder})", file=sys.stderr)
    return 0


def _database_problem(path: str) -> str | None:
    """Why ``path`` cannot be served (a mistyped path must not create a new database)."""
    if path.startswith(":memory:"):
        return "an in-memory database holds no models; give a database file"
    if not os.path.exists(path):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            return f"database {path!r} does not exist (nor does its folder {folder!r})"
        return f"database {path!r} does not exist; give the path of the database holding the model"
    if os.path.isdir(path):
        return f"{path!r} is a folder, not a database file"
    return None


def _access_log_to_stdout() -> None:
    import logging

    from sqlml.serving.server import access_log

    if any(getattr(h, "sqlml_access", False) for h in access_log.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.sqlml_access = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
