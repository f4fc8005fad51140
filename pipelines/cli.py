"""`kratom-evidence`: build, list, query and check releases (README.md, The command line).

Errors are one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines import paths

if TYPE_CHECKING:
    from pipelines.build_inputs import Published
    from pipelines.release.datadir import DataDir

EXIT_ERROR = 1


class CliError(RuntimeError):
    """A failure worth one line on stderr."""


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).resolve()


def _outputs(args: argparse.Namespace) -> DataDir:
    """The data dir with the catalog the options name (local `lake/` by default)."""
    from pipelines.release.catalog import split_password
    from pipelines.release.datadir import DataDir

    url, password = split_password(args.catalog) if args.catalog else (None, None)
    if password is not None:
        # libpq reads it from the environment, so the URL passed on (Dagster resource config,
        # messages) never holds it.
        os.environ["PGPASSWORD"] = password
    return DataDir(_data_dir(args), url, args.catalog_data_path)


def _settle(outputs: DataDir) -> str | None:
    """Finish a publish a killed build left half done (see `finish_interrupted`); say if busy."""
    from pipelines.release.datadir import finish_interrupted

    note = finish_interrupted(outputs)
    if note:
        print(f"kratom-evidence: {note}", file=sys.stderr)
    return note


def cmd_build(args: argparse.Namespace) -> int:
    """Materialise every asset from a snapshot and publish a release (pipelines/build.py)."""
    from pipelines import build_inputs, digests
    from pipelines.release import chart_process

    outputs = _outputs(args)
    snapshot_dir = Path(args.snapshot).resolve()
    with ExitStack() as held:
        held.enter_context(digests.read_once())
        # A build that would publish nothing is answered before the build's imports (2 of its
        # 2.6 CPU s); a requested version is always built.
        published = (
            None
            if args.release_version
            else build_inputs.answer(snapshot_dir, outputs, args.workers)
        )
        if published is None:
            # The snapshot is hashed on the second core while the build's code loads, and the
            # report's chart process imports matplotlib there.
            build_inputs.warm(snapshot_dir)
            held.enter_context(chart_process.started_ahead())
            # Loading the build imports about a million objects that live as long as the
            # process: collecting while they pile up frees nothing (see build.collector_paused).
            # Frozen before the collector is back on, else its next young collection walks
            # every one of them (0.13 s of a bundled build's start; build() unfreezes).
            gc.disable()
            try:
                from pipelines.build import build
            finally:
                gc.freeze()
                gc.enable()
            created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            published = build(
                snapshot_dir,
                outputs,
                args.release_version,
                created_at,
                workers=args.workers,
                step_times=args.step_times,
            )
    print(published.message)
    _print_summary(published)
    return 0


def _print_summary(published: Published) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"release {published.version or published.previous}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in published.rows.items():
        table.add_row(name, str(count))
    console = Console()
    console.print(table)
    if published.folder:
        console.print(f"files: {published.folder}")


def cmd_releases(args: argparse.Namespace) -> int:
    """List published versions, newest first."""
    from pipelines.release import catalog

    data_dir = _outputs(args)
    _settle(data_dir)
    if not data_dir.lake.exists():
        print("no release published yet")
        return 0
    try:
        con = catalog.connect(data_dir.lake, read_only=True)
    except catalog.NoCatalogError:
        print("no release published yet")
        return 0
    try:
        releases = catalog.list_releases(con)
    finally:
        con.close()
    for record in releases:
        counts = ", ".join(f"{k}={v}" for k, v in record.rows.items())
        print(f"{record.version}\t{record.created_at}\tsnapshot {record.snapshot_id}\t{counts}")
    if not releases:
        print("no release published yet")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """Run read-only SQL against one release of the catalog."""
    from pipelines.release import catalog

    data_dir = _outputs(args)
    _settle(data_dir)
    if not data_dir.lake.exists():
        raise CliError(f"no catalog in {data_dir.lake_dir}: run `kratom-evidence build` first")
    con = catalog.connect(data_dir.lake, read_only=True)
    record = catalog.snapshot_for(con, args.release_version)
    con.close()
    con = catalog.connect(data_dir.lake, read_only=True, snapshot_version=record.snapshot_id)
    try:
        relation = con.sql(args.sql)
        if relation is None:
            raise CliError("the statement returned no rows to show")
        columns = relation.columns
        rows = relation.fetchall()
    finally:
        con.close()
    _print_rows(columns, rows, args.format)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Per table: rows added, removed and changed between two published versions.

    A version whose folder is not here (another machine published it into a shared catalog)
    is read from the catalog as of its own snapshot.
    """
    from pipelines.release import catalog
    from pipelines.release.datadir import finish_interrupted
    from pipelines.release.diff import (
        CatalogRelease,
        FolderRelease,
        ReleaseTables,
        diff_releases,
        render_summary,
    )

    outputs = _outputs(args)
    busy = finish_interrupted(outputs)  # named in the error below only when a folder is missing
    wanted = [(v, outputs.releases / v) for v in (args.old, args.new)]
    missing = {v for v, folder in wanted if not folder.is_dir()}
    con = (
        catalog.connect(outputs.lake, read_only=True) if missing and outputs.lake.exists() else None
    )
    try:
        published = {r.version: r.snapshot_id for r in catalog.list_releases(con)} if con else {}
        for version, folder in wanted:
            if version in missing and version not in published:
                raise CliError(
                    f"release {version!r} has no folder {folder} yet: {busy}"
                    if busy
                    else f"unknown release version {version!r}: no folder {folder} "
                    "and not in the catalog"
                )
        releases: list[ReleaseTables] = [
            CatalogRelease(con, v, published[v]) if con and v in missing else FolderRelease(f)
            for v, f in wanted
        ]
        diff = diff_releases(*releases)
    finally:
        if con is not None:
            con.close()
    print(json.dumps(diff.to_dict(), indent=2) if args.json else render_summary(diff))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a release folder's checksums and every table against its schema."""
    from pipelines.release.validate import validate_release, verified_counts

    folder = Path(args.release_dir)
    if not folder.is_dir():
        raise CliError(f"{folder}: not a release folder")
    problems = validate_release(folder)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_ERROR
    tables, files = verified_counts(folder)
    print(f"ok: {tables} tables, {files} files verified")
    return 0


def _print_rows(columns: list[str], rows: list[tuple], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, indent=2))
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        Console().print(table)


def _catalog_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--catalog",
        default=None,
        help="postgresql://user@host:port/dbname to keep the catalog in PostgreSQL "
        "(default: DATA/lake/catalog.ducklake)",
    )
    command.add_argument(
        "--catalog-data-path",
        default=None,
        help="folder or object-store URL for the lake's Parquet files (default: DATA/lake/files)",
    )


def cmd_serve_snapshot(args: argparse.Namespace) -> int:
    """Serve a snapshot on 127.0.0.1 with each source's real protocol, optionally faulty."""
    from pipelines.devtools.emulator import make_server
    from pipelines.snapshot import read_info

    snapshot_dir = Path(args.dir).resolve()
    read_info(snapshot_dir)
    server = make_server(
        snapshot_dir,
        port=args.port,
        faults=args.faults,
        seed=args.seed,
        stall_seconds=args.stall_seconds,
        state_ttl=args.state_ttl if args.state_ttl > 0 else None,
    )
    print(server.base_url, flush=True)
    # A process started with SIGTERM ignored (some job runners do) would otherwise outlive
    # the `terminate()` of whoever started it.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def cmd_refresh(args: argparse.Namespace) -> int:
    """Record every live source into a new snapshot, then build and publish from it."""
    from pipelines.refresh import HttpSettings, credentials_from, parse_base_urls, refresh

    creds = credentials_from(os.environ)
    settings = HttpSettings(
        timeout=args.timeout,
        max_tries=args.max_tries,
        backoff_base=args.backoff,
        backoff_cap=max(args.backoff * 60, args.backoff),
        pace=args.pace,
    )
    if args.verbose:
        # Retry notices are INFO: the request log and the progress bar carry them anyway.
        logging.getLogger("kratom_evidence").setLevel(logging.INFO)
    data_dir = _data_dir(args)
    result = refresh(
        data_dir,
        parse_base_urls(args.base_url),
        creds,
        datetime.now(UTC),
        settings=settings,
        show_progress=not args.no_progress,
        since_last=args.since_last,
    )
    for source, outcome in result.outcomes.items():
        for warning in outcome.warnings:
            print(f"kratom-evidence: warning: {source}: {warning}", file=sys.stderr)
    if not result.complete:
        error = result.first_error or "a source stopped"
        raise CliError(f"{error} (snapshot {result.snapshot_dir} left incomplete)")
    for source, note in result.notes.items():
        print(f"kratom-evidence: {source}: {note}", file=sys.stderr)
    for source, stamp in result.carried_from.items():
        reason = result.failed[source]
        print(f"kratom-evidence: {reason}; {source} carried over from {stamp}", file=sys.stderr)
    print(f"recorded snapshot {result.snapshot_dir}")
    build_args = {
        **vars(args),
        "snapshot": str(result.snapshot_dir),
        "release_version": None,
        "workers": None,
        "step_times": None,
    }
    return cmd_build(argparse.Namespace(**build_args))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kratom-evidence", description="Build and query the Kratom Evidence dataset."
    )
    sub = top.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="materialise every asset and publish a release")
    build.add_argument("--snapshot", default=str(paths.BUNDLED_SNAPSHOT))
    build.add_argument("--data-dir", default=str(paths.DEFAULT_DATA_DIR))
    build.add_argument("--release-version", default=None)
    build.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes for raw and staging, a bulk ZIP or ClinicalTrials.gov's pages staged "
        "in that many parts at once (default: one process, which stages on two cores)",
    )
    build.add_argument(
        "--step-times",
        type=Path,
        default=None,
        help="write each Dagster step's start and end (unix seconds) and process id to this "
        "JSON file: where the build spends its time",
    )
    _catalog_options(build)
    build.set_defaults(handler=cmd_build)

    refresh = sub.add_parser("refresh", help="record every live source, then build from it")
    refresh.add_argument("--data-dir", default=str(paths.DEFAULT_DATA_DIR))
    refresh.add_argument("--base-url", action="append", default=[], metavar="SOURCE=URL")
    refresh.add_argument("--since-last", action="store_true")
    refresh.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    refresh.add_argument("--max-tries", type=int, default=6)
    refresh.add_argument("--backoff", type=float, default=1.0, help="back-off base, seconds")
    refresh.add_argument(
        "--pace", type=float, default=1.0, help="factor on minimum intervals (0: local emulator)"
    )
    refresh.add_argument("--no-progress", action="store_true")
    refresh.add_argument(
        "-v", "--verbose", action="store_true", help="also show each retry on stderr"
    )
    _catalog_options(refresh)
    refresh.set_defaults(handler=cmd_refresh)

    serve = sub.add_parser("serve-snapshot", help="serve a snapshot with each source's protocol")
    serve.add_argument("dir")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--faults", type=float, default=0.0)
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument(
        "--stall-seconds", type=float, default=40.0, help="a stall fault; above client timeouts"
    )
    serve.add_argument(
        "--state-ttl",
        type=float,
        default=300.0,
        help="seconds a cursor or PubMed WebEnv lives after it was handed out (0: for ever)",
    )
    serve.set_defaults(handler=cmd_serve_snapshot)

    releases = sub.add_parser("releases", help="list published versions, newest first")
    releases.add_argument("--data-dir", default=str(paths.DEFAULT_DATA_DIR))
    _catalog_options(releases)
    releases.set_defaults(handler=cmd_releases)

    query = sub.add_parser("query", help="run read-only SQL against the release catalog")
    query.add_argument("sql")
    query.add_argument("--release-version", default=None)
    query.add_argument("--data-dir", default=str(paths.DEFAULT_DATA_DIR))
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _catalog_options(query)
    query.set_defaults(handler=cmd_query)

    diff = sub.add_parser("diff", help="rows added, removed, changed per table between versions")
    diff.add_argument("old", metavar="V1")
    diff.add_argument("new", metavar="V2")
    diff.add_argument("--json", action="store_true", help="every key and changed column")
    diff.add_argument("--data-dir", default=str(paths.DEFAULT_DATA_DIR))
    _catalog_options(diff)
    diff.set_defaults(handler=cmd_diff)

    validate = sub.add_parser("validate", help="check a release folder against its manifest")
    validate.add_argument("release_dir", metavar="RELEASE_DIR")
    validate.set_defaults(handler=cmd_validate)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # Dagster's API-stability notices (e.g. its own sensor decorator passing a beta parameter)
    # speak to developers of the code location, not to someone running the command.
    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("kratom-evidence: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from pipelines.release.catalog import mask_secrets

        text = mask_secrets(str(exc)).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        print(f"kratom-evidence: {message}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if argv is None:
            # The command, whose process ends now. The interpreter's exit collects several
            # times over every object still alive: after a build, the million of its
            # libraries' (1.3 s at 20 000 studies). Frozen, they are freed with the process.
            gc.freeze()


if __name__ == "__main__":
    raise SystemExit(main())
