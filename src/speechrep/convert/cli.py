"""``speechrep convert SRC DST``: any supported checkpoint -> speechrep native (or -> s3prl)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="checkpoint file, HuggingFace folder, speechrep folder or pretraining EXPDIR")
    parser.add_argument("dst", help="output folder (speechrep native) or file (--to s3prl)")
    parser.add_argument("--to", choices=("speechrep", "s3prl"), default="speechrep",
                        help="target format (default: speechrep native folder)")
    parser.add_argument("--no-verify", action="store_true", help="skip re-loading the result to check it")


def convert(src: str | Path, dst: str | Path, to: str = "speechrep", verify: bool = True) -> Path:
    """Read ``src`` in any supported format and write it as ``to``; returns the written path.

    With ``verify`` the written copy is loaded again and must give the same weights.
    """
    from speechrep.convert.detect import read_checkpoint
    from speechrep.convert.native import save_native
    from speechrep.upstream.load import build_upstream

    native = read_checkpoint(src)
    model = build_upstream(native)  # proves the weights fit the family before anything is written
    native.state_dict = model.state_dict()
    native.config = model.native_config()
    if to == "speechrep":
        out = save_native(native, dst)
    else:
        from speechrep.convert.s3prl_export import export_s3prl

        out = Path(export_s3prl(native, dst))
    if verify:
        _verify(model, read_checkpoint(out), out)
    return out


def _verify(model, reread, out: Path) -> None:
    import torch

    from speechrep.upstream.load import build_upstream

    again = build_upstream(reread).state_dict()
    for key, value in model.state_dict().items():
        if not torch.equal(value, again[key]):
            raise RuntimeError(f"{out}: converted copy differs from the source at '{key}'")


def run(args: argparse.Namespace) -> int:
    out = convert(args.src, args.dst, to=args.to, verify=not args.no_verify)
    print(f"wrote {out}")
    return 0
