"""The unsafe-deserialization AST check: every loader, every alias, the one exempt module."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from gates.unsafe_load import BANDIT_BAD_PROTOCOLS, BANDIT_KEYWORDS, SETTINGS, scan, scan_source


def _calls(source: str) -> list[tuple[str, str, int]]:
    return [(u.rule, u.call, u.line) for u in scan_source(source, path="m.py")]


@pytest.mark.parametrize(
    ("source", "call"),
    [
        ("import pickle\npickle.load(f)\n", "pickle.load"),
        ("import pickle\npickle.loads(b)\n", "pickle.loads"),
        ("from pickle import loads\nloads(b)\n", "pickle.loads"),
        ("from pickle import loads as l\nl(b)\n", "pickle.loads"),
        ("import pickle as p\np.Unpickler(f).load()\n", "pickle.Unpickler"),
        ("import joblib\njoblib.load('m')\n", "joblib.load"),
        ("import joblib as jl\njl.load('m')\n", "joblib.load"),
        ("from joblib import load\nload('m')\n", "joblib.load"),
        ("from sklearn.externals import joblib\njoblib.load('m')\n", "joblib.load"),
        ("import pandas as pd\npd.read_pickle('x')\n", "pandas.read_pickle"),
        ("import pandas\npandas.read_pickle('x')\n", "pandas.read_pickle"),
        ("from pandas import read_pickle\nread_pickle('x')\n", "pandas.read_pickle"),
        ("import torch\ntorch.load('m.pt')\n", "torch.load"),
        ("import numpy as np\nnp.load('a.npy', allow_pickle=True)\n", "numpy.load"),
        ("import shelve\nshelve.open('db')\n", "shelve.open"),
        ("import marshal\nmarshal.loads(b)\n", "marshal.loads"),
    ],
)
def test_unsafe_loaders_are_flagged_through_aliases(source: str, call: str) -> None:
    assert _calls(source) == [("SAST101", call, 2)]


def test_any_dill_use_is_flagged() -> None:
    found = _calls("import dill as d\nd.loads(b)\nfrom dill import load\n")
    assert [(rule, line) for rule, _, line in found] == [
        ("SAST102", 1),
        ("SAST102", 2),
        ("SAST102", 3),
    ]


def test_read_pickle_as_a_method_is_flagged() -> None:
    assert _calls("frame = get()\nframe.read_pickle('x')\n")[0][0] == "SAST101"


@pytest.mark.parametrize(
    "trusted",
    [
        "sio.get_untrusted_types(file='m.skops')",
        "get_untrusted_types(data=b)",
        "types",
        "[t for t in types]",
        "True",
    ],
)
def test_skops_load_with_a_computed_trusted_list_is_flagged(trusted: str) -> None:
    source = f"import skops.io as sio\nfrom skops.io import get_untrusted_types\nsio.load('m', trusted={trusted})\n"
    assert _calls(source) == [("SAST103", "skops.io.load", 3)]


@pytest.mark.parametrize(
    "source",
    [
        "import skops.io as sio\nsio.load('m')\n",
        "import skops.io as sio\nsio.loads(b, trusted=['sklearn.tree._tree.Tree'])\n",
        "from skops import io\nio.load('m', trusted=())\n",
        "import numpy as np\nnp.load('a.npy')\n",
        "import numpy as np\nnp.load('a.npy', allow_pickle=False)\n",
        "import pickle\npickle.dumps(obj)\n",
        "import json\njson.load(f)\n",
        "TEXT = 'joblib.load(path)'\n",
    ],
)
def test_safe_calls_pass(source: str) -> None:
    assert _calls(source) == []


def test_skops_kwargs_expansion_is_flagged() -> None:
    assert _calls("from skops.io import loads\nloads(b, **options)\n")[0][0] == "SAST103"


def test_only_the_named_loader_module_is_exempt(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    code = "import pickle\npickle.loads(b)\n"
    (tmp_path / "pkg" / "persist.py").write_text(code, encoding="utf-8")
    (tmp_path / "pkg" / "other.py").write_text(code, encoding="utf-8")
    (tmp_path / "pkg" / "broken.py").write_text("def f(:\n", encoding="utf-8")
    files = sorted((tmp_path / "pkg").glob("*.py"))
    found = scan(files, root=tmp_path, allowed=["pkg/persist.py"])
    assert [(u.rule, u.path) for u in found] == [
        ("SAST100", "pkg/broken.py"),
        ("SAST101", "pkg/other.py"),
    ]


@pytest.mark.slow  # the AST check over the whole project
def test_the_projects_own_loader_is_the_only_deserializer() -> None:
    repo = Path(__file__).resolve().parents[2]
    files = sorted((repo / "pipeline").rglob("*.py")) + sorted((repo / "gates").rglob("*.py"))
    assert scan(files, root=repo, allowed=["pipeline/persist.py"]) == []
    # persist.py computes its trusted list from a reviewed table; outside the exemption it is flagged.
    flagged = scan([repo / "pipeline" / "persist.py"], root=repo, allowed=[])
    assert [u.rule for u in flagged] == ["SAST103"]


@pytest.mark.parametrize(
    "source",
    ["__import__('pickle').loads(b)\n", "import importlib\nimportlib.import_module('dill')\n"],
)
def test_dynamic_imports_of_pickle_like_modules_are_flagged(source: str) -> None:
    assert [rule for rule, _, _ in _calls(source)] == ["SAST102"]


def test_dynamic_import_of_other_modules_passes() -> None:
    assert _calls("import importlib\nimportlib.import_module('json')\n") == []


def test_every_keyword_bandit_reads_by_name_has_a_rule() -> None:
    # SAST106's table is read off the installed bandit's plugin sources: a keyword a newer
    # bandit reads (and so could be hidden from it through **mapping) fails here until listed.
    spec = importlib.util.find_spec("bandit")  # found, not imported
    assert spec is not None
    assert spec.origin is not None
    patterns = [
        r'(?:check|get)_call_arg_value\(\s*"(\w+)"',
        r'keywords\.get\(\s*"(\w+)"',
        r'\.arg == "(\w+)"',
        r'"arg", None\) == "(\w+)"',
        r'"(\w+)"(?: not)? in context\.call_keywords',
    ]
    read: set[str] = set()
    for plugin in (Path(spec.origin).parent / "plugins").glob("*.py"):
        text = plugin.read_text(encoding="utf-8")
        read.update(k for p in patterns for k in re.findall(p, text))
        for names in re.findall(r"\.arg in \(([^)]*)\)", text):
            read.update(re.findall(r'"(\w+)"', names))
    # shell= is SAST104's, Loader= and weights_only= SAST101's (bandit's B106 matches keyword
    # names against a password pattern: a dict spelled out is its B105, so it is not listed).
    assert read == set(BANDIT_KEYWORDS) | {"shell", "Loader", "weights_only"}


def test_settings_are_keywords_bandit_reads_and_its_bad_protocols() -> None:
    # SAST106's settings (session.verify = False ...) are judged as the keyword bandit reads
    # them as, with its test id; the protocols bandit's B502 calls bad are re-read from it.
    assert {keyword for keyword, _ in SETTINGS.values()} <= set(BANDIT_KEYWORDS)
    spec = importlib.util.find_spec("bandit")
    assert spec is not None
    assert spec.origin is not None
    text = (Path(spec.origin).parent / "plugins" / "insecure_ssl_tls.py").read_text("utf-8")
    listed = re.search(r'"bad_protocol_versions": \[(.*?)\]', text, re.DOTALL)
    assert listed is not None
    assert set(re.findall(r'"(\w+)"', listed.group(1))) == BANDIT_BAD_PROTOCOLS


@pytest.mark.parametrize(
    "source",
    [
        'import os\nos.environ.update({"FLASK_DEBUG": "1"})\n',
        'import os\nos.environ.update(**{"FLASK_DEBUG": "1"})\n',
        'import os\nos.environ |= {"FLASK_DEBUG": "1"}\n',
        'app.config.from_mapping({"FLASK_DEBUG": "1"})\n',
        'import os\nos.environ.update(FLASK_DEBUG="1")\n',
    ],
)
def test_a_debug_variable_in_a_mapping_handed_to_update_is_one_finding(source: str) -> None:
    # The dict display and the .update()/|= it is handed to both read the key: one finding.
    found = scan_source(source, path="app.py")
    assert [(f.rule, f.call) for f in found] == [("SAST106", "FLASK_DEBUG")], found
