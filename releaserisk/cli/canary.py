"""``canary``: judge a canary against its baseline."""

from __future__ import annotations

import argparse

from releaserisk.choices import CANARY_MODES
from releaserisk.cli._base import add_format
from releaserisk.cli.output import emit, github_output
from releaserisk.escape import fenced_block


def _load_samples(args: argparse.Namespace):
    import pandas as pd

    from releaserisk.canary.data import load_samples
    from releaserisk.errors import InputError

    given = {"arm_label": args.arm_label, "assume_tz": args.assume_tz}
    frames = [load_samples(path, **given) for path in args.data or []]
    frames += [load_samples(path, arm="baseline", **given) for path in args.baseline or []]
    frames += [load_samples(path, arm="canary", **given) for path in args.canary or []]
    if not frames:
        raise InputError("give samples with --data FILE, or --baseline FILE and --canary FILE")
    return pd.concat(frames, ignore_index=True)


def cmd_canary(args: argparse.Namespace) -> int:
    from releaserisk.canary.config import CanaryConfig, load_canary_config
    from releaserisk.canary.data import one_analysis

    config = load_canary_config(args.canary_config) if args.canary_config else CanaryConfig()
    samples = one_analysis(_load_samples(args), args.analysis)
    if args.mode == "sequential":
        from releaserisk.canary.sequential import sequential_judge

        result = sequential_judge(samples, config, looks=args.looks)
        outcome = result.decision
    else:
        from releaserisk.canary.judge import judge

        result = judge(samples, config)
        outcome = result.verdict
    if args.format == "github":
        level = {0: "notice", 1: "error"}.get(result.exit_code, "warning")
        github_output(
            f"### releaserisk canary: {outcome}\n\n{fenced_block(result.summary())}",
            [(level, f"canary {outcome}: {result.reason}")],
        )
    else:
        emit(args, result.to_dict(), result.summary())
    return result.exit_code


def register(sub) -> None:
    """Add ``canary`` to the top-level sub-parsers."""
    p = sub.add_parser(
        "canary",
        help="judge a canary against its baseline (exit 0 pass, 1 fail, 3 marginal/continue)",
        description="Fixed-horizon Kayenta-compatible judge, or anytime-valid sequential monitoring.",
    )
    p.add_argument("--config", dest="canary_config", help="canary TOML config")
    p.add_argument("--data", action="append", help="samples with an arm column or label (repeatable)")
    p.add_argument("--baseline", action="append", help="samples of the baseline arm (repeatable)")
    p.add_argument("--canary", action="append", help="samples of the canary arm (repeatable)")
    p.add_argument("--arm-label", default="arm", help="Prometheus label naming the arm (default: arm)")
    p.add_argument("--analysis", help="the analysis to judge, when the samples have an analysis_id column")
    p.add_argument("--assume-tz", help="IANA zone for sample timestamps without one, e.g. Europe/Berlin")
    p.add_argument("--mode", choices=CANARY_MODES, default=CANARY_MODES[0])
    p.add_argument("--looks", type=int, default=12, help="sequential mode: looks over the time range (default 12)")
    add_format(p, ("text", "json", "github"))
    p.set_defaults(handler=cmd_canary)
