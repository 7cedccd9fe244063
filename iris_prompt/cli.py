"""The `iris-prompt` command.

iris-prompt serve                 # 127.0.0.1:8000, callers must present a trusted JWT
iris-prompt serve --local         # development only: no caller JWT, loopback only
iris-prompt codesets validate     # what ICB safeguarding leads use (codesets/README.md)
iris-prompt demo                  # send a realistic patient-view to a running service
iris-prompt simulate POPULATION   # the prompts code sets would give (docs/simulation.md)
iris-prompt store upgrade|purge   # the store's migrations and retention (docs/store.md)
iris-prompt report                # analytics for leads from the store

Each command loads what it needs when it runs: `--help`, and a `serve` whose settings are
refused, answer without loading the service.
"""

import argparse
import logging
import logging.config
import sys
from typing import Any

from iris_prompt.codesets import cli as codeset_cli
from iris_prompt.simulate import cli as simulate
from iris_prompt.store import cli as store_cli

__all__ = ["main"]


def serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from iris_prompt.settings import Settings, refuse_unsafe_start

    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.local:
        overrides["local_mode"] = True
    try:
        settings = Settings(**overrides)
        refuse_unsafe_start(settings)
    except (ValidationError, ValueError) as error:
        return _cannot_start(error)
    # Settings refused above cost no more than loading the settings; the service's own modules
    # load from here on.
    from iris_prompt.ops import workers
    from iris_prompt.ops.logs import logging_config
    from iris_prompt.store.database import StoreError

    try:
        config = logging_config(settings.log_level, settings.log_format)
        logging.config.dictConfig(config)
        workers.run(settings, overrides, config)
    except (ValidationError, ValueError, StoreError) as error:
        return _cannot_start(error)
    return 0


def _cannot_start(error: Exception) -> int:
    from iris_prompt.settings import refusal

    said = refusal(error) if isinstance(error, ValueError) else str(error)
    print(f"iris-prompt: cannot start: {said}", file=sys.stderr)  # noqa: T201
    return 2


def demo(args: argparse.Namespace) -> int:
    from iris_prompt import demo as demo_call

    status, text = demo_call.main(args.url)
    print(text, file=sys.stdout if status == 0 else sys.stderr)  # noqa: T201
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iris-prompt", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the CDS Hooks services")
    run.add_argument("--host", help="address to bind (default 127.0.0.1, or IRIS_HOST)")
    run.add_argument("--port", type=int, help="port (default 8000, or IRIS_PORT)")
    run.add_argument(
        "--workers",
        type=int,
        help="worker processes (default 1, or IRIS_WORKERS); more than one needs IRIS_REDIS_URL",
    )
    run.add_argument(
        "--local",
        action="store_true",
        help="development only: accept calls without a caller JWT (refused unless on loopback)",
    )
    run.set_defaults(func=serve)
    show = commands.add_parser(
        "demo", help="send a realistic patient-view to a running service and print the cards"
    )
    show.add_argument(
        "--url", default="http://127.0.0.1:8000", help="the service (default: make serve's)"
    )
    show.set_defaults(func=demo)
    codeset_cli.add_parser(commands)
    commands.choices["codesets"].set_defaults(func=codeset_cli.run)
    simulate.add_parser(commands)
    store_cli.add_parsers(commands)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
