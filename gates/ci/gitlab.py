"""GitLab CI: ``.gitlab-ci.yml``, one stage and one job per gate, chained by ``needs``."""

from __future__ import annotations

from pathlib import PurePosixPath

from gates.ci.interface import (
    ADVISORY_DB_ENV,
    AWS_AUDIENCE,
    AWS_ROLE_VAR,
    CACHE_KEY_FILES,
    CARRIED,
    CHECK_CONFIG,
    CHECK_DEPLOY,
    CHECK_JOB,
    CHECK_PIN,
    CHECKS,
    CODE_QUALITY,
    DEPLOY,
    DEPLOY_ENVIRONMENT,
    DOTENV,
    DOTENV_FILE,
    GATE_CACHE_DIR,
    GATE_CACHE_KEY,
    HISTORY_CACHE_KEY,
    HISTORY_DIR,
    HTML_REPORT,
    INSTALL,
    JUNIT_XML,
    MAKE_REPORTS,
    METRICS_PROM,
    NO_CACHE,
    OIDC_JWT_ENV,
    PIP_CACHE_DIR,
    PIP_CACHE_KEY,
    PIP_CACHE_KEY_FILES,
    PYTHON_VERSION,
    REGISTRY_HEAD_ENV,
    REGISTRY_HEAD_FILE,
    ROTATE,
    ROTATE_JOB,
    ROTATE_PARAMETER,
    RUN_GATE,
    RUN_ID_ENV,
    SIGN_RELEASE,
    SKIP_INSTALL_ENV,
    TEST_EXTRAS_ENV,
    VAULT_ADDR_VAR,
    VAULT_AUDIENCE,
    VAULT_ROLE_VAR,
    WRITE_HEAD,
    CiPlan,
    CiRenderer,
    KeyService,
    ZapScan,
    base_branch_shell,
    header,
    one_line,
)
from gates.registry import GateSpec

# Not the slim variant: the artifacts gate records the commit with git, which slim lacks. Pin the
# image by digest (python:3.11-bookworm@sha256:...) if your registry policy requires it; the tag
# keeps the base image's security updates flowing.
IMAGE = f"python:{PYTHON_VERSION}-bookworm"
EXPIRE = "1 week"
# The feedback job's history cache policy: "pull" unless the pipeline is a push to the default
# branch (a rule sets it to "pull-push"), so only the default branch writes its history back.
HISTORY_POLICY_VAR = "GATES_HISTORY_CACHE_POLICY"
DEFAULT_BRANCH_PUSH = '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"'
# A cached gate's job reads the gate cache only in a push pipeline of the default branch.
READ_CACHE = (
    'if [ "$CI_COMMIT_BRANCH" = "$CI_DEFAULT_BRANCH" ] && [ "$CI_PIPELINE_SOURCE" = "push" ]; '
    f"then export {NO_CACHE}=0; fi"
)
ROTATE_RULE = (
    '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "web" && '
    f'${ROTATE_PARAMETER} == "true"'
)
MR_EVENT = "merge_request_event"
MR_TARGET = "CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
# "1" leaves out the tests and typecheck jobs: a local gitlab-ci-local run of the gates alone.
SKIP_CHECKS_ENV = "GATES_SKIP_CHECKS"
# The merge request's link to the feedback stage's HTML report.
EXPOSE_AS = "pipeline report"


class GitlabRenderer(CiRenderer):
    """Renders the GitLab CI configuration."""

    system = "gitlab"
    path = PurePosixPath(".gitlab-ci.yml")

    def render(self, plan: CiPlan) -> str:
        """The pipeline: gate jobs, always-run jobs, and the manual deploy job."""
        stages = [spec.name for spec in (*plan.gates, *plan.always)] + ["deploy"]
        parts = [header("#"), _top(stages), _check_job()]
        parts.extend(_project_check_job(name, command, what) for name, command, what in CHECKS)
        previous: str | None = None
        for spec in plan.gates:
            parts.append(_gate_job(spec, previous=previous, plan=plan))
            previous = spec.name
        parts.extend(_always_job(spec) for spec in plan.always)
        parts.append(_deploy_job(plan))
        parts.append(_rotate_job(plan))
        return "\n".join(parts)


def _top(stages: list[str]) -> str:
    listed = "".join(f"  - {stage}\n" for stage in stages)
    return f"""\
# Merge-request pipelines, and branch pipelines where no merge request is open (no duplicates).
workflow:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS
      when: never
    - if: $CI_COMMIT_BRANCH

stages:
{listed}
variables:
  # One run id for every job of this pipeline, so that each gate accepts the reports of the
  # gates before it (gates/runner.py resolve_run_id).
  {RUN_ID_ENV}: gitlab-$CI_PIPELINE_ID
  PIP_DISABLE_PIP_VERSION_CHECK: "1"
  # Every job clones anew: a runner that keeps the build folder between jobs (the Docker and
  # shell executors do) would otherwise hand the next job, of this pipeline or a later one, the
  # .git/config, .git/hooks and files that an earlier job's code wrote there (the train gate
  # runs the merge request's code); "fetch" keeps .git, and git clean leaves it (docs/ci.md).
  GIT_STRATEGY: clone
  # "1" skips the dependency install where requirements.lock is already installed (a local
  # gitlab-ci-local run in shell mode); real runners install into a fresh image every job.
  {SKIP_INSTALL_ENV}: "0"
  # "1" leaves out the tests and typecheck jobs (a local gitlab-ci-local run of the gates alone).
  {SKIP_CHECKS_ENV}: "0"
  # Only a push to the default branch reads the gate cache (its gate jobs set "0"): any other
  # pipeline's code is not reviewed yet, and an earlier commit of a merge request could write
  # the entries its next commit would reuse. Every other pipeline computes every gate.
  {NO_CACHE}: "1"
  # pip's download and wheel cache, kept between pipelines keyed on requirements.lock.
  PIP_CACHE_DIR: $CI_PROJECT_DIR/{PIP_CACHE_DIR.rstrip("/")}
  # Only a push to the default branch writes its run history back to the cache (see feedback).
  {HISTORY_POLICY_VAR}: pull
  # Asks for the rotate job (docs/keys.md "Rotating the release key") in a pipeline run by hand.
  {ROTATE_PARAMETER}:
    value: "false"
    description: "true: re-sign the registry under the new release key (default branch, run by hand; approved like a deployment)"
  # The audit gate asks pip-audit's online vulnerability service. On runners without internet,
  # point it at a local copy of the PyPA advisory database instead:
  # {ADVISORY_DB_ENV}: /srv/advisory-db

.python:
  image: {IMAGE}
  interruptible: true
  timeout: 30m
  before_script:
    - if [ "${SKIP_INSTALL_ENV}" = "1" ]; then echo "{SKIP_INSTALL_ENV}=1, using installed dependencies"; else {INSTALL}; fi
  cache:
{_pip_cache()}"""


def _pip_cache() -> str:
    # Keyed on the lock's digest only. pip checks every cached wheel against the lock's hashes,
    # so an entry a merge request wrote buys time, not trust; deploy restores none.
    files = ", ".join(PIP_CACHE_KEY_FILES)
    return f"""\
    - key:
        files: [{files}]
        prefix: {PIP_CACHE_KEY}
      paths: [{PIP_CACHE_DIR}]
      policy: pull-push
"""


def _check_job() -> str:
    # In GitLab's built-in first stage, beside the first gate (``needs: []``).
    return f"""\
# The three CI files are what `python -m gates ci render` writes from the gate registry.
{CHECK_JOB}:
  extends: .python
  stage: .pre
  needs: []
  script:
    - {CHECK_CONFIG}
    - {CHECK_DEPLOY}
"""


def _project_check_job(name: str, command: str, what: str) -> str:
    # Beside the first gate (``needs: []``), on every merge request; a failure fails the
    # pipeline but stops no gate. The extras' lock too, so that no test skips for an extra.
    return f"""\
# {what}
{name}:
  extends: .python
  stage: .pre
  needs: []
  timeout: 60m
  rules:
    - if: ${SKIP_CHECKS_ENV} == "1"
      when: never
    - when: on_success
  variables:
    {TEST_EXTRAS_ENV}: "1"
  script:
    - {command}
"""


def _artifacts(*, reports: str = "", expose: bool = False) -> str:
    exposed = [HTML_REPORT] if expose else []
    paths = "".join(f"      - {path}\n" for path in (*exposed, *CARRIED))
    # The merge request links to the HTML report (GitLab's "View exposed artifact").
    expose_as = f'    expose_as: "{EXPOSE_AS}"\n' if expose else ""
    return f"""\
  artifacts:
    when: always
    expire_in: {EXPIRE}
{expose_as}    paths:
{paths}{reports}"""


def _native_reports() -> str:
    # Written by the feedback stage; GitLab warns, and does not fail, when one is missing.
    return f"""\
    reports:
      junit: {JUNIT_XML}
      codequality: {CODE_QUALITY}
      metrics: {METRICS_PROM}
"""


def _gate_job(spec: GateSpec, *, previous: str | None, plan: CiPlan) -> str:
    needs = f"[{previous}]" if previous else "[]"
    # Every gate after the first runs even when one before it failed: the runner then refuses it
    # (SKIPPED, rule GATE001, naming the gate that did not pass) and the verdict states FAILED, so
    # the merge request shows a report for every gate. This also keeps the always-run stages
    # reachable in gitlab-ci-local, which never finishes a job skipped after a failure.
    when = "  when: always\n" if previous else ""
    cache = _gate_cache() if spec in plan.cached else ""
    script = f"    - {RUN_GATE.format(gate=spec.name)}\n"
    reports = ""
    if spec.verdict:
        # The verdict and model digest travel on to the deploy job as variables (a dotenv
        # report), written whatever the verdict; the job still exits with the verdict's code.
        # Not in after_script: that runs in a fresh shell, and must not decide the job's status.
        script = (
            f"    - {RUN_GATE.format(gate=spec.name)} || verdict_exit=$?\n"
            f"    - {DOTENV}\n"
            '    - exit "${verdict_exit:-0}"\n'
        )
        reports = f"    reports:\n      dotenv: {DOTENV_FILE}\n"
        if not plan.has_feedback:
            reports += _native_reports().removeprefix("    reports:\n")
    if spec.base_branch:
        lines = "".join(f"        {line}\n" for line in base_branch_shell(MR_TARGET))
        script = (
            "    # A merge request: the target branch's policy names the approvers, the approved\n"
            "    # data lock and the rules a policy change is compared with (GATES_BASE_POLICY).\n"
            "    - |\n"
            f'      if [ "$CI_PIPELINE_SOURCE" = "{MR_EVENT}" ]; then\n'
            f"{lines}"
            "      fi\n"
        ) + script
    if spec in plan.cached:
        script = f"    - {READ_CACHE}\n" + script
    expose = spec.verdict and not plan.has_feedback
    return f"""\
# {one_line(spec.summary)}
{spec.name}:
  extends: .python
  stage: {spec.name}
  needs: {needs}
{when}{cache}  script:
{script}""" + _artifacts(reports=reports, expose=expose)


def _gate_cache() -> str:
    files = ", ".join(CACHE_KEY_FILES)
    # GitLab keeps protected and unprotected branches' caches apart (the project setting "Use
    # separate caches for protected branches", on by default: keep it on), and a fork's
    # pipelines run in the fork's project; so a merge request cannot write the default branch's.
    return f"""\
  cache:
    - key:
        files: [{files}]
        prefix: {GATE_CACHE_KEY}-$CI_COMMIT_REF_SLUG
      paths: [{GATE_CACHE_DIR}]
      policy: pull-push
      when: always
{_pip_cache()}"""


def _always_job(spec: GateSpec) -> str:
    # No ``needs``: the job waits for every earlier stage and takes all of their artifacts.
    return f"""\
# {one_line(spec.summary)} Runs whether the gates passed or failed.
{spec.name}:
  extends: .python
  stage: {spec.name}
  rules:
    - if: {DEFAULT_BRANCH_PUSH}
      variables:
        {HISTORY_POLICY_VAR}: pull-push
      when: always
    - when: always
  # The default branch's run history: every pipeline reads it where GitLab lets it (the default
  # branch, other protected branches); only pushes to the default branch write it back. The
  # feedback stage verifies the restored chain (FB001 when it is broken).
  cache:
    - key: {HISTORY_CACHE_KEY}-$CI_DEFAULT_BRANCH
      paths: [{HISTORY_DIR}]
      policy: ${HISTORY_POLICY_VAR}
      when: always
{_pip_cache()}\
  script:
    - {RUN_GATE.format(gate=spec.name)}
""" + _artifacts(reports=_native_reports(), expose=True)


def _deploy_job(plan: CiPlan) -> str:
    service = plan.keys
    return f"""\
# Verify the signed attestation and promote the model: the default branch only, started by hand
# by someone allowed to deploy to the protected environment. The signing key is a CI/CD variable
# scoped to that environment, protected and masked, so no other job (and no fork) sees it.
# {REGISTRY_HEAD_ENV}, the registry audit log's head, is a protected CI/CD variable of that
# environment too (not masked: the operator reads it): every read of the registry refuses a log
# cut behind it, and the first command refuses to go on when it is unset or empty. The new head
# is written to {REGISTRY_HEAD_FILE} (an artifact) and the log, to pin next.
deploy:
  extends: .python
  stage: deploy
  needs:
    - job: {plan.verdict.name}
      artifacts: true
  rules:
    - if: {DEFAULT_BRANCH_PUSH}
      when: manual
  allow_failure: false
  environment:
    name: {DEPLOY_ENVIRONMENT}
    deployment_tier: production
  resource_group: {DEPLOY_ENVIRONMENT}
  interruptible: false
  # Fail closed: the release key signs what this job computes, so it restores no cache and
  # reuses nothing from one.
  cache: []
  variables:
    {NO_CACHE}: "1"
{_key_service(service)}\
  script:
    - {CHECK_PIN}
{_login(service)}\
    - {SIGN_RELEASE}
{_zap_scan(plan.zap)}\
    - {DEPLOY}
    - {WRITE_HEAD}
    - cat {REGISTRY_HEAD_FILE}
  artifacts:
    expire_in: {EXPIRE}
    paths:
      - {REGISTRY_HEAD_FILE}
"""


def _rotate_job(plan: CiPlan) -> str:
    service = plan.keys
    old = ", ".join(plan.rotate_from)
    return f"""\
# Re-sign the registry under the new release key (docs/keys.md "Rotating the release key"):
# started by hand on the default branch by someone allowed to deploy to the protected
# environment, once, after the commit that brings the new keys/release.pub. The new key's
# secret (as deploy signs) and the old public key's PEM are CI/CD variables scoped to that
# environment, protected and masked; the file sets neither (a merge request controls it).
# The old key: {old}. It needs no verdict (until the registry is re-signed the cv gate cannot trust
# the champion), reads and writes the registry under the pinned head, and writes the new head.
# Offered only in a pipeline run by hand (Build -> Pipelines -> Run pipeline) on the default
# branch with {ROTATE_PARAMETER} = true; then it blocks that pipeline until it is started, and a
# failed rotation fails it.
{ROTATE_JOB}:
  extends: .python
  stage: deploy
  needs: []
  rules:
    - if: {ROTATE_RULE}
      when: manual
  allow_failure: false
  environment:
    name: {DEPLOY_ENVIRONMENT}
    deployment_tier: production
  resource_group: {DEPLOY_ENVIRONMENT}
  interruptible: false
  cache: []
  variables:
    {NO_CACHE}: "1"
{_key_service(service)}\
  script:
    - {CHECK_PIN}
{_login(service)}\
    - {ROTATE}
    - {MAKE_REPORTS}
    - {WRITE_HEAD}
    - cat {REGISTRY_HEAD_FILE}
  artifacts:
    expire_in: {EXPIRE}
    paths:
      - {REGISTRY_HEAD_FILE}
"""


def _zap_scan(zap: ZapScan | None) -> str:
    """[serve.dast].zap: the OWASP ZAP API scan of the just-signed model, before the promotion."""
    if zap is None:
        return ""
    script = "".join(f"      {line}\n" for line in zap.shell().splitlines())
    return f"""\
    # OWASP ZAP API scan of the verified service on loopback: a WARN or FAIL alert, a service
    # that does not start or a runner without docker fails the job, and nothing is promoted.
    # Needs a runner whose docker shares the job's network (a shell executor): GitLab's docker
    # executor does not.
    - |
{script}"""


def _key_service(service: KeyService | None) -> str:
    """The job's ID token for the key service (its variables block's tail, then id_tokens)."""
    if service is None:
        return ""
    aws = service.provider == "aws-kms"
    region = f"    AWS_REGION: {service.region}\n" if aws else ""
    kept = (
        f"\n  # {', '.join(service.local_keys)}: the rest of the hybrid, environment-scoped variables."
        if service.local_keys
        else ""
    )
    return f"""\
{region}\
  # The job's OIDC ID token, exchanged in the script for short-lived credentials of the signing
  # role: no private release key is stored as a CI/CD variable for the algorithm the service
  # signs.{kept}
  id_tokens:
    {OIDC_JWT_ENV}:
      aud: {AWS_AUDIENCE if aws else VAULT_AUDIENCE}
"""


def _login(service: KeyService | None) -> str:
    if service is None:
        return ""
    if service.provider == "aws-kms":
        return f"""\
    # boto3 exchanges the ID token for credentials of ${AWS_ROLE_VAR} (AssumeRoleWithWebIdentity):
    # a role that may only kms:Sign and kms:GetPublicKey the release key.
    - export AWS_ROLE_ARN="${AWS_ROLE_VAR}" AWS_ROLE_SESSION_NAME="gates-deploy-$CI_PIPELINE_ID" AWS_WEB_IDENTITY_TOKEN_FILE="$(mktemp)"
    - printf '%s' "${OIDC_JWT_ENV}" > "$AWS_WEB_IDENTITY_TOKEN_FILE"
"""
    return f"""\
    # Vault's JWT auth (role ${VAULT_ROLE_VAR}, ${VAULT_ADDR_VAR} a CI/CD variable) turns the ID token
    # into a short-lived token whose policy may only sign with the Transit release key.
    - export VAULT_TOKEN="$(python -c 'import hvac, os; print(hvac.Client(url=os.environ["{VAULT_ADDR_VAR}"]).auth.jwt.jwt_login(role=os.environ["{VAULT_ROLE_VAR}"], jwt=os.environ["{OIDC_JWT_ENV}"])["auth"]["client_token"])')"
"""
