"""``python -m pipeline train|predict``: the ML steps on their own, outside the gate chain.

A model trained here is not trusted: only the gate chain signs off a model. ``predict`` loads a
model only through a verified, signed attestation (this run's, or the registry champion's). Exit codes: 0 done; 2 bad input or usage; 130
interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import PipelineError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline", description="Train or predict with the policy's model."
    )
    parser.add_argument("--policy", type=Path, default=Path("policy.toml"), help="policy file")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = sub.add_parser("train", help="fit on the approved data and save the model")
    train.add_argument(
        "--output", type=Path, default=None, help="model file (default: [run].artifacts_dir)"
    )
    predict = sub.add_parser(
        "predict", help="predict labels for a CSV or Parquet file with a verified, signed model"
    )
    source = predict.add_mutually_exclusive_group()
    source.add_argument(
        "--champion", action="store_true", help="use the registry's champion (default: this run's)"
    )
    predict.add_argument(
        "--key",
        type=Path,
        default=None,
        help="trusted public key (default: [release].public_key; a local run: .keys/dev-signing.pub)",
    )
    predict.add_argument("--input", type=Path, required=True, help="rows to predict")
    predict.add_argument("--output", type=Path, default=None, help="CSV to write (default: stdout)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every bad input is one line on stderr and exit code 2."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        return _predict(args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except PipelineError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2


def _train(args: argparse.Namespace) -> int:
    from pipeline.config import load_policy  # noqa: PLC0415 - parse arguments before heavy imports

    policy = load_policy(args.policy)  # a refused policy costs no scikit-learn import
    from pipeline.evaluate import build_scorers, holdout_scores  # noqa: PLC0415
    from pipeline.persist import MODEL_FILE, save_model  # noqa: PLC0415
    from pipeline.train import train  # noqa: PLC0415

    result = train(policy)
    output = args.output or policy.resolve(policy.policy.run.artifacts_dir) / MODEL_FILE
    manifest = save_model(result.model, output, estimator=policy.policy.model.estimator)
    data = policy.policy.data
    scorers = build_scorers(
        policy.policy.cv.thresholds, classes=data.classes, positive_class=data.positive_class
    )
    scores = holdout_scores(
        result.model, result.split.x_holdout, result.split.y_holdout, scorers=scorers
    )
    sys.stdout.write(f"saved {output} (sha256 {manifest.sha256})\n")
    for name, value in scores.items():
        sys.stdout.write(f"  holdout {name}: {value:.4f}\n")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from pipeline.config import load_policy  # noqa: PLC0415
    from pipeline.persist import load_attested  # noqa: PLC0415
    from pipeline.predict import predict_file  # noqa: PLC0415
    from pipeline.verify import verify_champion, verify_project  # noqa: PLC0415

    policy = load_policy(args.policy)
    # The pipeline imports no gate: the statement must record every gate of
    # [release].required_gates (by default those the registry checks before signing), and every
    # gate it records must be PASSED (``python -m gates verify`` requires each gate registered
    # today).
    verify = verify_champion if args.champion else verify_project
    required = policy.policy.release.required_gates
    model, _ = load_attested(verify(policy, required_gates=required, key=args.key))
    table = predict_file(policy, model=model, input_path=args.input)
    if args.output is None:
        sys.stdout.write(table.to_csv(index=False, lineterminator="\n"))
    else:
        from pipeline.fsio import atomic_write_text  # noqa: PLC0415

        atomic_write_text(args.output, table.to_csv(index=False, lineterminator="\n"))
        sys.stderr.write(f"wrote {len(table)} predictions to {args.output}\n")
    return 0
