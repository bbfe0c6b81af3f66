"""``canary``: judge a canary against its baseline."""

from __future__ import annotations

import argparse

from releaserisk.choices import CANARY_MODES
from releaserisk.cli._base import add_format, positive_int
from releaserisk.cli.output import emit, github_output
from releaserisk.escape import fenced_block

#: Looks the sequential mode replays a file in when ``--looks`` is not given.
SEQUENTIAL_LOOKS = 12


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


def _load_history(args: argparse.Namespace):
    import pandas as pd

    from releaserisk.canary.data import load_history

    if not args.history:
        return None
    return pd.concat([load_history(path) for path in args.history], ignore_index=True)


def cmd_canary(args: argparse.Namespace) -> int:
    if getattr(args, "canary_command", None) == "plan":
        return cmd_canary_plan(args)
    from releaserisk.canary.config import CanaryConfig, load_canary_config
    from releaserisk.canary.data import one_analysis

    config = load_canary_config(args.canary_config) if args.canary_config else CanaryConfig()
    samples = one_analysis(_load_samples(args), args.analysis)
    history = _load_history(args)
    if (args.mode or config.mode) == "sequential":
        from releaserisk.canary.sequential import sequential_judge

        looks = args.looks or SEQUENTIAL_LOOKS
        result = sequential_judge(samples, config, looks=looks, history=history)
    else:
        from dataclasses import replace

        from releaserisk.canary.judge import judge

        if args.looks:  # the looks planned at this canary: each judges at alpha / looks
            config = replace(config, looks=args.looks)
        result = judge(samples, config, mode=args.mode, history=history)
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


def cmd_canary_plan(args: argparse.Namespace) -> int:
    import pandas as pd

    from releaserisk.canary.config import CanaryConfig, load_canary_config
    from releaserisk.canary.data import load_history
    from releaserisk.canary.plan import plan_canary

    config = load_canary_config(args.canary_config) if args.canary_config else CanaryConfig()
    baseline = pd.concat([load_history(path) for path in args.baseline], ignore_index=True)
    plan = plan_canary(baseline, effect=args.effect, alpha=args.alpha, config=config)
    emit(args, plan.to_dict(), plan.summary())
    return 0


def register(sub) -> None:
    """Add ``canary`` (and ``canary plan``) to the top-level sub-parsers."""
    p = sub.add_parser(
        "canary",
        help="judge a canary against its baseline (exit 0 pass, 1 fail, 3 marginal/no data/continue)",
        description=(
            "Judge a canary: robust (default; paired in time, autocorrelation-aware, history-calibrated "
            "with --history), kayenta (Kayenta's judge, bit-exact) or sequential (anytime-valid). "
            "'canary plan' tells how long a canary must bake."
        ),
    )
    p.add_argument("--config", dest="canary_config", help="canary TOML config")
    p.add_argument("--data", action="append", help="samples with an arm column or label (repeatable)")
    p.add_argument("--baseline", action="append", help="samples of the baseline arm (repeatable)")
    p.add_argument("--canary", action="append", help="samples of the canary arm (repeatable)")
    p.add_argument("--arm-label", default="arm", help="Prometheus label naming the arm (default: arm)")
    p.add_argument("--analysis", help="the analysis to judge, when the samples have an analysis_id column")
    p.add_argument("--assume-tz", help="IANA zone for sample timestamps without one, e.g. Europe/Berlin")
    p.add_argument("--mode", choices=CANARY_MODES, help="judgement mode (default: the config's, else robust)")
    p.add_argument(
        "--looks",
        type=positive_int,
        help=(
            "sequential: looks over the samples' time range (default 12); robust: looks planned at this "
            "canary, each tested at alpha/looks so that calling the judge that often stays at alpha "
            "(default: the config's judge.looks, 1)"
        ),
    )
    p.add_argument(
        "--history",
        action="append",
        help="the metrics' history before the canary (metric, ts, value; arm optional), to calibrate on (repeatable)",
    )
    add_format(p, ("text", "json", "github"))
    p.set_defaults(handler=cmd_canary)
    commands = p.add_subparsers(dest="canary_command", metavar="{plan}")
    plan = commands.add_parser(
        "plan",
        help="bake time per mode to detect an effect with 80%% power",
        description="Samples per arm and minutes each mode needs, from the baseline's variance and autocorrelation.",
    )
    plan.add_argument("--baseline", action="append", required=True, help="baseline samples (metric, ts, value)")
    plan.add_argument("--effect", type=float, default=1.2, help="relative effect to detect (default 1.2)")
    plan.add_argument("--alpha", type=float, default=0.05, help="false-alarm rate (default 0.05)")
    plan.add_argument("--config", dest="canary_config", help="canary TOML config (tolerance, block_size)")
    add_format(plan)
    plan.set_defaults(handler=cmd_canary)
