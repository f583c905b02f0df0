"""``python -m gates``: list and run gates, approve data, check the policy. The only module that exits.

Exit codes: 0 passed; 1 a gate failed; 2 usage or configuration error, or a gate that could
not run; 130 interrupted.
"""

from __future__ import annotations

import argparse
import functools
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gates.errors import GatesError
from gates.registry import GATES, VERDICT

if TYPE_CHECKING:
    from pipeline.config import LoadedPolicy

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@functools.cache
def _parser() -> argparse.ArgumentParser:
    # Built once per process: the warm worker parses every gate session's command with it.
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
        "--json",
        action="store_true",
        help="print the run's results as JSON on stdout; progress and logs go to stderr",
    )
    run.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help="progress/log lines as text (default) or JSON objects (env GATES_LOG_FORMAT)",
    )

    hist = sub.add_parser("history", help="inspect and verify the hash-chained run history")
    hist_sub = hist.add_subparsers(dest="history_command", required=True, metavar="ACTION")
    verify = hist_sub.add_parser(
        "verify", parents=[common], help="detect edited, deleted, reordered or truncated records"
    )
    verify.add_argument(
        "--expect-head", metavar="SHA256", help="also require this head hash (from an attestation)"
    )
    hist_sub.add_parser("head", parents=[common], help="print the head hash of the history")
    show = hist_sub.add_parser("show", parents=[common], help="list the most recent runs")
    show.add_argument("-n", type=int, default=10, metavar="N", help="how many runs (default 10)")

    feedback = sub.add_parser("feedback", help="quarantine and approve production feedback")
    fb_sub = feedback.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    ingest = fb_sub.add_parser(
        "ingest", parents=[common], help="check a CSV of labelled outcomes into quarantine"
    )
    ingest.add_argument("file", type=Path, metavar="FILE.csv")
    fb_sub.add_parser("list", parents=[common], help="list quarantined batches")
    approve_batch = fb_sub.add_parser(
        "approve", parents=[common], help="append a clean batch to the training data and re-lock"
    )
    approve_batch.add_argument("batch", metavar="BATCH")
    approve_batch.add_argument(
        "--by", default=None, help="who approves (default: $USER); recorded in the batch"
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="run every gate even when a cached outcome matches (also: GATES_NO_CACHE=1)",
    )
    run.add_argument(
        "--rerun-from",
        metavar="GATE",
        default=None,
        help="run GATE and every later gate even on a cache hit; earlier gates may be reused",
    )

    data = sub.add_parser(
        "data",
        help="manage the approved data snapshot",
        description=_wrapped(
            "The data gate trusts the data file ([data].path) through its lock "
            "([data].lock: SHA-256, row digests, the reference profile, a serial) and, with "
            "[roles].approvers, an approver's signature beside it. After any change to the data, "
            "run data approve and commit the data, the lock, its approval and the checksums file."
        ),
        epilog=_DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    approve_cmd = data_sub.add_parser(
        "approve",
        parents=[common],
        help="check the data against the contract, profile it and rewrite its lock",
        description=_wrapped(
            "Check the data against the contract, profile it, rewrite its lock (with a "
            "new serial) and its line of the checksums file, and say what "
            "changed: rows added, removed and changed, drift, and whether the data gate will fail "
            "on the new or changed rows (DATA100-DATA109). With [roles].approvers, sign the lock "
            "with the private key (its PEM text) in $GATES_APPROVER_KEY ([roles].approver_key_env) "
            "into <lock stem>.approval.json. With $GATES_BASE_POLICY (the base branch's "
            "policy.toml) or $GATES_APPROVED_LOCK set, its lock is the one approved over, as the "
            "data gate checks on a pull request; else the lock on disk. Exit 1, the lock "
            "unchanged, when the contract is broken or the key is not an approver's."
        ),
        epilog=_DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    approve_cmd.add_argument(
        "--rebaseline",
        action="store_true",
        help="make this snapshot the reference profile that drift and range are measured against",
    )
    data_sub.add_parser(
        "verify",
        parents=[common],
        help="check the data against its lock",
        description="Compare the data file with its lock and the checksums file and, with "
        "[roles].approvers, the lock with its approval (against the base branch's lock when "
        "$GATES_BASE_POLICY or $GATES_APPROVED_LOCK is set): the data gate's DATA001-DATA003, "
        "without the contract or the screen. Exit 0 when they match, 1 when not.",
    )

    _add_policy_parser(sub, common)
    verify = sub.add_parser(
        "verify",
        parents=[common],
        help="verify the signed attestation against the bytes on disk (exit 1 when refused)",
    )
    verify.add_argument(
        "--key", type=Path, default=None, help="trusted public key (default: [release].public_key)"
    )
    target = verify.add_mutually_exclusive_group()
    target.add_argument(
        "--envelope",
        type=Path,
        default=None,
        help="DSSE envelope (default: <artifacts_dir>/attestation.intoto.json)",
    )
    target.add_argument(
        "--champion",
        action="store_true",
        help="verify the registry's current champion instead of this run's artifacts",
    )
    sub.add_parser(
        "deploy",
        parents=[common],
        help="verify with the committed release key, require the verdict, promote to champion",
    )
    _add_key_parsers(sub, common)

    _add_serve_parser(sub)
    _add_ci_parser(sub)
    _add_init_parser(sub)
    return parser


_DATA_EPILOG = """\
everyday changes (docs/own-data.md, "Changing the data"):
  rows added, a label corrected  data approve, then python -m gates run (the new and
                                 changed rows are screened against the approved ones)
  rows dropped                   the same; beyond [data.checks.batch].max_dropped of the
                                 approved rows beside new rows, DATA109: drop them apart
  the snapshot replaced          the same, with [data.checks.batch].enabled = false in the
                                 policy for that change (DATA109 otherwise)
  the base branch moved on       merge it in, take its lock and approval, approve again (DATA003)

environment:
  GATES_APPROVER_KEY   an approver's private key, its PEM text ([roles].approver_key_env)
  GATES_BASE_POLICY    the base branch's policy.toml: its approvers and approved lock
  GATES_APPROVED_LOCK  the approved lock itself (wins over GATES_BASE_POLICY's)
"""


def _wrapped(text: str) -> str:
    """A description as argparse's default formatter would wrap it (for a raw epilog)."""
    return textwrap.fill(text, width=79)


def _add_policy_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    policy = sub.add_parser("policy", help="validate policy.toml or render its JSON Schema")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    policy_sub.add_parser("check", parents=[common], help="validate the policy file")
    policy_approve = policy_sub.add_parser(
        "approve",
        parents=[common],
        help="list the policy's changes against the base branch's and sign them as an approver",
        description="Compare the policy with the base branch's (parsed, key by key, and the "
        "rule files it names) and sign the change with the approver's key in "
        "$[roles].approver_key_env, writing policy.approval.json beside the policy. On a pull "
        "request the verdict refuses a policy change no approver of the base policy signed.",
    )
    policy_approve.add_argument(
        "--base",
        type=Path,
        default=None,
        metavar="FILE",
        help="the base branch's policy.toml in a checkout of that branch "
        "(default: $GATES_BASE_POLICY)",
    )
    schema = policy_sub.add_parser("schema", parents=[common], help="print the JSON Schema")
    mode = schema.add_mutually_exclusive_group()
    mode.add_argument("--write", type=Path, metavar="FILE", help="write the schema to FILE")
    mode.add_argument(
        "--check", type=Path, metavar="FILE", help="exit 1 when FILE differs from the schema"
    )


def _add_init_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = sub.add_parser(
        "init",
        help="start from your own CSV or Parquet table: infer the contract, write policy.toml, approve, propose "
        "thresholds",
        description="Infer the data contract of DATA (.csv or .parquet), write the policy (refusing to replace "
        "an existing one without --force), approve the snapshot, cross-validate a baseline and "
        "propose thresholds from it (the reasoning is written as comments in the policy).",
    )
    init.add_argument(
        "data",
        type=Path,
        nargs="?",
        metavar="DATA",
        help="the table to start from (.csv or .parquet)",
    )
    init.add_argument("--label", metavar="COLUMN", help="the class column (required with DATA)")
    init.add_argument("--id", dest="id_column", metavar="COLUMN", help="a unique row id column")
    init.add_argument(
        "--positive", metavar="CLASS", help="the class f1, precision and recall are about"
    )
    init.add_argument(
        "--force",
        action="store_true",
        help="replace the [model], [cv], [data] and [risk] tables of an existing policy (other "
        "tables are kept) and a data copy of the same name",
    )
    init.add_argument(
        "--policy", type=Path, default=Path("policy.toml"), help="policy file to write"
    )
    init.add_argument(
        "--restore",
        action="store_true",
        help="only put back every file an interrupted init changed (its .gates-init/ journal), "
        "as the next init does first; then exit",
    )


def _add_key_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    keygen = sub.add_parser(
        "keygen",
        parents=[common],
        help="create a release key pair (Ed25519 unless --algorithm; refuses to overwrite)",
    )
    keygen.add_argument(
        "--private",
        type=Path,
        default=None,
        help="private key file, written mode 0600 (default: <dev_key_dir>/release.key)",
    )
    keygen.add_argument(
        "--public", type=Path, default=None, help="public key file (default: [release].public_key)"
    )
    keygen.add_argument(
        "--algorithm",
        choices=("ed25519", "ml-dsa-65", "ecdsa-p256-sha256"),
        default="ed25519",
        help="key type (default ed25519; ml-dsa-65 for the post-quantum half of a hybrid)",
    )
    revoke = sub.add_parser(
        "revoke",
        parents=[common],
        help="withdraw a registry version everywhere (a release manager's signature with [roles])",
    )
    revoke.add_argument("version", help="the registry version (a folder of registry/versions/)")
    rollback = sub.add_parser(
        "rollback",
        parents=[common],
        help=(
            "make the previous promoted, non-revoked version (or VERSION) the champion again "
            "(a release manager's signature with [roles])"
        ),
    )
    registry = sub.add_parser("registry", help="the model registry's audit log")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    head = registry_sub.add_parser(
        "head",
        parents=[common],
        help="print the audit log's head (N:SHA256) to pin as $GATES_REGISTRY_HEAD",
    )
    head.add_argument(
        "--require-pin",
        action="store_true",
        help=(
            "refuse (exit 1) when $GATES_REGISTRY_HEAD is unset or empty: the generated deploy "
            "jobs read the registry only under a pin from the CI system's protected settings"
        ),
    )
    registry_sub.add_parser(
        "rotate",
        parents=[common],
        help=(
            "re-sign every registry version under the new release key (the deploy job, with "
            "the new key's secret and the old public key in $GATES_ROTATE_FROM)"
        ),
    )
    rollback.add_argument(
        "version",
        nargs="?",
        default=None,
        help="the registry version to roll back to (default: the one promoted before the champion)",
    )


def _add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--policy",
        type=Path,
        default=Path("policy.toml"),
        help="policy file (default: policy.toml)",
    )
    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the verified, signed model over HTTP (KServe V1); exit 2 when it does not verify",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: [serve].port)")
    serve.add_argument(
        "--champion",
        action="store_true",
        help="serve the registry's champion (default: this run's)",
    )
    serve.add_argument(
        "--require-pin",
        action="store_true",
        help=(
            "with --champion: refuse (exit 2) when $GATES_REGISTRY_HEAD is unset, empty or "
            "pins no line (0:...); the image's entrypoint, pinned by the Deployment's Secret"
        ),
    )
    serve.add_argument(
        "--key",
        type=Path,
        default=None,
        help="trusted public key (default: [release].public_key)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=None,
        metavar="CIDR",
        help="a proxy whose X-Forwarded-For names the client (repeatable; replaces "
        "GATES_TRUSTED_PROXIES, comma-separated; default: none, the peer address)",
    )


def _add_ci_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ci = sub.add_parser("ci", help="render the CI configurations from the gate registry")
    ci_sub = ci.add_subparsers(dest="ci_command", required=True, metavar="ACTION")
    render = ci_sub.add_parser(
        "render",
        help="write .github/workflows/pipeline.yml, .gitlab-ci.yml, Jenkinsfile and "
        ".github/dependabot.yml",
        description="Render the three CI configurations and the Dependabot file from "
        "gates/registry.py (and, when ROOT/policy.toml names a key service in [keys].provider, "
        "its deploy job's short-lived identity; with [serve.dast].zap, its ZAP scan). With --check, write nothing and exit 1 with a unified diff when a committed "
        "file differs.",
    )
    render.add_argument(
        "--root", type=Path, default=Path(), help="project folder (default: current folder)"
    )
    render.add_argument(
        "--check", action="store_true", help="exit 1 with a diff when a file differs"
    )
    deploy = ci_sub.add_parser(
        "deploy",
        help="write deploy/Dockerfile and deploy/k8s/*.yaml from policy.toml",
        description="Render the Dockerfile and the Kubernetes manifests from the policy. With "
        "--check, write nothing and exit 1 with a unified diff when a committed file differs, "
        "or when a committed file lacks a security setting (run as root, privileged, ...).",
    )
    deploy.add_argument(
        "--root", type=Path, default=Path(), help="project folder (default: current folder)"
    )
    deploy.add_argument(
        "--policy", type=Path, default=None, help="policy file (default: ROOT/policy.toml)"
    )
    deploy.add_argument(
        "--check", action="store_true", help="exit 1 with a diff when a file differs"
    )
    deploy.add_argument(
        "--image-digest",
        default=None,
        metavar="sha256:HEX",
        help="the digest of the image the deploy job built and pushed from deploy/Dockerfile: "
        "the Deployment runs [serve.deploy].image at it (without: the all-zero digest, which "
        "runs nothing)",
    )
    dotenv = ci_sub.add_parser(
        "dotenv", help="write the verdict and model digest as KEY=value lines (GitLab dotenv)"
    )
    dotenv.add_argument(
        "--reports", type=Path, default=Path("reports"), help="report folder (default: reports)"
    )
    dotenv.add_argument(
        "--output", type=Path, default=None, help="file to write (default: standard output)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, dispatch, and map every outcome to an exit code."""
    args = _parser().parse_args(argv)
    try:
        _refuse_half_written(args)
        return _ci(args) if args.command == "ci" else _dispatch(args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except GatesError as err:
        _error(err)
        return EXIT_USAGE
    except Exception as err:
        from pipeline.errors import PipelineError  # noqa: PLC0415 - keeps `list` import-light

        if isinstance(err, PipelineError):
            _error(err)
            return EXIT_USAGE
        raise


def _error(err: Exception) -> None:
    """``error: <line>`` for each line of the message, control characters shown as ``U+XXXX``.

    A message quotes the pull request's policy keys and values (a column's name may hold a new
    line), and raw it wrote GitHub workflow commands such as ``::error::`` into the CI log of
    every job that reads the policy (red team 19). Every line written starts with ``error: ``,
    so none is a command (the runner reads one only at a line's start, spaces trimmed), and a
    policy with several problems still shows one per line.
    """
    from gates.console import one_line  # noqa: PLC0415 - keeps `list` import-light

    for line in str(err).split("\n"):
        sys.stderr.write(f"error: {one_line(line)}\n")


def _refuse_half_written(args: argparse.Namespace) -> None:
    """No command runs on a project an interrupted ``init`` half-wrote, nor beside a journal
    the commit brought (gates/journal.py); ``init`` restores first, ``list`` and ``policy
    schema`` read no project."""
    if args.command in ("list", "init"):
        return
    if args.command == "policy" and args.policy_command == "schema":
        return
    from gates.journal import refuse_leftover  # noqa: PLC0415

    if args.command == "ci":
        # render and deploy: the project in --root; dotenv: the folder it runs in.
        root = (getattr(args, "root", None) or Path()).absolute()
    else:
        # absolute(), not resolve(): a policy path that is a symlink loop is the policy
        # loader's to refuse in one line (an OSError here was a traceback).
        root = Path(getattr(args, "policy", None) or "policy.toml").absolute().parent
    refuse_leftover(root)


def _dispatch(args: argparse.Namespace) -> int:  # noqa: PLR0911 - one return per command
    if args.command == "list":
        for number, spec in enumerate(GATES, start=1):
            sys.stdout.write(f"{number}. {spec.name:<10} {spec.summary}\n")
        return EXIT_OK
    if args.command == "policy" and args.policy_command == "schema":
        return _schema(args)
    if args.command == "init":
        return _init(args)

    from pipeline.config import load_policy  # noqa: PLC0415 - heavy imports only past `list`

    loaded = load_policy(args.policy)
    if args.command == "registry" and args.registry_command == "rotate":
        return _rotate(loaded)
    if args.command in ("keygen", "verify", "deploy", "revoke", "rollback", "registry"):
        return _release(args, loaded)
    if args.command == "serve":
        return _serve(args, loaded)
    if args.command == "policy" and args.policy_command == "approve":
        from gates.policy_change import approve  # noqa: PLC0415

        return approve(loaded, base=args.base, out=sys.stdout)
    if args.command == "policy":
        sys.stdout.write(f"{args.policy}: valid (sha256 {loaded.sha256})\n")
        return EXIT_OK
    if args.command == "data":
        return _data(args, loaded)
    if args.command in ("history", "feedback"):
        from gates.feedback import commands  # noqa: PLC0415

        command = (
            commands.history_command if args.command == "history" else commands.feedback_command
        )
        return command(args, loaded)
    return _run(args, loaded)


def _data(args: argparse.Namespace, loaded: LoadedPolicy) -> int:
    from gates import approve  # noqa: PLC0415

    if args.data_command == "approve":
        return approve.approve(loaded, out=sys.stdout, rebaseline=args.rebaseline)
    return approve.verify(loaded, out=sys.stdout)


def _run(args: argparse.Namespace, loaded: LoadedPolicy) -> int:
    import json  # noqa: PLC0415

    from gates import closing, console  # noqa: PLC0415
    from gates.cache import disabled_by_env  # noqa: PLC0415
    from gates.registry import NAMES, spec  # noqa: PLC0415
    from gates.runner import run_chain  # noqa: PLC0415

    try:
        fmt = console.log_format(args.log_format)
    except ValueError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    # With --json, stdout carries exactly one JSON document; everything human goes to stderr.
    human = sys.stderr if args.json else sys.stdout
    total = len(args.gates) or len(NAMES)
    display = console.choose(human, fmt=fmt, total=total)
    reports = args.reports or loaded.resolve(loaded.policy.run.reports_dir)
    summary = run_chain(
        args.gates,
        policy=loaded,
        reports_dir=reports,
        out=human,
        display=display,
        use_cache=True,
        read_cache=not (args.no_cache or disabled_by_env()),
        rerun_from=args.rerun_from,
    )
    code = summary.exit_code
    word = {EXIT_OK: "PASSED", EXIT_FAILED: "FAILED"}.get(code, "ERRORED")
    if args.json:
        document = {
            "run_id": summary.run_id,
            "exit_code": code,
            "status": word,
            "reports_dir": str(reports),
            "results": [r.to_dict() for r in summary.results],
        }
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    if fmt == "json":
        return code
    # The warnings of what this command ran, then the verdict: the last line (gates/closing.py).
    for line in closing.warning_lines([r.to_dict() for r in summary.results]):
        human.write(f"{line}\n")
    if any(r.gate == VERDICT.name for r in summary.results):
        for result in summary.results:
            if spec(result.gate).always and not result:
                # Say which part failed when the gates passed but the feedback stage did not.
                human.write(f"  {result.gate} {result.status.value}: {result.summary}\n")
        html = reports / closing.REPORT_HTML
        where = f"report: {html}" if html.is_file() else f"reports in {reports}"
        human.write(f"verdict: {word} (run {summary.run_id}; {where})\n")
    elif code != EXIT_OK:
        stopped = ", ".join(r.gate for r in summary.results if not r)
        human.write(
            f"stopped: {stopped} did not pass; later gates refuse to run until it does "
            f"(run {summary.run_id})\n"
        )
    return code


def _release(args: argparse.Namespace, loaded: LoadedPolicy) -> int:  # noqa: PLR0911 - one return per outcome
    from gates import release  # noqa: PLC0415
    from pipeline.attestation import AttestationError  # noqa: PLC0415
    from pipeline.keys.local import env_name  # noqa: PLC0415

    if args.command == "keygen":
        algorithm = args.algorithm
        rel = loaded.policy.release
        default_public = (
            rel.public_keys.get(algorithm, f"keys/release-{algorithm}.pub")
            if algorithm != "ed25519"
            else rel.public_key
        )
        public_path = args.public or loaded.resolve(default_public)
        stem = "release" if algorithm == "ed25519" else f"release-{algorithm}"
        private_path = args.private or loaded.resolve(rel.dev_key_dir) / f"{stem}.key"
        public = release.keygen(
            private_path=private_path, public_path=public_path, algorithm=algorithm
        )
        secret = env_name(rel.private_key_env, algorithm)
        sys.stdout.write(
            f"wrote {private_path} (private, mode 0600: keep it secret, store it as the CI "
            f"secret ${secret}, never commit it)\n"
            f"wrote {public_path} (public: commit it)\nkey id {public.keyid}\n"
        )
        return EXIT_OK
    if args.command == "verify":
        try:
            verified = (
                release.verify_champion(loaded, key=args.key)
                if args.champion
                else release.verify_project(loaded, envelope=args.envelope, key=args.key)
            )
        except AttestationError as err:
            sys.stdout.write(f"{err}\n")
            return EXIT_FAILED
        kind = verified.signer_kind
        sys.stdout.write(
            f"verified: run {verified.run_id}, {len(verified.subjects)} files match their signed "
            f"SHA-256, every recorded gate PASSED; signed by {verified.signer.keyid[:12]}... "
            f"({verified.signer.source}), a {kind} key"
            f"{'' if kind == 'release' else ': NOT deployable'}\n"
        )
        return EXIT_OK
    if args.command == "registry":
        if args.require_pin and release.registry_pin() is None:
            sys.stdout.write(f"registry refused: {release.UNPINNED}\n")
            return EXIT_FAILED
        try:
            sys.stdout.write(f"{release.registry_head(loaded)}\n")
        except release.DeployRefused as err:
            sys.stdout.write(f"registry {err}\n")
            return EXIT_FAILED
        return EXIT_OK
    if args.command == "revoke":
        try:
            signer = release.revoke(loaded, args.version)
        except release.DeployRefused as err:
            sys.stdout.write(f"revoke {err}\n")
            return EXIT_FAILED
        by = f" by {signer}" if signer else ""
        sys.stdout.write(f"revoked: {args.version}{by}; it is refused wherever it is read\n")
        _print_head(loaded)
        return EXIT_OK
    if args.command == "rollback":
        try:
            version, previous, signer = release.rollback(loaded, args.version)
        except release.DeployRefused as err:
            sys.stdout.write(f"rollback {err}\n")
            return EXIT_FAILED
        by = f" by {signer}" if signer else ""
        sys.stdout.write(
            f"rolled back: {version} is the champion again{by}; {previous} is no longer served\n"
        )
        _print_head(loaded)
        return EXIT_OK
    reports = args.reports or loaded.resolve(loaded.policy.run.reports_dir)
    try:
        champion = release.deploy(loaded, reports_dir=reports)
    except release.DeployRefused as err:
        sys.stdout.write(f"deploy {err}\n")
        return EXIT_FAILED
    sys.stdout.write(
        f"deployed: {champion.version} is the champion "
        f"({champion.attestation.root}, run {champion.attestation.run_id})\n"
    )
    _print_head(loaded)
    return EXIT_OK


def _rotate(loaded: LoadedPolicy) -> int:
    """``registry rotate``: re-sign the registry under the new release key."""
    from gates import release  # noqa: PLC0415

    try:
        done = release.rotate_registry(loaded)
    except release.DeployRefused as err:
        sys.stdout.write(f"rotate {err}\n")
        return EXIT_FAILED
    sys.stdout.write(
        f"rotated: {len(done.resigned)} version(s) re-signed under the release key, "
        f"{len(done.already)} already signed by it"
        f"{'; the audit log records every new envelope' if done.logged else ''}\n"
    )
    if done.skipped:
        sys.stdout.write(
            f"not re-signed: {', '.join(done.skipped)}: signed by the old key but never recorded "
            "by the audit log (not promoted), so left as they are; no reader trusts them\n"
        )
    _print_head(loaded)
    return EXIT_OK


def _print_head(loaded: LoadedPolicy) -> None:
    """After a move: the audit log's new head, to pin outside the registry."""
    from gates import release  # noqa: PLC0415
    from pipeline.promotion import HEAD_ENV  # noqa: PLC0415

    try:
        head = release.registry_head(loaded)
    except release.DeployRefused as err:
        sys.stdout.write(f"registry {err}\n")
        return
    sys.stdout.write(f"registry head: {head} (pin it as ${HEAD_ENV} in the deploy's environment)\n")


def _init(args: argparse.Namespace) -> int:
    from gates.init import MAX_CATEGORIES, NEXT_COMMAND, InitError, init, restore  # noqa: PLC0415

    if args.restore:
        restore(policy_path=args.policy, out=sys.stdout)
        return EXIT_OK
    if args.data is None or args.label is None:
        msg = "init: expected DATA and --label COLUMN (or --restore)"
        raise InitError(msg)
    proposal = init(
        args.data,
        label=args.label,
        id_column=args.id_column,
        positive=args.positive,
        force=args.force,
        policy_path=args.policy,
        out=sys.stdout,
    )
    shown = ", ".join(
        f"{m} >= {t['min_mean']:.2f} (holdout >= {t['min_holdout']:.2f})"
        for m, t in proposal.cv.items()
    )
    sys.stdout.write(
        f"wrote {proposal.policy_path}: {proposal.columns} columns besides the label, {len(proposal.classes)} "
        f"classes, {proposal.estimator}; data {proposal.data_path.name}, {proposal.rows} rows\n"
        f"proposed from a baseline cross-validation: {shown}\n"
    )
    if proposal.at_chance:
        sys.stdout.write(
            f"warning: the baseline does not beat chance by its margin on "
            f"{', '.join(proposal.at_chance)}: those bars are set at chance, so the chain "
            "fails until a candidate beats a model that learned nothing (see the [cv] comment "
            f"in {proposal.policy_path.name})\n"
        )
    for name, distinct in proposal.wide_text:
        sys.stdout.write(
            f"warning: column '{name}' is text with {distinct} distinct values in "
            f"{proposal.rows} rows (more than {MAX_CATEGORIES}: no allowed list): each value "
            "becomes a one-hot feature and one unseen in training counts for nothing; if it is "
            "a row id, pass --id, else drop or group it\n"
        )
    if (proposal.policy_path.parent / "noxfile.py").is_file():
        sys.stdout.write(f"next: {NEXT_COMMAND}   (without nox: python -m gates run)\n")
    else:  # a folder of its own: no noxfile to run the sessions
        sys.stdout.write("next: python -m gates run\n")
    return EXIT_OK


def _serve(args: argparse.Namespace, loaded: LoadedPolicy) -> int:
    from gates.service import server  # noqa: PLC0415 - the ASGI stack only for this command
    from gates.service.proxies import from_operator  # noqa: PLC0415

    port = loaded.policy.serve.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        sys.stderr.write(f"error: --port {port}: expected 0..65535\n")
        return EXIT_USAGE
    if args.require_pin:
        refused = _unpinned_serve(args.champion)
        if refused:
            sys.stderr.write(f"error: serve --require-pin: {refused}\n")
            return EXIT_USAGE
    proxies = from_operator(args.trusted_proxy)
    # Verify before anything listens: a model that does not verify never answers a request.
    served = server.verified_model(loaded, champion=args.champion, key=args.key)
    server.serve_forever(loaded, served, host=args.host, port=port, proxies=proxies)
    return EXIT_OK


def _unpinned_serve(champion: bool) -> str | None:
    """Why ``serve --require-pin`` refuses to start, or None (the log is read under the pin)."""
    from pipeline.promotion import HEAD_ENV, pinned_head  # noqa: PLC0415

    if not champion:
        return "expected --champion (only the registry's champion is read under a pin)"
    pinned = pinned_head()
    if pinned is None:
        return (
            f"${HEAD_ENV} is unset or empty: the image's registry is served only under the "
            "head the deploy printed, from the Secret the Deployment names (docs/serving.md "
            "'The registry head in the pod')"
        )
    count = pinned.partition(":")[0]
    if count.isascii() and count.isdigit() and int(count) == 0:
        return (
            f"${HEAD_ENV} pins no line ({pinned[:20]}...), which any audit log extends: pin "
            "the head the deploy printed (reports/registry-head.txt)"
        )
    return None


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


def _ci(args: argparse.Namespace) -> int:  # noqa: PLR0911 - one return per outcome
    from gates import ci  # noqa: PLC0415 - keeps `list` import-light
    from pipeline.fsio import atomic_write_text  # noqa: PLC0415

    try:
        if args.ci_command == "dotenv":
            from gates.ci.dotenv import dotenv_lines  # noqa: PLC0415

            text = "".join(f"{line}\n" for line in dotenv_lines(args.reports))
            if args.output is None:
                sys.stdout.write(text)
            else:
                atomic_write_text(args.output, text)
            return EXIT_OK
        if not args.root.is_dir():
            sys.stderr.write(
                f"error: {args.root}: not a folder; pass --root the project folder (the one "
                "with policy.toml and gates/)\n"
            )
            return EXIT_USAGE
        if args.ci_command == "deploy":
            return _ci_deploy(args)
        if not (args.root / "policy.toml").exists():
            sys.stderr.write(
                f"note: no policy.toml in {args.root}: rendered for local release keys and no "
                "ZAP scan (a policy's [keys].provider or [serve.dast].zap renders another deploy "
                "job)\n"
            )
        keys, zap = ci.key_service(args.root), ci.zap_scan(args.root)
        if args.check:
            drifts = ci.check(args.root, keys=keys, zap=zap)
            for drift in drifts:
                sys.stdout.write(drift.diff)
            if drifts:
                names = ", ".join(d.path for d in drifts)
                sys.stdout.write(
                    f"{names}: differ from what the gate registry and policy.toml render "
                    "([keys].provider and [serve.dast] shape the deploy job); regenerate with "
                    "python -m gates ci render and commit them\n"
                )
                return EXIT_FAILED
            sys.stdout.write("CI configurations are up to date with the gate registry\n")
            return EXIT_OK
        for relative, text in ci.render_all(keys=keys, zap=zap).items():
            atomic_write_text(args.root / relative, text)
            sys.stdout.write(f"wrote {relative}\n")
    except ci.CiError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    except OSError as err:
        where = err.filename or getattr(args, "output", None) or getattr(args, "root", ".")
        sys.stderr.write(f"error: {where}: {err.strerror or err}\n")
        return EXIT_USAGE
    return EXIT_OK


def _ci_deploy(args: argparse.Namespace) -> int:
    from gates.ci import MAX_RENDERED_BYTES, deploy  # noqa: PLC0415
    from pipeline.config import load_policy  # noqa: PLC0415
    from pipeline.fsio import atomic_write_text, read_regular  # noqa: PLC0415

    loaded = load_policy(args.root / "policy.toml" if args.policy is None else args.policy)
    try:
        rendered = (
            deploy.render_deploy(loaded)
            if args.image_digest is None
            else deploy.render_deploy(loaded, image_digest=args.image_digest)
        )
    except deploy.ImageDigestError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    if not args.check:
        for relative, text in rendered.items():
            atomic_write_text(args.root / relative, text)
            sys.stdout.write(f"wrote {relative}\n")
        return EXIT_OK
    failed = False
    for drift in deploy.check_deploy(args.root, loaded, image_digest=args.image_digest):
        sys.stdout.write(drift.diff)
        sys.stdout.write(
            f"{drift.path}: differs from policy.toml; regenerate with python -m gates ci deploy\n"
        )
        failed = True
    for relative in rendered:
        try:
            # The bytes the drift check compared: never through a symlink, FIFO or device
            # (drift has named each of those already).
            raw = read_regular(args.root / relative, limit=MAX_RENDERED_BYTES)
        except OSError:
            continue
        text = raw.decode("utf-8", errors="replace")
        for finding in deploy.security_findings(relative, text, loaded):
            sys.stdout.write(f"{finding}\n")
            failed = True
    for relative in deploy.unrendered(args.root, rendered):
        if relative.startswith(f"{deploy.K8S_DIR}/"):
            why = (
                "expected only the generated files in deploy/k8s/ (a Secret or ConfigMap there, "
                "applied with the folder, replaces the operator's): remove it, or keep it "
                "outside deploy/k8s/"
            )
        else:
            why = (
                "expected no build-context ignore file and nothing else in deploy/ (an ignore "
                "file decides which files the image's COPY lines take): remove it"
            )
        sys.stdout.write(f"{relative}: not rendered from policy.toml; {why}\n")
        failed = True
    if failed:
        return EXIT_FAILED
    sys.stdout.write("deployment files are up to date with policy.toml\n")
    return EXIT_OK
