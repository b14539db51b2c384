"""The ``speechrep`` command. Each subcommand lives in its own module with
``add_arguments(parser)`` and ``run(args) -> int``; this file only wires them up."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("speechrep.cli_list", "list upstreams and pretraining methods"),
    "extract": ("speechrep.extract", "extract hidden states of audio files to .safetensors"),
    "convert": ("speechrep.convert.cli", "convert a checkpoint to speechrep's native format (or back to s3prl)"),
    "synth": ("speechrep.synth.cli", "synthesise a small corpus in a real dataset's layout (espeak-ng)"),
    "pretrain": ("speechrep.pretrain.cli", "pretrain an upstream on a folder of audio"),
    "demo": ("speechrep.demo", "the end-to-end demo run"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechrep", description="Self-supervised speech representations.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if only == name:  # the top-level help needs no command module (nor its imports)
            importlib.import_module(module).add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only=command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        # User errors: one clear line, no traceback.
        print(f"speechrep {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
