"""Jenkins: a declarative ``Jenkinsfile``, one stage per gate in one workspace."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from gates.ci.interface import (
    ADVISORY_DB_ENV,
    AWS_CREDENTIAL,
    CACHE_DIR,
    CARRIED,
    CHECK_CONFIG,
    CHECK_DEPLOY,
    CHECK_JOB,
    CHECK_PIN,
    CHECKS,
    DEPLOY,
    DEPLOY_ENVIRONMENT,
    HTML_REPORT,
    INSTALL,
    JUNIT_XML,
    NO_CACHE,
    PIP_CACHE_KEY_FILES,
    REGISTRY_HEAD_CREDENTIAL,
    REGISTRY_HEAD_ENV,
    REGISTRY_HEAD_FILE,
    RUN_GATE,
    RUN_ID_ENV,
    SIGN_RELEASE,
    SIGNING_KEY_CREDENTIAL,
    SIGNING_KEY_ENV,
    TEST_EXTRAS_ENV,
    VAULT_ADDR_VAR,
    VAULT_CREDENTIAL,
    WRITE_HEAD,
    CiPlan,
    CiRenderer,
    KeyService,
    ZapScan,
    base_branch_shell,
    header,
)

if TYPE_CHECKING:
    from gates.registry import GateSpec

VENV = ". .venv/bin/activate && "
# The target branch of a pull request build (multibranch); unset on branch builds.
CHANGE_TARGET = "CHANGE_TARGET"
# The Jenkins group (or user ids, comma-separated) allowed to approve a deployment.
APPROVERS = "release-approvers"
# The gate cache, beside the workspace on the agent (like Jenkins's own ``@tmp``): kept between
# builds of the same branch or pull-request job on the same agent, and out of the workspace's
# cleanups, stashes and archives. No core Jenkins step shares it between agents.
GATE_CACHE_SUFFIX = "@gates-cache"
# pip's download and wheel cache, beside the workspace too, one folder per digest of the lock
# (its first 16 hex digits): a new lock starts a new folder. pip checks every cached wheel
# against the lock's hashes; the deploy stage uses none.
PIP_CACHE_SUFFIX = "@pip-cache"
PIP_CACHE_ROOT = "PIP_CACHE_ROOT"
PIP_CACHE_EXPORT = (
    f'export PIP_CACHE_DIR="${PIP_CACHE_ROOT}/'
    f'$(cat {" ".join(PIP_CACHE_KEY_FILES)} | sha256sum | cut -c1-16)"'
)
# The HTML report's name in the build's side panel (HTML Publisher plugin).
HTML_REPORT_NAME = "Pipeline report"


class JenkinsRenderer(CiRenderer):
    """Renders the declarative Jenkinsfile."""

    system = "jenkins"
    path = PurePosixPath("Jenkinsfile")

    def render(self, plan: CiPlan) -> str:
        """The pipeline: install, the gate stages, an always-run post block, the approved deploy."""
        gate_stages = "".join(
            f"""\
                stage('{spec.name}') {{
                    steps {{
{_gate_sh(spec)}\
                    }}
                }}
"""
            for spec in plan.gates
        )
        # catchError marks the build FAILURE and goes on, so the reports are still published.
        always = "".join(
            f"""\
                    catchError(message: 'always-run stage {spec.name} failed') {{
                        sh '{VENV}{RUN_GATE.format(gate=spec.name)}'
                    }}
"""
            for spec in plan.always
        )
        checks = "".join(
            f"""\
                stage('{name}') {{
                    steps {{
                        // {what}: a failure marks the build FAILURE.
                        catchError(message: '{name} failed', stageResult: STAGE_FAILED) {{
                            sh '''
                                {PIP_CACHE_EXPORT}
                                . .venv/bin/activate
                                {command}
                            '''
                        }}
                    }}
                }}
"""
            for name, command, what in CHECKS
        )
        report_dir, _, report_file = HTML_REPORT.rpartition("/")
        archived = ",".join(f"{path}**" for path in CARRIED)
        stashed = ",".join(f"{path}**" for path in reversed(CARRIED))  # same set, unique literal
        return f"""\
{header("//")}
// Multibranch pipeline: every branch and pull request runs the gates in one workspace; only the
// default branch, after a person approves, deploys. No agent is held while the approval waits.

// The verdict's reports and artifacts, carried from the gates' workspace to the deploy stage's.
final String VERDICT_STASH = 'verdict'
// How a failed tests or typecheck stage shows (the build is marked FAILURE too).
final String STAGE_FAILED = 'FAILURE'

pipeline {{
    agent none
    options {{
        buildDiscarder(logRotator(numToKeepStr: '30'))
        disableConcurrentBuilds()
        timestamps()
    }}
    environment {{
        // One run id for every stage of this build (gates/runner.py resolve_run_id).
        {RUN_ID_ENV} = "jenkins-${{env.BUILD_TAG}}"
        PIP_DISABLE_PIP_VERSION_CHECK = '1'
        // The audit gate asks pip-audit's online vulnerability service. On agents without
        // internet, point it at a local copy of the PyPA advisory database instead:
        // {ADVISORY_DB_ENV} = '/srv/advisory-db'
    }}
    stages {{
        stage('gates') {{
            agent any
            options {{
                timeout(time: 2, unit: 'HOURS')
            }}
            environment {{
                // The gate cache, per branch job and agent, outside the workspace. The run
                // history (history/, git-ignored) stays in the workspace, kept between builds
                // the same way; the feedback stage verifies its hash chain.
                {CACHE_DIR} = "${{env.WORKSPACE}}{GATE_CACHE_SUFFIX}"
                // Read only by builds of the default branch: a pull request's earlier commit
                // could write the entries its next commit would reuse.
                {NO_CACHE} = "${{env.BRANCH_NAME == '{plan.default_branch}' ? 'false' : 'true'}}"
                // pip's download cache beside it, one folder per digest of the lock.
                {PIP_CACHE_ROOT} = "${{env.WORKSPACE}}{PIP_CACHE_SUFFIX}"
                // The tests install every optional extra, so that no test skips for one.
                {TEST_EXTRAS_ENV} = 'on'
            }}
            stages {{
                stage('install') {{
                    steps {{
                        sh '''
                            {PIP_CACHE_EXPORT}
                            python3 -m venv --clear .venv
                            . .venv/bin/activate
                            {INSTALL}
                        '''
                    }}
                }}
                stage('{CHECK_JOB}') {{
                    steps {{
                        sh '{VENV}{CHECK_CONFIG}'
                        sh '{VENV}{CHECK_DEPLOY}'
                    }}
                }}
{gate_stages}\
                // The pull request's own code (its tests, its noxfile) runs in this workspace
                // and this .venv only after every gate has judged: run first, it could change
                // the tools and libraries the gates then trust (a .pth file in site-packages
                // runs even under python -I) or write their reports. The venv is made anew
                // (--clear) each build, so nothing an earlier build's code left is reused.
{checks}\
            }}
            post {{
                // Runs whether the gates passed or failed: a red build needs its report most.
                always {{
{always}\
                    junit allowEmptyResults: true, testResults: '{JUNIT_XML}'
                    recordIssues(
                        enabledForFailure: true,
                        skipPublishingChecks: true,
                        tools: [sarif(id: 'policy-gates', name: 'Policy gates', pattern: '{plan.sarif}')]
                    )
                    archiveArtifacts allowEmptyArchive: true, artifacts: '{archived}', fingerprint: true
                    // The report links only to files beside it (report.css): Jenkins' default
                    // Content-Security-Policy allows them, and no inline style or script.
                    publishHTML(target: [
                        reportName: '{HTML_REPORT_NAME}',
                        reportDir: '{report_dir}',
                        reportFiles: '{report_file}',
                        allowMissing: true,
                        alwaysLinkToLastBuild: true,
                        keepAll: true
                    ])
                }}
                success {{
                    stash name: VERDICT_STASH, includes: '{stashed}'
                }}
            }}
        }}
        stage('deploy') {{
            // The approval is asked before an agent is allocated; then a fresh workspace gets the
            // checkout and the verdict's reports and artifacts.
            agent any
            when {{
                beforeAgent true
                beforeInput true
                // The branch's name is also compared with BRANCH_NAME for the gate cache.
                // groovylint-disable-next-line DuplicateStringLiteral
                branch '{plan.default_branch}'
            }}
            options {{
                timeout(time: 3, unit: 'DAYS')
            }}
            input {{
                message 'Verify the attestation and promote this model to {DEPLOY_ENVIRONMENT}?'
                ok 'Deploy'
                submitter '{APPROVERS}'
            }}
            environment {{
                // The registry audit log's head (a secret-text credential, so that no pull
                // request or build parameter sets it): every read of the registry refuses a log
                // cut behind it; a missing credential fails the stage, an empty one the first
                // command.
                {REGISTRY_HEAD_ENV} = credentials('{REGISTRY_HEAD_CREDENTIAL}')
{_deploy_environment(plan.keys)}\
                // Fail closed: the release key signs what this stage computes, so nothing is
                // reused from the gate cache (this workspace may be the gates' own).
                {NO_CACHE} = 'yes'  // any value but 0, false, no or empty
            }}
            steps {{
                unstash VERDICT_STASH
{_deploy_steps(plan.keys, plan.zap)}\
            }}
            post {{
                success {{
                    // The registry's new head, to pin next (also in the log).
                    archiveArtifacts artifacts: '{REGISTRY_HEAD_FILE}'
                }}
            }}
        }}
    }}
}}
"""


def _gate_sh(spec: GateSpec) -> str:
    """The gate's sh step; on a pull request (CHANGE_TARGET set) a ``base_branch`` gate first
    takes the target branch's policy (the agent's git must be able to fetch from origin)."""
    if not spec.base_branch:
        return f"                        sh '{VENV}{RUN_GATE.format(gate=spec.name)}'\n"
    pad = " " * 32
    lines = "".join(f"{pad}{line}\n" for line in base_branch_shell(CHANGE_TARGET))
    return f"""\
                        // A pull request: the target branch's policy names the approvers,
                        // the approved data lock and the rules a policy change is compared
                        // with (GATES_BASE_POLICY).
                        sh '''
                            if [ -n "${{{CHANGE_TARGET}:-}}" ]; then
{lines}\
                            fi
                            {VENV}{RUN_GATE.format(gate=spec.name)}
                        '''
"""


def _deploy_sh(zap: ZapScan | None) -> str:
    scan = ""
    if zap is not None:
        scan = (
            "    # OWASP ZAP API scan of the verified service on loopback ([serve.dast].zap): a WARN\n"
            "    # or FAIL alert, a service that does not start or an agent without docker fails\n"
            "    # the stage, and nothing is promoted.\n"
            + "".join(f"    {line}\n" for line in zap.shell().splitlines())
        )
    return f"""\
sh '''
    python3 -m venv .venv
    . .venv/bin/activate
    {INSTALL}
    {CHECK_PIN}
    {SIGN_RELEASE}
{scan}\
    {DEPLOY}
    {WRITE_HEAD}
    cat {REGISTRY_HEAD_FILE}
'''
"""


def _deploy_environment(service: KeyService | None) -> str:
    if service is None:
        return f"""\
                // The only stage that sees the release signing key (a secret-text credential).
                {SIGNING_KEY_ENV} = credentials('{SIGNING_KEY_CREDENTIAL}')
"""
    lines = "".join(
        f"                {name} = credentials('{name.lower().replace('_', '-')}')\n"
        for name in service.local_keys
    )
    if lines:
        lines = (
            "                // The other half of the hybrid signature, which the key service does\n"
            "                // not hold (a secret-text credential).\n" + lines
        )
    if service.provider == "aws-kms":
        lines += f"                AWS_REGION = '{service.region}'\n"
    return lines


def _deploy_steps(service: KeyService | None, zap: ZapScan | None) -> str:
    """The deploy commands, inside the key service's credential binding when there is one."""
    indent = " " * 16
    if service is None:
        return "".join(f"{indent}{line}\n" for line in _deploy_sh(zap).splitlines())
    if service.provider == "aws-kms":
        comment = (
            "// Short-lived AWS credentials: an AWS Credentials plugin credential that assumes\n"
            "// the signing role (kms:Sign and kms:GetPublicKey on the release key only).\n"
        )
        binding = (
            "withCredentials([aws(\n"
            f"    credentialsId: '{AWS_CREDENTIAL}',\n"
            "    accessKeyVariable: 'AWS_ACCESS_KEY_ID',\n"
            "    secretKeyVariable: 'AWS_SECRET_ACCESS_KEY'\n"
            ")]) {"
        )
    else:
        comment = (
            "// A short-lived Vault token (VAULT_TOKEN, VAULT_ADDR) from the HashiCorp Vault\n"
            "// plugin's AppRole credential, whose policy may only sign with the Transit key.\n"
        )
        binding = (
            "withCredentials([[\n"
            "    $class: 'VaultTokenCredentialBinding',\n"
            f"    credentialsId: '{VAULT_CREDENTIAL}',\n"
            f"    vaultAddr: env.{VAULT_ADDR_VAR}\n"
            "]]) {"
        )
    inner = "".join(f"{indent}    {line}\n" for line in _deploy_sh(zap).splitlines())
    head = "".join(f"{indent}{line}\n" for line in comment.splitlines())
    opening = "".join(f"{indent}{line}\n" for line in binding.splitlines())
    return f"{head}{opening}{inner}{indent}}}\n"
