"""The `iris-prompt` command."""

import argparse
import sys

from iris_prompt import codeset_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iris-prompt", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    codeset_cli.add_parser(subparsers)
    args = parser.parse_args(argv)
    if args.command == "codesets":
        return codeset_cli.run(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
