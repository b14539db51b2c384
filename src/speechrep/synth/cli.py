"""``speechrep synth CORPUS -o DIR [--size tiny|small] [--seed N] [--force]``."""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from speechrep.synth import CORPORA, describe

    listing = "\n".join(f"  {name:<24}{describe(name)}" for name in CORPORA)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        f"corpora:\n{listing}\n\n"
        "Speech is synthesised with espeak-ng (apt-get install espeak-ng). The corpora are for\n"
        "smoke tests and demos, not research numbers. Same corpus, size and seed give\n"
        "byte-identical files."
    )
    parser.add_argument(
        "corpus",
        choices=sorted(CORPORA),
        metavar="CORPUS",
        help="which corpus layout to write (listed below)",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="corpus root to create (must be new or empty)",
    )
    parser.add_argument(
        "--size",
        choices=("tiny", "small"),
        default="tiny",
        help="tiny: seconds, for tests; small: enough to show learning (default tiny)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--force", action="store_true", help="replace DIR if it exists and is not empty"
    )


def run(args: argparse.Namespace) -> int:
    from speechrep.synth import synthesize

    start = time.perf_counter()
    root = synthesize(
        args.corpus, args.output, size=args.size, seed=args.seed, force=args.force, progress=True
    )
    print(
        f"wrote {args.corpus} ({args.size}, seed {args.seed}) to {root} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0
