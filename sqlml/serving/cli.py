"""``sqlml serve DB --model NAME [--port 8080] ...``: the online endpoint from the command line."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqlml serve",
        description="Serve a trained model over HTTP/JSON, logging every request to the database.",
    )
    parser.add_argument("database", help="the database file holding the model (the server becomes its writer)")
    parser.add_argument("--model", required=True, help="model name, or name@version")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0 picks a free one)")
    parser.add_argument("--max-batch", type=int, default=512, help="largest model batch, rows (default: 512)")
    parser.add_argument("--target-ms", type=float, default=25.0, help="model time per batch the batch size adapts to")
    parser.add_argument("--max-wait-ms", type=float, default=0.0, help="longest a request waits for a batch to fill")
    parser.add_argument("--max-queue", type=int, default=4096, help="rows waiting at most before answering 503")
    parser.add_argument("--max-rows", type=int, default=1024, help="inputs per request at most (413 beyond)")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20, help="request body size limit (413 beyond)")
    parser.add_argument("--cache-entries", type=int, default=100_000, help="in-memory answer cache size (0: off)")
    parser.add_argument("--no-batching", action="store_true", help="one request per model call")
    return parser


def serve_main(argv: list[str]) -> int:
    """Entry point of ``sqlml serve``; blocks until SIGINT/SIGTERM; returns the exit status."""
    from sqlml.errors import SqlmlError
    from sqlml.serving.batcher import BatchPolicy
    from sqlml.serving.server import Server, ServerConfig

    args = build_parser().parse_args(argv)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        max_rows=args.max_rows,
        max_body_bytes=args.max_body_bytes,
        cache_entries=args.cache_entries,
    )
    if args.no_batching:
        policy = BatchPolicy.unbatched(max_queue=args.max_queue)
    else:
        policy = BatchPolicy(
            max_batch=args.max_batch, target_ms=args.target_ms, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue
        )
    try:
        server = Server(args.database, args.model, policy=policy, config=config)
    except SqlmlError as error:
        print(f"sqlml serve: {error}", file=sys.stderr)
        return 1

    def listening(server):
        predictor = server.endpoint.predictor
        print(
            f"serving {predictor.model} version {predictor.version} on {server.url} "
            f"(POST /predict, GET /health, GET /metrics); Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )

    server.serve_forever(on_listening=listening)
    print("stopped; every request is in sqlml.serving_requests", file=sys.stderr)
    return 0
