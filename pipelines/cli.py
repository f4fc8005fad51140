"""`kratom-evidence`: build, list, query and check releases (CONTRACT §2).

Errors are one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pipelines import paths

EXIT_ERROR = 1


class CliError(RuntimeError):
    """A failure worth one line on stderr."""


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).resolve()


def cmd_build(args: argparse.Namespace) -> int:
    """Materialise every asset from a snapshot and publish a release."""
    import dagster as dg

    from pipelines.definitions import make_definitions
    from pipelines.release.publish import DataDir
    from pipelines.snapshot import read_info

    snapshot_dir = Path(args.snapshot).resolve()
    read_info(snapshot_dir)
    data_dir = _data_dir(args)
    data_dir.mkdir(parents=True, exist_ok=True)
    created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    defs = make_definitions(
        str(snapshot_dir), str(data_dir), args.release_version, created_at=created_at
    )
    job = defs.resolve_job_def("build")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    if not result.success:
        raise CliError(_first_failure(result))
    published = [
        m
        for m in result.asset_materializations_for_node(result.dagster_run.job_name)
        if m.asset_key.path == ["release", "published"]
    ] or [
        e.event_specific_data.materialization  # type: ignore[union-attr]
        for e in result.all_events
        if e.is_step_materialization
        and e.event_specific_data.materialization.asset_key.path  # type: ignore[union-attr]
        == ["release", "published"]
    ]
    metadata = published[-1].metadata
    print(metadata["message"].value)
    _print_summary(DataDir(data_dir), metadata)
    return 0


def _first_failure(result: object) -> str:
    for event in result.all_events:  # type: ignore[attr-defined]
        if event.is_step_failure:
            error = event.step_failure_data.error
            cause = error
            while cause.cause is not None:
                cause = cause.cause
            lines = [line for line in cause.message.strip().splitlines() if line.strip()]
            return f"build failed in {event.step_key}: {lines[0] if lines else cause.cls_name}"
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                return f"check {evaluation.check_name} failed: {evaluation.metadata}"
    return "build failed"


def _print_summary(data_dir: object, metadata: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = metadata["rows"].value
    table = Table(
        title=f"release {metadata['version'].value or metadata['previous_version'].value}"
    )
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in rows.items():
        table.add_row(name, str(count))
    console = Console()
    console.print(table)
    if metadata["folder"].value:
        console.print(f"files: {metadata['folder'].value}")


def cmd_releases(args: argparse.Namespace) -> int:
    """List published versions, newest first."""
    from pipelines.release import catalog
    from pipelines.release.publish import DataDir

    data_dir = DataDir(_data_dir(args))
    if not data_dir.lake.exists():
        print("no release published yet")
        return 0
    con = catalog.connect(data_dir.lake, read_only=True)
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
    from pipelines.release.publish import DataDir

    data_dir = DataDir(_data_dir(args))
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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kratom-evidence", description="Build and query the Kratom Evidence dataset."
    )
    sub = top.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="materialise every asset and publish a release")
    build.add_argument("--snapshot", default=str(paths.BUNDLED_SNAPSHOT))
    build.add_argument("--data-dir", default=str(paths.DEFAULT_DATA_DIR))
    build.add_argument("--release-version", default=None)
    build.set_defaults(handler=cmd_build)

    releases = sub.add_parser("releases", help="list published versions, newest first")
    releases.add_argument("--data-dir", default=str(paths.DEFAULT_DATA_DIR))
    releases.set_defaults(handler=cmd_releases)

    query = sub.add_parser("query", help="run read-only SQL against the release catalog")
    query.add_argument("sql")
    query.add_argument("--release-version", default=None)
    query.add_argument("--data-dir", default=str(paths.DEFAULT_DATA_DIR))
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.set_defaults(handler=cmd_query)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("kratom-evidence: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"kratom-evidence: {message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
