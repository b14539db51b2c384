"""``speechrep list``: the registry as a table."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--family", help="only this family")


def format_size(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size / 2**20:.0f} MiB" if size >= 2**20 else f"{size} B"


def run(args: argparse.Namespace) -> int:
    from speechrep.upstream.registry import UPSTREAMS

    rows = [("name", "family", "layers", "dim", "size", "description")]
    for info in UPSTREAMS.values():
        if args.family and info.family != args.family:
            continue
        rows.append((info.name, info.family, str(info.num_layers or "?"), str(info.hidden_size or "?"),
                     format_size(info.size_bytes) if info.url else "no weights", info.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    try:
        from speechrep.pretrain.methods import METHODS
    except ImportError:
        return 0
    print("\npretraining methods: " + ", ".join(sorted(METHODS)))
    return 0
