"""``python -m gates``: list and run gates, approve data, check the policy. The only module that exits.

Exit codes: 0 passed; 1 a gate failed; 2 usage or configuration error, or a gate that could
not run; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gates.base import GateError
from gates.registry import GATES, VERDICT

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--policy",
        type=Path,
        default=Path("policy.toml"),
        help="policy file (default: policy.toml)",
    )
    common.add_argument(
        "--reports",
        type=Path,
        default=None,
        help="report folder (default: policy [run].reports_dir)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m gates",
        description="Run the policy gates that stand between data and a trusted model.",
        epilog="Exit codes: 0 passed, 1 a gate failed, 2 usage/configuration error or a gate "
        "that could not run, 130 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", parents=[common], help="list the gates in registry order")
    run = sub.add_parser("run", parents=[common], help="run gates in registry order (default: all)")
    run.add_argument("gates", nargs="*", metavar="GATE", help="gates to run (default: all)")
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="run every gate even when a cached outcome matches (also: GATES_NO_CACHE=1)",
    )

    data = sub.add_parser("data", help="manage the approved data snapshot")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    data_sub.add_parser(
        "approve", parents=[common], help="check the data against the contract and rewrite its lock"
    )
    data_sub.add_parser("verify", parents=[common], help="check the data against its lock")

    policy = sub.add_parser("policy", help="validate policy.toml or render its JSON Schema")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    policy_sub.add_parser("check", parents=[common], help="validate the policy file")
    schema = policy_sub.add_parser("schema", parents=[common], help="print the JSON Schema")
    mode = schema.add_mutually_exclusive_group()
    mode.add_argument("--write", type=Path, metavar="FILE", help="write the schema to FILE")
    mode.add_argument(
        "--check", type=Path, metavar="FILE", help="exit 1 when FILE differs from the schema"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, dispatch, and map every outcome to an exit code."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except GateError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    except Exception as err:
        from pipeline.errors import PipelineError  # noqa: PLC0415 - keeps `list` import-light

        if isinstance(err, PipelineError):
            sys.stderr.write(f"error: {err}\n")
            return EXIT_USAGE
        raise


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "list":
        for number, spec in enumerate(GATES, start=1):
            sys.stdout.write(f"{number}. {spec.name:<10} {spec.summary}\n")
        return EXIT_OK
    if args.command == "policy" and args.policy_command == "schema":
        return _schema(args)

    from pipeline.config import load_policy  # noqa: PLC0415 - heavy imports only past `list`

    loaded = load_policy(args.policy)
    if args.command == "policy":
        sys.stdout.write(f"{args.policy}: valid (sha256 {loaded.sha256})\n")
        return EXIT_OK
    if args.command == "data":
        from gates import approve  # noqa: PLC0415

        if args.data_command == "approve":
            return approve.approve(loaded, out=sys.stdout)
        return approve.verify(loaded, out=sys.stdout)

    from gates.cache import disabled_by_env  # noqa: PLC0415
    from gates.runner import run_chain  # noqa: PLC0415

    reports = args.reports or loaded.resolve(loaded.policy.run.reports_dir)
    summary = run_chain(
        args.gates,
        policy=loaded,
        reports_dir=reports,
        use_cache=True,
        read_cache=not (args.no_cache or disabled_by_env()),
    )
    code = summary.exit_code
    if any(r.gate == VERDICT.name for r in summary.results):
        word = {EXIT_OK: "PASSED", EXIT_FAILED: "FAILED"}.get(code, "ERRORED")
        sys.stdout.write(f"verdict: {word} (run {summary.run_id}, reports in {reports})\n")
    elif code != EXIT_OK:
        stopped = ", ".join(r.gate for r in summary.results if not r)
        sys.stdout.write(
            f"stopped: {stopped} did not pass; later gates refuse to run until it does "
            f"(run {summary.run_id})\n"
        )
    return code


def _schema(args: argparse.Namespace) -> int:
    from pipeline.config import render_policy_schema  # noqa: PLC0415
    from pipeline.fsio import atomic_write_text  # noqa: PLC0415

    text = render_policy_schema()
    if args.write:
        atomic_write_text(args.write, text)
        sys.stdout.write(f"wrote {args.write}\n")
        return EXIT_OK
    if args.check:
        try:
            current = args.check.read_text(encoding="utf-8")
        except FileNotFoundError:
            sys.stderr.write(f"error: {args.check}: not found\n")
            return EXIT_USAGE
        if current != text:
            sys.stdout.write(
                f"{args.check} differs from the policy models; regenerate it with "
                f"python -m gates policy schema --write {args.check}\n"
            )
            return EXIT_FAILED
        sys.stdout.write(f"{args.check} is up to date\n")
        return EXIT_OK
    sys.stdout.write(text)
    return EXIT_OK
