"""`iris-prompt store upgrade|purge` and `iris-prompt report`, with the service's settings.

iris-prompt store upgrade          # apply migrations (IRIS_DATABASE_URL, or the SQLite file)
iris-prompt store purge            # delete what is past retention; says how much
iris-prompt report --since 2026-01-01 --by category [--json | --csv]

Purge and report run only on a store at this release's schema, and never make one; upgrade
(and `serve`) make the embedded store. The store's modules load when a command runs, not with
the command line: `iris-prompt serve` and the other commands start without the database
toolkit.
"""

import argparse
import csv
import datetime
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from iris_prompt.store.report_query import GROUPINGS, parse_day

__all__ = ["add_parsers", "render_csv", "render_text"]


def _say(command: str, message: str) -> None:
    print(f"iris-prompt {command}: {message}", file=sys.stderr)  # noqa: T201


class _Refused(Exception):
    """The command cannot go on; why has been said on stderr."""


def _engine(command: str, *, make: bool) -> Any:
    """The store's engine and configuration from the settings. Refused, said why, when the
    settings are, when IRIS_DATABASE_URL cannot be opened, or when the embedded store does not
    exist, or is an empty file, and `make` is not set (a command that only reads or deletes
    leaves no store behind, and changes no file that is not one)."""
    from iris_prompt.settings import Settings, refusal
    from iris_prompt.store.database import (
        SQLITE_FILE,
        SchemaState,
        StoreError,
        head,
        make_engine,
        open_engine,
        sqlite_url,
    )
    from iris_prompt.store.service import store_config

    try:
        config = store_config(Settings())
    except ValueError as error:  # pydantic's ValidationError is one
        _say(command, f"the settings are refused: {refusal(error)}")
        raise _Refused from None
    if config.database_url is not None:
        try:
            return open_engine(config.database_url), config
        except StoreError as error:
            _say(command, str(error))
            raise _Refused from None
    if not make:
        # A 0-byte file (a `touch`, a failed copy) is no store either; opened, SQLite would
        # write its journal mode into it before the schema check refused the command.
        path = config.data_dir / SQLITE_FILE
        where = None if path.exists() else f"looked in {config.data_dir}"
        if where is None and path.is_file() and path.stat().st_size == 0:
            where = f"{path} is empty"
        if where is not None:
            _say(command, SchemaState(None, head()).mismatch() + f" first ({where})")
            raise _Refused
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _say(command, f"{config.data_dir} (IRIS_DATA_DIR) cannot be made: {error.strerror}")
        raise _Refused from None
    return make_engine(sqlite_url(config.data_dir)), config


def _refusal(engine: Any, error: Exception) -> str:
    """What a database error may say. SQLite's own words (a read-only file, a full disk) name
    a file at most; a server's may name the server and the user (a connection lost mid-run),
    so for PostgreSQL only the error's type and SQLSTATE."""
    original = getattr(error, "orig", None)
    if engine.dialect.name == "sqlite" and original is not None:
        return str(original) or type(original).__name__
    state = getattr(original, "sqlstate", None)
    return type(error).__name__ + (f" (SQLSTATE {state})" if state else "")


@contextmanager
def _store(command: str, *, make: bool = False, ready: bool = True) -> Iterator[Any]:
    """(engine, config) for a store command, the engine disposed of after. The database must
    answer, and unless `ready` is off have this release's schema; a database or store error
    on the way is said on stderr (the error, never the URL) and refuses the command."""
    from sqlalchemy.exc import SQLAlchemyError

    from iris_prompt.store.database import StoreError, schema_state

    engine, config = _engine(command, make=make)
    try:
        try:
            with engine.connect():
                pass
        except SQLAlchemyError as error:
            # The error's type only: a driver's connection error may name the server and user.
            _say(command, f"the store's database cannot be reached ({type(error).__name__})")
            raise _Refused from None
        state = schema_state(engine)
        if ready and not state.ok:
            _say(command, state.mismatch() + (" first" if state.behind else ""))
            raise _Refused
        yield engine, config
    except SQLAlchemyError as error:
        _say(command, f"the store's database refused: {_refusal(engine, error)}")
        raise _Refused from None
    except StoreError as error:
        _say(command, str(error))
        raise _Refused from None
    finally:
        engine.dispose()


def run_upgrade(_args: argparse.Namespace) -> int:
    from iris_prompt.store.database import upgrade

    try:
        with _store("store upgrade", make=True, ready=False) as (engine, _config):
            state = upgrade(engine)
    except _Refused:
        return 2
    print(f"store schema at {state.current} (head {state.head})")  # noqa: T201
    return 0


def run_purge(_args: argparse.Namespace) -> int:
    from iris_prompt.register.retention import purge_ended
    from iris_prompt.store.retention import purge

    now = datetime.datetime.now(datetime.UTC)
    try:
        with _store("store purge") as (engine, config):
            policy = config.retention
            kept_for = {
                "audit": policy.audit_days,
                "feedback": policy.feedback_days,
                "call_log": policy.call_log_days,
                "issued_card": policy.call_log_days,
            }
            counts = purge(engine, policy, now)
            for kind, count in counts.items():
                print(f"{kind}: {count} deleted (older than {kept_for[kind]} days)")  # noqa: T201
            days = policy.register_days
            if days is None:
                print("register: every flag kept (IRIS_RETENTION_REGISTER_DAYS is not set)")  # noqa: T201
            else:
                ended = purge_ended(engine, days, now)
                print(f"register: {ended} ended flags deleted (unchanged for over {days} days)")  # noqa: T201
    except _Refused:
        return 2
    return 0


def render_text(figures: dict[str, Any]) -> str:
    lines = [f"period: {figures['since'] or '-'} to {figures['until'] or '-'}"]
    for name, group in figures["groups"].items():
        lines.append(f"\n[{name}]")
        for key, value in group.items():
            lines.append(f"  {key}: {value}")
    lines.append(f"\nfeedback on cards this service never issued: {figures['feedback_unmatched']}")
    return "\n".join(lines) + "\n"


def render_csv(figures: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["group", "figure", "value"])
    for name, group in figures["groups"].items():
        for key, value in group.items():
            if isinstance(value, dict):
                for sub, number in value.items():
                    writer.writerow([name, f"{key}.{sub}", number])
            else:
                writer.writerow([name, key, value])
    writer.writerow(["", "feedback_unmatched", figures["feedback_unmatched"]])
    return out.getvalue()


def run_report(args: argparse.Namespace) -> int:
    bounds: dict[str, datetime.datetime | None] = {}
    for option in ("since", "until"):
        given = getattr(args, option)
        try:
            bounds[option] = parse_day(given) if given else None
        except ValueError as error:
            said = f"--{option} {given!r} is not a date (YYYY-MM-DD) or a dateTime with a time zone"
            print(f"iris-prompt report: {said}: {error}", file=sys.stderr)  # noqa: T201
            return 2
    from iris_prompt.store.analytics import report

    try:
        with _store("report") as (engine, _config):
            figures = report(engine, since=bounds["since"], until=bounds["until"], by=args.by)
    except _Refused:
        return 2
    if args.json:
        sys.stdout.write(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.csv:
        sys.stdout.write(render_csv(figures))
    else:
        sys.stdout.write(render_text(figures))
    return 0


def add_parsers(commands: Any) -> None:
    store = commands.add_parser("store", help="the durable store: migrations and retention")
    actions = store.add_subparsers(dest="store_command", required=True)
    actions.add_parser("upgrade", help="apply the store's migrations").set_defaults(
        func=run_upgrade
    )
    actions.add_parser("purge", help="delete records past their retention").set_defaults(
        func=run_purge
    )
    rep = commands.add_parser("report", help="analytics for leads from the store")
    rep.add_argument("--since", help="from this date (YYYY-MM-DD), inclusive")
    rep.add_argument("--until", help="to this date (YYYY-MM-DD), exclusive")
    rep.add_argument("--by", choices=GROUPINGS, help="group the figures")
    form = rep.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="JSON")
    form.add_argument("--csv", action="store_true", help="CSV")
    rep.set_defaults(func=run_report)
