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
from typing import Any

import orjson

from iris_prompt.store.report_query import GROUPINGS, parse_day

__all__ = ["add_parsers", "render_csv", "render_text"]


def _say(command: str, message: str) -> None:
    print(f"iris-prompt {command}: {message}", file=sys.stderr)  # noqa: T201


def _engine(command: str, *, make: bool = False) -> Any:
    """The store's engine and configuration from the settings; None, said why on stderr, when
    the settings are refused, or when the embedded store does not exist and `make` is not set
    (a command that only reads or deletes leaves no empty store behind)."""
    from sqlalchemy.exc import SQLAlchemyError

    from iris_prompt.settings import Settings, refusal
    from iris_prompt.store.database import SQLITE_FILE, SchemaState, head, make_engine, sqlite_url
    from iris_prompt.store.service import store_config

    try:
        config = store_config(Settings())
    except ValueError as error:  # pydantic's ValidationError is one
        _say(command, f"the settings are refused: {refusal(error)}")
        return None
    if config.database_url is None:
        if not make and not (config.data_dir / SQLITE_FILE).exists():
            _say(command, SchemaState(None, head()).mismatch() + " first")
            return None
        config.data_dir.mkdir(parents=True, exist_ok=True)
        return make_engine(sqlite_url(config.data_dir)), config
    try:
        return make_engine(config.database_url), config
    except (SQLAlchemyError, ValueError) as error:  # a malformed URL, or an unknown driver
        _say(command, f"IRIS_DATABASE_URL is not a usable database URL ({type(error).__name__})")
        return None


def _reachable(command: str, engine: Any) -> bool:
    """Whether the store's database answers; said why on stderr when not (the error's type
    only: its text may hold the URL)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect():
            return True
    except SQLAlchemyError as error:
        _say(command, f"the store's database cannot be reached ({type(error).__name__})")
        return False


def _ready(command: str, engine: Any) -> bool:
    """Whether the store's database answers with the schema this release reads and writes;
    said why on stderr when not, with what to run."""
    from iris_prompt.store.database import schema_state

    if not _reachable(command, engine):
        return False
    state = schema_state(engine)
    if not state.ok:
        _say(command, state.mismatch() + (" first" if state.behind else ""))
    return state.ok


def run_upgrade(_args: argparse.Namespace) -> int:
    from iris_prompt.store.database import upgrade

    opened = _engine("store upgrade", make=True)
    if opened is None:
        return 2
    engine, _config = opened
    try:
        if not _reachable("store upgrade", engine):
            return 2
        state = upgrade(engine)
    finally:
        engine.dispose()
    print(f"store schema at {state.current} (head {state.head})")  # noqa: T201
    return 0


def run_purge(_args: argparse.Namespace) -> int:
    from iris_prompt.register.retention import purge_ended
    from iris_prompt.store.retention import purge

    opened = _engine("store purge")
    if opened is None:
        return 2
    engine, config = opened
    policy = config.retention
    now = datetime.datetime.now(datetime.UTC)
    kept_for = {
        "audit": policy.audit_days,
        "feedback": policy.feedback_days,
        "call_log": policy.call_log_days,
        "issued_card": policy.call_log_days,
    }
    try:
        if not _ready("store purge", engine):
            return 2
        counts = purge(engine, policy, now)
        for kind, count in counts.items():
            print(f"{kind}: {count} deleted (older than {kept_for[kind]} days)")  # noqa: T201
        days = policy.register_days
        if days is None:
            print("register: every flag kept (IRIS_RETENTION_REGISTER_DAYS is not set)")  # noqa: T201
        else:
            ended = purge_ended(engine, days, now)
            print(f"register: {ended} ended flags deleted (unchanged for over {days} days)")  # noqa: T201
    finally:
        engine.dispose()
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
    try:
        since = parse_day(args.since) if args.since else None
        until = parse_day(args.until) if args.until else None
    except ValueError as error:
        print(f"iris-prompt report: {error}", file=sys.stderr)  # noqa: T201
        return 2
    from iris_prompt.store.analytics import report

    opened = _engine("report")
    if opened is None:
        return 2
    engine, _config = opened
    try:
        if not _ready("report", engine):
            return 2
        figures = report(engine, since=since, until=until, by=args.by)
    finally:
        engine.dispose()
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
