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
    MAKE_REPORTS,
    NO_CACHE,
    PIP_CACHE_KEY_FILES,
    REGISTRY_HEAD_CREDENTIAL,
    REGISTRY_HEAD_ENV,
    REGISTRY_HEAD_FILE,
    ROTATE,
    ROTATE_FROM_CREDENTIAL,
    ROTATE_FROM_ENV,
    ROTATE_JOB,
    ROTATE_PARAMETER,
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
    one_line,
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
# The run history (history/, the folder of [feedback].history's default), kept between builds
# beside the workspace like the gate cache: every stage starts from an emptied workspace, so it
# cannot stay inside. Copied in before the feedback stage and back after it.
HISTORY_SUFFIX = "@gates-history"
HISTORY_KEPT = "GATES_HISTORY_KEPT"
# The agent label the generated file's comment suggests for the verdict and deploy stages:
# agents that never run a pull request's code (docs/ci.md). Set TRUSTED_AGENT to it (or another
# label) and run `python -m gates ci render`: those two stages then ask for that label; None
# keeps `agent any`, which runs on a single-agent Jenkins.
TRUSTED_LABEL = "gates-trusted"
TRUSTED_AGENT: str | None = None
# The gates' reports and artifacts, carried from the gates' workspace to the verdict's.
GATES_STASH = "GATES_STASH"
CARRIED_FILES = "CARRIED_FILES"
# Where the verdict and the deploy stage run: a workspace the pull request's code has not
# touched. Emptied, checked out by Jenkins' own SCM configuration (not a .git/config a build
# could have written), a new venv installed from the hashed lock, pip's caches unused.
FRESH_CHECKOUT = (
    "deleteDir()",
    "checkout scm",
)
# pip's caches unused: the gates' workspace could write them, and the home folder's default.
FRESH_INSTALL = f"{INSTALL} --no-cache-dir"
# The carried folders hold regular files and folders only: a symlink there could point a later
# write (the verdict's report, the feedback's) at a file outside them. A Groovy constant.
NO_LINKS = "NO_LINKS"
NO_LINKS_SH = """\
    mkdir -p reports artifacts
    if find reports artifacts ! -type f ! -type d | grep .; then
        echo "error: the carried reports/ or artifacts/ hold the links or special files above" >&2
        exit 1
    fi
"""


class JenkinsRenderer(CiRenderer):
    """Renders the declarative Jenkinsfile."""

    system = "jenkins"
    path = PurePosixPath("Jenkinsfile")

    def render(self, plan: CiPlan) -> str:
        """The pipeline: the gates in one workspace, the verdict and the feedback in a fresh
        one, then the approved deploy in a fresh one again."""
        cached = plan.cached
        gate_stages = "".join(
            f"""\
                stage('{spec.name}') {{
                    steps {{
                        // A failed gate marks the build FAILURE; the later gates then skip
                        // (their prerequisite did not pass) and the verdict fails.
                        catchError(message: '{spec.name} failed', stageResult: STAGE_FAILED) {{
{_gate_sh(spec)}\
                        }}
{_carry(spec is cached[-1])}\
                    }}
                }}
"""
            for spec in cached
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
        carried = ",".join(f"{path}**" for path in CARRIED)
        verdict = plan.verdict
        fresh = "".join(f"                {step}\n" for step in FRESH_CHECKOUT)
        return f"""\
{header("//")}
// Multibranch pipeline: every branch and pull request runs the gates in one workspace, and the
// verdict in a fresh one that the pull request's code has not touched; only the default
// branch, after a person approves, deploys. No agent is held while the approval waits.
//
// The verdict and deploy stages trust their agent's home folder (~/.gitconfig, ~/.local,
// ~/.config/pip), which code run by a pull request's gates and tests on the same agent, as the
// same user, can write: give them agents that never build pull requests, or ephemeral ones
// (TRUSTED_AGENT = '{TRUSTED_LABEL}' in gates/ci/jenkins.py for `agent {{ label '{TRUSTED_LABEL}' }}`;
// docs/ci.md).

// The gates' reports and artifacts, carried from the gates' workspace to the verdict's.
final String {GATES_STASH} = 'gate-inputs'
// What both stashes carry and the verdict stage archives.
final String {CARRIED_FILES} = '{carried}'
// Run on the carried files, before anything reads them.
final String {NO_LINKS} = '''
{NO_LINKS_SH}'''
// The verdict's reports and artifacts, carried from the verdict's workspace to the deploy stage's.
final String VERDICT_STASH = 'verdict'
// How a failed gate, tests or typecheck stage shows (the build is marked FAILURE too).
final String STAGE_FAILED = 'FAILURE'

pipeline {{
    agent none
    options {{
        buildDiscarder(logRotator(numToKeepStr: '30'))
        disableConcurrentBuilds()
        timestamps()
    }}
    parameters {{
        // Only asks: the stage still waits for a release approver (docs/keys.md).
        booleanParam(
            name: '{ROTATE_PARAMETER}',
            defaultValue: false,
            description: 'Re-sign the registry under the new release key first (default branch only)'
        )
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
{_rotate_stage(plan)}\
        stage('gates') {{
            agent any
            options {{
                // The workspace is emptied and checked out anew below: an earlier build of this
                // pull request ran its code here and could have left files, .git/config or
                // .git/hooks behind.
                skipDefaultCheckout()
                timeout(time: 2, unit: 'HOURS')
            }}
            environment {{
                // The gate cache, per branch job and agent, outside the workspace.
                {CACHE_DIR} = "${{env.WORKSPACE}}{GATE_CACHE_SUFFIX}"
                // Read only by builds of the default branch: a pull request's earlier commit
                // could write the entries its next commit would reuse.
                // groovylint-disable-next-line DuplicateStringLiteral
                {NO_CACHE} = "${{env.BRANCH_NAME == '{plan.default_branch}' ? 'false' : 'true'}}"
                // pip's download cache beside it, one folder per digest of the lock.
                {PIP_CACHE_ROOT} = "${{env.WORKSPACE}}{PIP_CACHE_SUFFIX}"
                // The tests install every optional extra, so that no test skips for one.
                {TEST_EXTRAS_ENV} = 'on'
            }}
            stages {{
                stage('install') {{
                    steps {{
{_indent(fresh, 8)}\
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
                // and this .venv only after every gate here has run and its reports are
                // stashed; the verdict does not run here (a .pth file in site-packages runs
                // even under python -I, and the train gate runs the pull request's code too).
{checks}\
            }}
        }}
        stage('{verdict.name}') {{
            // {one_line(verdict.summary)}
            // A fresh workspace: nothing that the gates' workspace ran (the pull request's
            // training code, its tests) can change the code, the venv or the .git/config the
            // verdict runs with. It reads only the carried reports and artifacts, and re-checks
            // them against the checkout: this run's id, the inputs' digests, the artifacts'
            // bytes (docs/ci.md "Jenkins: the verdict's own workspace").
            {_trusted_agent(again=True)}
            options {{
                skipDefaultCheckout()
                timeout(time: 60, unit: 'MINUTES')
            }}
            environment {{
                // The run history, beside this workspace (kept between builds on this agent);
                // the feedback stage verifies its hash chain.
                {HISTORY_KEPT} = "${{env.WORKSPACE}}{HISTORY_SUFFIX}"
            }}
            steps {{
{fresh}\
                sh '''
                    python3 -m venv --clear .venv
                    . .venv/bin/activate
                    {FRESH_INSTALL}
                '''
                unstash {GATES_STASH}
                sh {NO_LINKS}
{_gate_sh(verdict, pad=16)}\
            }}
            post {{
                // Runs whether the verdict passed or failed: a red build needs its report most.
                always {{
                    sh 'rm -rf history && if [ -d "${HISTORY_KEPT}" ]; then cp -R "${HISTORY_KEPT}" history; fi'
{always}\
                    sh 'if [ -d history ]; then rm -rf "${HISTORY_KEPT}" && cp -R history "${HISTORY_KEPT}"; fi'
                    junit allowEmptyResults: true, testResults: '{JUNIT_XML}'
                    recordIssues(
                        enabledForFailure: true,
                        skipPublishingChecks: true,
                        tools: [sarif(id: 'policy-gates', name: 'Policy gates', pattern: '{plan.sarif}')]
                    )
                    archiveArtifacts allowEmptyArchive: true, artifacts: {CARRIED_FILES}, fingerprint: true
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
                    stash name: VERDICT_STASH, includes: {CARRIED_FILES}
                }}
            }}
        }}
        // The deploy stage binds what the rotate stage binds (the credentials, the approvers,
        // the head's file), each named where it is used.
        /* groovylint-disable DuplicateStringLiteral, DuplicateMapLiteral */
        stage('deploy') {{
            // The approval is asked before an agent is allocated; then a fresh workspace gets the
            // checkout and the verdict's reports and artifacts.
            {_trusted_agent(again=True)}
            when {{
                beforeAgent true
                beforeInput true
                // The branch's name is also compared with BRANCH_NAME for the gate cache.
                // groovylint-disable-next-line DuplicateStringLiteral
                branch '{plan.default_branch}'
                // Every condition must hold: a failed gate, test or typecheck stage marks the
                // build FAILURE (catchError) but lets the later stages run; no deploy then.
                expression {{ currentBuild.currentResult == 'SUCCESS' }}
            }}
            options {{
                skipDefaultCheckout()
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
                // reused from the gate cache (nor pip's: --no-cache-dir).
                {NO_CACHE} = 'yes'  // any value but 0, false, no or empty
            }}
            steps {{
                // This workspace may be the gates' own, reused: emptied and checked out anew.
{fresh}\
                unstash VERDICT_STASH
                sh {NO_LINKS}
{_deploy_steps(plan.keys, plan.zap)}\
            }}
            post {{
                success {{
                    // The registry's new head, to pin next (also in the log).
                    archiveArtifacts artifacts: '{REGISTRY_HEAD_FILE}'
                }}
            }}
        }}
        /* groovylint-enable DuplicateStringLiteral, DuplicateMapLiteral */
    }}
}}
"""


def _trusted_agent(*, again: bool = False) -> str:
    """The rotate, verdict and deploy stages' agent: ``TRUSTED_AGENT``'s label, else any agent."""
    if TRUSTED_AGENT is None:
        return "agent any"
    # The rotate stage names it first; the verdict and deploy stages again (CodeNarc counts
    # repeated literals).
    disable = (
        "// groovylint-disable-next-line DuplicateStringLiteral\n            " if again else ""
    )
    return f"{disable}agent {{ label '{TRUSTED_AGENT}' }}"


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(f"{pad}{line}\n" if line else "\n" for line in text.splitlines())


def _carry(last: bool) -> str:
    """After the last gate before the verdict: stash the reports and artifacts for the verdict
    (before the pull request's tests run here). Empty when a gate failed: the verdict then
    finds the reports missing."""
    if not last:
        return ""
    return (
        "                        // The verdict's inputs, carried to its own workspace.\n"
        f"                        stash name: {GATES_STASH}, includes: {CARRIED_FILES}, "
        "allowEmpty: true\n"
    )


def _gate_sh(spec: GateSpec, pad: int = 28) -> str:
    """The gate's sh step, indented ``pad`` spaces; on a pull request (CHANGE_TARGET set) a
    ``base_branch`` gate first takes the target branch's policy (the agent's git must be able
    to fetch from origin, as Jenkins' checkout configured it)."""
    at = " " * pad
    if not spec.base_branch:
        return f"{at}sh '{VENV}{RUN_GATE.format(gate=spec.name)}'\n"
    # The script's lines start at the sh step's own column: the fetch stays within the 120
    # columns npm-groovy-lint allows at the depth of a stage's catchError block.
    lines = "".join(f"{at}    {line}\n" for line in base_branch_shell(CHANGE_TARGET))
    return f"""\
{at}// A pull request: the target branch's policy names the approvers,
{at}// the approved data lock and the rules a policy change is compared
{at}// with (GATES_BASE_POLICY).
{at}sh '''
{at}if [ -n "${{{CHANGE_TARGET}:-}}" ]; then
{lines}\
{at}fi
{at}{VENV}{RUN_GATE.format(gate=spec.name)}
{at}'''
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
    export PIP_NO_CACHE_DIR=1
    python3 -m venv --clear .venv
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


def _rotate_stage(plan: CiPlan) -> str:
    """Re-sign the registry under the new release key: first, on the default branch, asked for
    with the build parameter and approved like a deployment; before the gates, whose cv gate
    cannot trust the champion until it is done (docs/keys.md "Rotating the release key")."""
    fresh = "".join(f"                {step}\n" for step in FRESH_CHECKOUT)
    old = "".join(
        f"                {name} = credentials('{_credential(name)}')\n"
        for name in plan.rotate_from
    )
    script = f"""\
sh '''
    export PIP_NO_CACHE_DIR=1
    python3 -m venv --clear .venv
    . .venv/bin/activate
    {INSTALL}
    {CHECK_PIN}
    {ROTATE}
    {MAKE_REPORTS}
    {WRITE_HEAD}
    cat {REGISTRY_HEAD_FILE}
'''
"""
    return f"""\
        stage('{ROTATE_JOB}') {{
            // Started with the build parameter {ROTATE_PARAMETER} on the default branch; asked
            // before an agent is allocated. The old public key's PEM is a secret-text
            // credential, never a file of the tree (a pull request controls keys/).
            {_trusted_agent()}
            when {{
                beforeAgent true
                beforeInput true
                branch '{plan.default_branch}'
                expression {{ params.{ROTATE_PARAMETER} }}
            }}
            options {{
                skipDefaultCheckout()
                timeout(time: 1, unit: 'DAYS')
            }}
            input {{
                message 'Re-sign the registry in {DEPLOY_ENVIRONMENT} under the new release key?'
                ok 'Rotate'
                submitter '{APPROVERS}'
            }}
            environment {{
                {REGISTRY_HEAD_ENV} = credentials('{REGISTRY_HEAD_CREDENTIAL}')
{_deploy_environment(plan.keys, again=True)}\
{old}\
                {NO_CACHE} = 'yes'
            }}
            steps {{
{fresh}\
{_bound_steps(plan.keys, script)}\
            }}
            post {{
                success {{
                        archiveArtifacts artifacts: '{REGISTRY_HEAD_FILE}'
                }}
            }}
        }}
"""


def _credential(name: str) -> str:
    """The Jenkins credential id of an environment variable: lower case, dashes."""
    if name == ROTATE_FROM_ENV:
        return ROTATE_FROM_CREDENTIAL
    return name.lower().replace("_", "-")


def _deploy_environment(service: KeyService | None, *, again: bool = False) -> str:
    if again and service is None:
        return f"""\
                // The new release key's private half (a secret-text credential).
                {SIGNING_KEY_ENV} = credentials('{SIGNING_KEY_CREDENTIAL}')
"""
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
    return _bound_steps(service, _deploy_sh(zap))


def _bound_steps(service: KeyService | None, script: str) -> str:
    """``script`` (an sh step), inside the key service's credential binding when there is one."""
    indent = " " * 16
    if service is None:
        return "".join(f"{indent}{line}\n" for line in script.splitlines())
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
    inner = "".join(f"{indent}    {line}\n" for line in script.splitlines())
    head = "".join(f"{indent}{line}\n" for line in comment.splitlines())
    opening = "".join(f"{indent}{line}\n" for line in binding.splitlines())
    return f"{head}{opening}{inner}{indent}}}\n"
