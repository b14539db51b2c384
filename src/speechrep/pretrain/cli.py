"""``speechrep pretrain METHOD --data AUDIO_DIR -o EXPDIR [-c CONFIG] [--set key=value ...]
[--resume]``."""

from __future__ import annotations

import argparse
import json
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", help="pretraining method (see `speechrep list`)")
    parser.add_argument(
        "--data",
        required=True,
        help="folder of audio files (searched recursively) or a text file listing one per line",
    )
    parser.add_argument(
        "-o", "--output", required=True, help="experiment directory (created; reused to resume)"
    )
    parser.add_argument(
        "-c",
        "--config",
        help="YAML config file, or a shipped name such as 'tiny' or 'tera_tiny' "
        "(default: the method's s3prl defaults)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.total_steps=1000 (repeatable)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="require a checkpoint in the output directory and continue from it "
        "(re-running the same command continues anyway)",
    )


def run(args: argparse.Namespace) -> int:
    from speechrep.pretrain.run import pretrain

    results = pretrain(
        args.method,
        args.data,
        args.output,
        config=args.config,
        overrides=args.overrides,
        resume=args.resume,
    )
    summary = {
        k: results[k]
        for k in ("method", "steps", "first_loss", "last_loss", "upstream")
        if k in results
    }
    if os.environ.get("RANK", "0") == "0":  # torchrun: one summary, from rank 0
        print(json.dumps(summary))
    return 0
