"""Planted attacks, issue 14 item 3: unsafe loaders reached under another name.

Each case is code a contributor could add to get a pickle (or another loader that runs code
from its input) past the sast gate. The line marked ``# <-`` is where the finding must point.
Most cases run in-process on the AST rule (``gates.unsafe_load``); one real sast gate run
(bandit included) over a planted tree holding several of them proves the gate itself FAILS and
names file and line, and that bandit's own pickle/yaml/exec checks cannot be switched off from
inside the tree. Safe code (the project's own patterns) must not be flagged.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gates.base import RunContext, Severity, Status
from gates.sast import SastGate
from gates.unsafe_load import UnsafeLoad, scan, scan_source
from tests.conftest import Project
from tests.project_support import copy_project

MARK = "# <-"


@dataclass(frozen=True)
class Case:
    id: str
    rule: str
    source: str

    @property
    def code(self) -> str:
        return textwrap.dedent(self.source).lstrip("\n")

    @property
    def line(self) -> int:
        lines = self.code.splitlines()
        return next(n for n, text in enumerate(lines, 1) if MARK in text)


def _cases(text: str) -> list[Case]:
    """Blocks headed ``## <id> [<rule>]``; ``# ---`` lines only group them."""
    cases = []
    for block in text.split("\n## ")[1:]:
        header, _, body = block.partition("\n")
        name, _, rule = header.partition(" ")
        code = "\n".join(line for line in body.splitlines() if not line.startswith("# ---"))
        cases.append(Case(name, rule, code.strip("\n") + "\n"))
    return cases


BYPASSES = _cases(
    """
# --- the seven from the issue

## import_module SAST102
import importlib
importlib.import_module("joblib").load(path)  # <-

## alias_assignment SAST101
import joblib
loader = joblib.load
loader(path)  # <-

## getattr_literal SAST101
import joblib
getattr(joblib, "load")(path)  # <-

## sys_modules SAST101
import sys
sys.modules["pickle"].loads(blob)  # <-

## builtins_import SAST102
import builtins
builtins.__import__("pickle").loads(blob)  # <-

## kwargs_dict SAST101
import numpy as np
np.load(path, **{"allow_pickle": True})  # <-

## yaml_unsafe_load SAST101
import yaml
yaml.unsafe_load(text)  # <-

# --- names: aliases, unpacking, chains, scopes

## from_import_alias SAST101
from pickle import loads as parse_config
parse_config(blob)  # <-

## shadowing_alias SAST101
import pickle as json
json.loads(blob)  # <-

## tuple_unpacking SAST101
import json, pickle
decode, restore = json.loads, pickle.loads
restore(blob)  # <-

## conditional_module SAST101
import json, pickle
codec = pickle if fast else json
codec.loads(blob)  # <-

## walrus SAST101
import joblib
if (load := joblib.load):  # <-
    pass

## submodule_chain SAST101
import numpy
numpy.lib.npyio.load(path, allow_pickle=True)  # <-

## pandas_io_pickle SAST101
from pandas.io.pickle import read_pickle as read_table
read_table(path)  # <-

## module_alias_used_in_function SAST101
import torch
LOAD = torch.load

def restore(path):
    return LOAD(path)  # <-

## global_statement SAST101
import joblib
LOADER = None

def configure():
    global LOADER
    LOADER = joblib.load  # <-

## class_attribute SAST101
import numpy as np

class Store:
    read = np.load

Store.read(path, allow_pickle=True)  # <-

## self_attribute SAST101
import numpy as np

class Store:
    def __init__(self):
        self.read = np.load

    def get(self, path):
        return self.read(path, allow_pickle=True)  # <-

## unpickler_subclass SAST101
import pickle

class Restricted(pickle.Unpickler):  # <-
    pass

## star_import SAST101
from pickle import *  # <-
loads(blob)

## try_cpickle SAST101
try:
    import cPickle as pickle
except ImportError:
    import pickle
pickle.load(handle)  # <-

# --- lookups by name

## getattr_concatenated SAST101
import pickle
getattr(pickle, "lo" + "ads")(blob)  # <-

## getattr_computed SAST102
import codecs, pickle
getattr(pickle, codecs.decode("ybnqf", "rot13"))(blob)  # <-

## import_computed_name SAST102
import base64, importlib
name = base64.b64decode("cGlja2xl").decode()
importlib.import_module(name).loads(blob)  # <-

## dunder_import_computed SAST102
__import__(settings["codec"]).loads(blob)  # <-

## module_dict SAST101
import pickle
vars(pickle)["loads"](blob)  # <-

## dunder_getattribute SAST101
import numpy as np
np.__getattribute__("load")(path, allow_pickle=True)  # <-

## globals_lookup SAST101
import pickle
globals()["pickle"].loads(blob)  # <-

## builtins_mapping SAST102
__builtins__["__import__"]("marshal").loads(blob)  # <-

## sys_modules_get SAST101
import sys
sys.modules.get("_pickle").loads(blob)  # <-

## pkgutil_resolve_name SAST102
import pkgutil
pkgutil.resolve_name("pickle:loads")(blob)  # <-

## frame_globals SAST102
import inspect
inspect.currentframe().f_globals["restore"](blob)  # <-

# --- wrappers

## functools_partial SAST101
import functools, joblib
restore = functools.partial(joblib.load, mmap_mode=None)  # <-

## partial_keyword_later SAST101
from functools import partial
import numpy as np
read = partial(np.load)
read(path, allow_pickle=True)  # <-

## attrgetter SAST101
import operator, joblib
operator.attrgetter("load")(joblib)(path)  # <-

## methodcaller SAST101
import operator, pickle
operator.methodcaller("loads", blob)(pickle)  # <-

## lambda_kwargs_wrapper SAST101
import numpy as np
read = lambda path, **options: np.load(path, **options)  # <-

## positional_flag SAST101
import numpy as np
np.load(path, None, True)  # <-

## dict_call_kwargs SAST101
import numpy as np
np.load(path, **dict(allow_pickle=True))  # <-

## loader_passed_to_map SAST101
import torch
models = list(map(torch.load, paths))  # <-

## module_in_container SAST102
import pickle
codecs = [pickle]  # <-
codecs[0].loads(blob)

## module_returned SAST102
import pickle

def codec():
    return pickle  # <-

## loader_as_default SAST101
import joblib

def restore(path, load=joblib.load):  # <-
    return load(path)

# --- other loaders and their arguments

## torch_load_default SAST101
import torch
torch.load(path)  # <-

## torch_weights_only_variable SAST101
import torch
torch.load(path, weights_only=SAFE)  # <-

## yaml_unsafe_loader_positional SAST101
import yaml
yaml.load_all(text, yaml.UnsafeLoader)  # <-

## yaml_computed_loader SAST101
import yaml
yaml.load(text, Loader=settings.loader)  # <-

## yaml_loader_subclass SAST101
import yaml

class Loader(yaml.SafeLoader):
    pass

yaml.load(text, Loader=Loader)  # <-

## yaml_full_load_alias SAST101
from yaml import full_load as parse
parse(text)  # <-

## ruamel_unsafe SAST101
from ruamel.yaml import YAML
YAML(typ="unsafe").load(text)  # <-

## jsonpickle_decode SAST101
import jsonpickle
jsonpickle.decode(text)  # <-

## shelve SAST101
import shelve as store
store.open("cache.db")  # <-

## marshal SAST101
from marshal import loads
loads(blob)  # <-

## skops_trusted_positional SAST103
import skops.io as sio
sio.load(path, sio.get_untrusted_types(file=path))  # <-

## sklearn_memory_cache SAST101
from sklearn.pipeline import Pipeline
Pipeline(steps, memory="data/cache")  # <-

## sklearn_fetch_cache SAST101
from sklearn.datasets import fetch_covtype
fetch_covtype(data_home="data")  # <-

## forking_pickler SAST101
from multiprocessing.reduction import ForkingPickler
ForkingPickler.loads(blob)  # <-

# --- code from strings and code objects

## exec_literal SAST101
exec("import pickle; pickle.loads(blob)")  # <-

## compile_literal SAST101
code = compile("import joblib; joblib.load(path)", "<x>", "exec")  # <-

## string_annotation SAST101
import pickle

def handler(blob: "pickle.loads(blob)"):  # <-
    pass

## eval_alias SAST104
run = eval  # <-
run(text)

## getattr_builtins_exec SAST104
import builtins
getattr(builtins, "exec")(text)  # <-

## compile_computed SAST104
code = compile(text, "<x>", "exec")  # <-

## function_from_code SAST104
import types
types.FunctionType(code, {})()  # <-

## sys_modules_write SAST102
import sys
sys.modules["json"] = sys.modules["pickle"]  # <-

# --- reaching modules and code another way

## import_module_keyword SAST102
import importlib
importlib.import_module(name="pickle").loads(blob)  # <-

## module_attribute_of_another_module SAST101
import logging.handlers
logging.handlers.pickle.loads(blob)  # <-

## os_sys_modules SAST101
import os
os.sys.modules["pickle"].loads(blob)  # <-

## import_internals SAST102
import importlib._bootstrap
importlib._bootstrap._gcd_import("pickle").loads(blob)  # <-

## walk_sys_modules SAST102
import sys
codec = [m for m in sys.modules.values() if m.__name__ == "pickle"][0]  # <-

## gc_search SAST102
import gc
codec = [o for o in gc.get_objects() if getattr(o, "__name__", "") == "pickle"][0]  # <-

## pydoc_locate SAST102
import pydoc
pydoc.locate("pickle.loads")(blob)  # <-

## entry_points SAST102
from importlib.metadata import entry_points
entry_points(group="codecs")["fast"].load()(blob)  # <-

## timeit_string SAST101
import timeit
timeit.timeit("import pickle; pickle.loads(blob)", number=1)  # <-

## runpy SAST104
import runpy
runpy.run_path("data/setup_data.py")  # <-

## doctest SAST104
import doctest
doctest.testmod()  # <-

## ctypes_c_api SAST104
import ctypes
ctypes.pythonapi.PyRun_SimpleString(b"import pickle")  # <-

## code_object_replace SAST104
def f():
    pass
g = f.__code__.replace(co_consts=consts)  # <-

## python_dash_c SAST101
import subprocess, sys
subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.load(sys.stdin.buffer)"])  # <-

## python_dash_c_constant SAST101
import subprocess, sys
CHILD = "import joblib; joblib.load('data/model.joblib')"
subprocess.run([sys.executable, "-c", CHILD])  # <-

## python_dash_m_pickle SAST101
import os
os.system("python3 -m pickle data/model.pkl")  # <-

## module_of_a_safe_function SAST101
import pickle
pickle.dumps.__self__.loads(blob)  # <-

## inspect_getmodule SAST102
import inspect, pickle
inspect.getmodule(pickle.dumps).loads(blob)  # <-

## rewritten_defaults SAST104
import numpy as np
np.load.__defaults__ = (None, True, True, "ASCII")  # <-
np.load(path)

## reexported_read_pickle SAST101
from pandas.io.api import read_pickle as read_table
read_table(path)  # <-

## nosec_does_not_hide_it SAST101
import pickle  # nosec B403
pickle.loads(blob)  # nosec B301 # <-

# --- red team: Python's option syntax, and code runners bandit does not know

## python_dash_m_attached SAST101
import subprocess, sys
subprocess.run([sys.executable, "-mpickle", "data/model.pkl"])  # nosec B603 # <-

## python_flags_then_m SAST101
import subprocess, sys
subprocess.run([sys.executable, "-Im", "pickle", "data/model.pkl"])  # nosec B603 # <-

## python_flags_then_m_attached SAST101
import subprocess
subprocess.run(["python3", "-Impickle", "data/model.pkl"])  # nosec B603 B607 # <-

## python_dash_c_attached SAST101
import subprocess, sys
subprocess.run([sys.executable, "-cimport joblib; joblib.load('m.joblib')"])  # nosec B603 # <-

## python_flags_then_c SAST101
import subprocess, sys
subprocess.run([sys.executable, "-Ic", "import joblib; joblib.load('m.joblib')"])  # nosec B603 # <-

## python_flags_then_c_computed SAST104
import subprocess, sys
subprocess.run([sys.executable, "-Ic", sys.argv[1]])  # nosec B603 # <-

## bdb_run SAST104
import bdb
bdb.Bdb().run(command)  # <-

## pdb_instance_run SAST104
import pdb
pdb.Pdb().runctx(command, {}, {})  # <-

## trace_run SAST104
import trace
trace.Trace(count=0, trace=0).run(command)  # <-

## profile_instance_run SAST104
import cProfile
with cProfile.Profile() as profiler:  # <-
    profiler.run(command)

## subinterpreter_run_string SAST104
import _xxsubinterpreters as interpreters
interpreters.run_string(interpreters.create(), command)  # <-

## site_addsitedir_pth SAST104
import site
site.addsitedir("pipeline/plugins")  # <-

# --- red team: the code the gates judge runs in their process (train, cv, risk and serve call
# pipeline/); patching gates.base.Outcome.judge from pipeline/model.py made cv PASS at accuracy
# 0.626 < 0.93, and the whole chain PASSED and signed

## judge_patched_through_sys_modules SAST105
import sys
host = sys.modules.get("gates.base")  # <-
host.Outcome.judge = classmethod(lambda cls, findings, **kw: None)

## judge_patched_through_import SAST105
from gates.base import Outcome
Outcome.judge = classmethod(lambda cls, findings, **kw: None)  # <-

## runner_patched_through_importlib SAST105
import importlib
importlib.import_module("gates.runner").run_gate = run  # <-

## verdict_reached_through_dunder_import SAST105
verdict = __import__("gates.verdict").verdict  # <-

# --- red team: shell=True that bandit's B602 does not see; it reports B603 instead, which a
# routine `# nosec B603` hides (the sast gate PASSED)

## shell_through_kwargs_dict SAST104
import subprocess
subprocess.run(command, check=True, **{"shell": True})  # nosec B603 # <-

## shell_through_kwargs_name SAST104
import subprocess
options = {"shell": True}
subprocess.run(command, check=True, **options)  # nosec B603 # <-

## shell_through_dict_call SAST104
import subprocess as sp
sp.Popen(command, **dict(shell=1))  # nosec B603 # <-

## shell_under_another_name SAST104
import subprocess
_run = subprocess.run
_run(command, check=True, shell=True)  # noqa: S604 # <-

## shell_through_partial SAST104
import functools, subprocess
functools.partial(subprocess.run, shell=True)(command)  # noqa: S604 # <-

## os_system_under_another_name SAST104
import os
_system = os.system  # <-
_system(command)

## shell_runner_passed_on SAST104
import subprocess
outputs = list(map(subprocess.getoutput, commands))  # <-

# --- red team: keyword arguments bandit reads only written out (B501 verify=, B201 debug=,
# B701 autoescape=, B202 filter=, B324 usedforsecurity=, B502 ssl_version=, B505 key_size=...):
# passed any other way, bandit sees nothing (the sast gate PASSED on each)

## verify_through_kwargs_dict SAST106
import requests
requests.get(url, **{"verify": False})  # <-

## verify_through_kwargs_name SAST106
import requests
options = {"verify": False, "timeout": 5}
requests.post(url, data=body, **options)  # <-

## verify_through_kwargs_to_requests_api SAST106
import requests.api
requests.api.get(url, **{"verify": False})  # <-

## verify_through_dict_call SAST106
import requests as r
r.get(url, **dict(verify=False))  # <-

## verify_through_dict_of_pairs SAST106
import requests
requests.get(url, **dict([("verify", False)]))  # <-

## verify_through_dict_copy SAST106
import requests
base = {"headers": headers}
requests.get(url, **dict(base, verify=False))  # <-

## verify_through_nested_unpacking SAST106
import requests
requests.get(url, **{**{"verify": False}})  # <-

## verify_through_dict_union SAST106
import requests
requests.get(url, **(defaults | {"verify": False}))  # <-

## verify_through_conditional SAST106
import requests
requests.get(url, **(options if strict else {"verify": False}))  # <-

## verify_key_is_a_name SAST106
import requests
KEY = "ver" "ify"
requests.get(url, **{KEY: False})  # <-

## verify_set_key_by_key SAST106
import requests
options = {}
options["timeout"] = 5
options["verify"] = False
requests.get(url, **options)  # <-

## verify_set_by_update SAST106
import requests
options = dict()
options.update(verify=False)
requests.get(url, **options)  # <-

## verify_set_by_update_dict SAST106
import requests
options = {}
options.update({"verify": False})
requests.get(url, **options)  # <-

## verify_set_by_setdefault SAST106
import requests
options = {}
options.setdefault("verify", False)
requests.get(url, **options)  # <-

## verify_set_in_a_nested_function SAST106
import requests

def fetch():
    options = {"headers": headers}

    def insecure():
        options["verify"] = False

    insecure()
    return requests.get(url, **options)  # <-

## verify_set_after_the_call SAST106
import requests

def fetch():
    options = {}
    for attempt in range(2):
        if attempt:
            return requests.get(url, **options)  # <-
        options["verify"] = False

## verify_filled_by_a_helper SAST106
import requests
options = {}
fill(options)
requests.get(url, **options)  # <-

## verify_through_an_alias_of_the_dict SAST106
import requests
options = {}
alias = options
alias["verify"] = False
requests.get(url, **options)  # <-

## verify_through_dict_comprehension SAST106
import requests
requests.get(url, **{k: False for k in ["verify"]})  # <-

## verify_through_wrapper_kwargs SAST106
import requests

def fetch(url, **kwargs):
    return requests.get(url, **kwargs)  # <-

## verify_through_self_attribute SAST106
import requests

class Client:
    def get(self, url):
        return requests.get(url, **self.options)  # <-

## verify_through_partial SAST106
import functools, requests
fetch = functools.partial(requests.get, verify=False)  # <-

## verify_through_partial_alias SAST106
from functools import partial as bind
import requests
fetch = bind(requests.get, **{"verify": False})  # <-

## verify_at_partial_call SAST106
import functools, requests
fetch = functools.partial(requests.get, url)
fetch(verify=False)  # <-

## verify_to_an_alias SAST106
import requests
get = requests.get
get(url, verify=False)  # <-

## verify_to_getattr SAST106
import requests
getattr(requests, "get")(url, verify=False)  # <-

## verify_to_a_module_alias SAST106
import requests
http = requests
http.get(url, verify=False)  # <-

## verify_to_httpx_client SAST106
import httpx
client = httpx.Client(**{"verify": False})  # <-

## verify_set_from_another_module SAST106
import requests
OPTIONS = {"headers": headers}  # a module's dict: `import m; m.OPTIONS["verify"] = False` elsewhere

def fetch():
    return requests.get(url, **OPTIONS)  # <-

## verify_set_through_globals SAST106
import requests
OPTIONS = {"headers": headers}
globals()["OPTIONS"]["verify"] = False
requests.get(url, **OPTIONS)  # <-

## verify_set_through_locals SAST106
import requests

def fetch():
    options = {"headers": headers}
    locals()["options"]["verify"] = False
    return requests.get(url, **options)  # <-

## verify_set_through_exec SAST106
import requests

def fetch():
    options = {"headers": headers}
    exec("options['verify'] = False")
    return requests.get(url, **options)  # <-

## verify_through_class_attribute SAST106
import requests

class Settings:
    OPTIONS = {"verify": False}

requests.get(url, **Settings.OPTIONS)  # <-

## verify_through_methodcaller SAST106
import operator, requests
fetch = operator.methodcaller("get", url, verify=False)
fetch(requests)  # <-

## flask_debug_through_kwargs SAST106
import flask
app = flask.Flask(__name__)
app.run(**{"debug": True})  # <-

## flask_debug_through_alias SAST106
import flask
run = flask.Flask(__name__).run
run(debug=True)  # <-

## jinja2_autoescape_through_kwargs SAST106
from jinja2 import Environment
env = Environment(**{"autoescape": False})  # <-

## tarfile_filter_through_kwargs SAST106
import tarfile
with tarfile.open(path) as archive:
    archive.extractall(target, **{"filter": "fully_trusted"})  # <-

## hashlib_md5_through_kwargs SAST106
import hashlib
digest = hashlib.md5(blob, **{"usedforsecurity": False})  # <-

## hashlib_new_name_through_kwargs SAST106
import hashlib
digest = hashlib.new(**{"name": "md5"})  # <-

## ssl_version_through_kwargs SAST106
import ssl
ssl.wrap_socket(sock, **{"ssl_version": ssl.PROTOCOL_SSLv2})  # <-

## crypt_method_through_kwargs SAST106
import crypt
salt = crypt.mksalt(**{"method": crypt.METHOD_CRYPT})  # <-

## openssl_method_through_unreadable_kwargs SAST106
from OpenSSL import SSL

def context(**options):
    return SSL.Context(**options)  # <-

## paramiko_policy_by_keyword SAST106
import paramiko
client = paramiko.SSHClient()
client.set_missing_host_key_policy(policy=paramiko.AutoAddPolicy())  # <-

## paramiko_policy_through_star_args SAST106
import paramiko
client = paramiko.SSHClient()
client.set_missing_host_key_policy(*[paramiko.AutoAddPolicy()])  # <-

## paramiko_policy_under_another_name SAST106
import paramiko
trust = paramiko.AutoAddPolicy()
paramiko.SSHClient().set_missing_host_key_policy(trust)  # <-

## paramiko_policy_class_aliased SAST106
from paramiko import SSHClient, WarningPolicy as Lenient
SSHClient().set_missing_host_key_policy(Lenient())  # <-

## rsa_key_size_through_kwargs SAST106
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(65537, **{"key_size": 512})  # <-

## hub_revision_through_kwargs SAST106
from transformers import AutoModel
model = AutoModel.from_pretrained(name, **{"revision": "main"})  # <-

# --- red team: settings bandit never reads, made as attributes, through setattr, in a
# subclass, or as a mapping key (bandit reads verify=/debug=/autoescape= only as keywords
# written out at a call it names: the sast gate PASSED on each)

## session_verify_attribute SAST106
import requests
session = requests.Session()
session.verify = False  # <-
session.get(url)

## session_verify_zero SAST106
import requests
session = requests.Session()
session.verify = 0  # <-

## session_verify_through_a_name SAST106
import requests
INSECURE = False
session = requests.Session()
session.verify = INSECURE  # <-

## session_verify_annotated SAST106
import requests

class Client:
    def __init__(self):
        self.session = requests.Session()
        self.session.verify: bool = False  # <-

## session_verify_in_a_tuple SAST106
import requests
session = requests.Session()
session.verify, session.trust_env = False, True  # <-

## session_verify_changed_in_place SAST106
import requests
session = requests.Session()
session.verify &= flag  # <-

## session_subclass_verify_in_init SAST106
import requests

class Session(requests.Session):
    def __init__(self):
        super().__init__()
        self.verify = False  # <-

## session_subclass_request_kwargs SAST106
import requests

class Session(requests.Session):
    def request(self, method, url, **kwargs):
        kwargs["verify"] = False  # <-
        return super().request(method, url, **kwargs)

## session_subclass_request_setdefault SAST106
import requests

class Session(requests.Session):
    def request(self, method, url, **kwargs):
        kwargs.setdefault("verify", False)  # <-
        return super().request(method, url, **kwargs)

## session_verify_setattr SAST106
import requests
session = requests.Session()
setattr(session, "verify", False)  # <-

## session_verify_setattr_name SAST106
import requests
KEY = "ver" "ify"
session = requests.Session()
setattr(session, KEY, False)  # <-

## session_verify_dunder_setattr SAST106
import requests
session = requests.Session()
session.__setattr__("verify", False)  # <-

## session_verify_object_setattr SAST106
import requests
session = requests.Session()
object.__setattr__(session, "verify", False)  # <-

## session_verify_through_vars SAST106
import requests
session = requests.Session()
vars(session).update(verify=False)  # <-

## jinja2_autoescape_attribute SAST106
import jinja2
env = jinja2.Environment(autoescape=True)
env.autoescape = False  # <-

## flask_debug_attribute SAST106
import flask
app = flask.Flask(__name__)
app.debug = True  # <-
app.run()

## flask_debug_config_key SAST106
import flask
app = flask.Flask(__name__)
app.config["DEBUG"] = True  # <-
app.run()

## flask_debug_config_update SAST106
import flask
app = flask.Flask(__name__)
app.config.update(DEBUG=True)  # <-

## flask_debug_config_from_mapping SAST106
import flask
app = flask.Flask(__name__)
app.config.from_mapping({"DEBUG": 1})  # <-

## flask_debug_config_setitem SAST106
import flask
app = flask.Flask(__name__)
app.config.__setitem__("DEBUG", True)  # <-

## flask_debug_config_operator_setitem SAST106
import flask, operator
app = flask.Flask(__name__)
operator.setitem(app.config, "DEBUG", True)  # <-

## flask_debug_config_merged SAST106
import flask
app = flask.Flask(__name__)
app.config |= {"DEBUG": True}  # <-

## flask_debug_config_object SAST106
import flask

class Settings:
    DEBUG = True  # <-

app = flask.Flask(__name__)
app.config.from_object(Settings)

## flask_subclass_debug SAST106
import flask

class App(flask.Flask):
    debug = True  # <-

## verify_written_out_as_a_name SAST106
import requests
INSECURE = False
requests.get(url, verify=INSECURE, timeout=5)  # <-

## verify_written_out_as_zero SAST106
import requests
requests.get(url, verify=0, timeout=5)  # <-

## verify_written_out_as_a_default SAST106
import requests

def fetch(url, verify=False):
    return requests.get(url, verify=verify, timeout=5)  # <-

## verify_attribute_from_a_default SAST106
import requests

class Session(requests.Session):
    def __init__(self, verify=False):
        super().__init__()
        self.verify = verify  # <-

## verify_written_out_as_a_conditional SAST106
import requests
requests.get(url, verify=CA if strict else False, timeout=5)  # <-

## flask_debug_written_out_as_one SAST106
import flask
flask.Flask(__name__).run(debug=1)  # <-

## ssl_version_written_out_as_a_name SAST106
import ssl
OLD = ssl.PROTOCOL_TLSv1
ssl.wrap_socket(sock, ssl_version=OLD)  # <-

## ssl_version_attribute SAST106
import ssl
from requests.adapters import HTTPAdapter

class Legacy(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        self.ssl_version = ssl.PROTOCOL_TLSv1  # <-
        return super().init_poolmanager(*args, **kwargs)

# --- TLS verification switched off through the ssl module: bandit has no test for an
# SSLContext's check_hostname/verify_mode, and its B323 reads _create_unverified_context only
# where it is called by a name bandit follows (the sast gate PASSED on each)

## ssl_check_hostname_off SAST106
import ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False  # <-

## ssl_verify_mode_cert_none SAST106
import ssl
ctx = ssl.create_default_context()
ctx.verify_mode = ssl.CERT_NONE  # <-

## ssl_verify_mode_setattr SAST106
import ssl
ctx = ssl.create_default_context()
setattr(ctx, "verify_mode", ssl.CERT_NONE)  # <-

## ssl_check_hostname_setattr SAST106
import ssl
ctx = ssl.create_default_context()
setattr(ctx, "check_hostname", 0)  # <-

## ssl_verify_mode_aliased_constant SAST106
from ssl import CERT_NONE as TRUSTING, create_default_context
ctx = create_default_context()
ctx.verify_mode = TRUSTING  # <-

## ssl_verify_mode_module_alias SAST106
import ssl as s
ctx = s.create_default_context()
ctx.verify_mode = s.CERT_NONE  # <-

## ssl_verify_mode_through_a_constant SAST106
import ssl
NONE = ssl.CERT_NONE
ctx = ssl.create_default_context()
ctx.verify_mode = NONE  # <-

## ssl_verify_mode_enum SAST106
import ssl
ctx = ssl.create_default_context()
ctx.verify_mode = ssl.VerifyMode.CERT_NONE  # <-

## ssl_verify_mode_zero SAST106
import ssl
ctx = ssl.create_default_context()
ctx.verify_mode = 0  # <-

## ssl_context_subclass_attribute SAST106
import ssl

class Trusting(ssl.SSLContext):
    verify_mode = ssl.CERT_NONE  # <-

## ssl_unverified_context_monkeypatched SAST106
import ssl
ssl._create_default_https_context = ssl._create_unverified_context  # <-

## ssl_unverified_context_under_another_name SAST106
import ssl
make = ssl._create_unverified_context  # <-
ctx = make()

## ssl_unverified_context_by_getattr SAST106
import ssl
ctx = getattr(ssl, "_create_unverified_context")()  # <-

## setattr_computed_name_false SAST106
import requests
session = requests.Session()
for name in ["trust_env", "ver" + suffix]:
    setattr(session, name, False)  # <-

## setattr_computed_name_debug SAST106
import flask
app = flask.Flask(__name__)
app.__setattr__(flag_name(), True)  # <-

# --- debug modes switched on through the environment or a settings module (bandit's B201
# reads debug= only at a .run() call)

## flask_debug_environment SAST106
import os
os.environ["FLASK_DEBUG"] = "1"  # <-

## flask_debug_environment_setdefault SAST106
import os
os.environ.setdefault("FLASK_DEBUG", "true")  # <-

## flask_debug_environment_update SAST106
import os
os.environ.update({"FLASK_DEBUG": "yes"})  # <-

## flask_debug_putenv SAST106
import os
os.putenv("FLASK_DEBUG", "1")  # <-

## flask_debug_putenv_aliased SAST106
from os import putenv as put
put("FLASK_DEBUG", "on")  # <-

## flask_debug_environment_for_a_child SAST106
import os, subprocess
env = dict(os.environ)
env["FLASK_DEBUG"] = "1"  # <-
subprocess.run(["flask", "run"], env=env, check=True)

## flask_debug_env_dict_for_a_child SAST106
import subprocess
subprocess.run(["flask", "run"], env={"FLASK_DEBUG": "1"}, check=True)  # <-

## flask_debug_env_spread_over_os_environ SAST106
import os, subprocess
env = {**os.environ, "FLASK_DEBUG": "true"}  # <-
subprocess.run(["flask", "run"], env=env, check=True)

## flask_development_env_by_dict_call SAST106
import os
env = dict(os.environ, FLASK_ENV="development")  # <-

## werkzeug_pin_off_env_union SAST106
import os
env = os.environ | {"WERKZEUG_DEBUG_PIN": "off"}  # <-

## flask_debug_env_dict_through_a_name SAST106
import subprocess
ON = "yes"
subprocess.Popen(["flask", "run"], env={"PATH": "/usr/bin", "FLASK_DEBUG": ON})  # <-

## flask_development_environment SAST106
import os
os.environ["FLASK_ENV"] = "development"  # <-

## werkzeug_debugger_pin_off SAST106
import os
os.environ["WERKZEUG_DEBUG_PIN"] = "off"  # <-

## django_settings_debug SAST106
SECRET_KEY = "change-me"
DEBUG = True  # <-
ALLOWED_HOSTS = ["*"]

## django_settings_debug_through_a_name SAST106
ON = 1
ALLOWED_HOSTS = []
DEBUG = ON  # <-

## yaml_loader_read_where_the_mapping_binds_it SAST101
import yaml
L = yaml.Loader
OPTIONS = {"Loader": L}

def read(text):
    L = yaml.SafeLoader
    return yaml.load(text, **OPTIONS)  # <-

## numpy_allow_pickle_in_either_branch SAST101
import numpy as np
np.load(path, **({"allow_pickle": False} if fast else {"allow_pickle": True}))  # <-

## numpy_allow_pickle_overwritten SAST101
import numpy as np
options = {"allow_pickle": False}
options["allow_pickle"] = True
np.load(path, **options)  # <-

## multiprocessing_client_recv SAST101
from multiprocessing.connection import Client
conn = Client(("127.0.0.1", 6000))  # <-
model = conn.recv()

## multiprocessing_listener_recv SAST101
import multiprocessing.connection as mpc
with mpc.Listener(("127.0.0.1", 6000)) as listener:  # <-
    model = listener.accept().recv()

## multiprocessing_remote_manager SAST101
from multiprocessing.managers import BaseManager
manager = BaseManager(address=("10.0.0.5", 50000), authkey=b"k")  # <-
manager.connect()

# --- red team: tarfile extraction bandit's B202 does not read (it reads a call named
# *extractall* in a module holding ``import tarfile``; Python < 3.14 trusts member paths)

## tar_extraction_filter_fully_trusted SAST106
import tarfile
tar = tarfile.open(path)
tar.extraction_filter = tarfile.fully_trusted_filter  # <-

## tar_extraction_filter_lambda SAST106
import tarfile
tar = tarfile.open(path)
tar.extraction_filter = lambda member, dest: member  # <-

## tar_extraction_filter_function SAST106
import tarfile

def keep(member, dest):
    if member.name.endswith(".txt"):
        return member
    return tarfile.data_filter(member, dest)

tarfile.TarFile.extraction_filter = staticmethod(keep)  # <-

## tar_extraction_filter_class_wide SAST106
import tarfile
tarfile.TarFile.extraction_filter = staticmethod(tarfile.fully_trusted_filter)  # <-

## tar_extraction_filter_subclass SAST106
import tarfile

class Archive(tarfile.TarFile):
    extraction_filter = staticmethod(tarfile.fully_trusted_filter)  # <-

## tar_extraction_filter_setattr SAST106
import tarfile
setattr(tarfile.TarFile, "extraction_filter", staticmethod(tarfile.fully_trusted_filter))  # <-

## tar_extraction_filter_type_setattr SAST106
import tarfile
filter_ = staticmethod(tarfile.fully_trusted_filter)
type.__setattr__(tarfile.TarFile, "extraction_filter", filter_)  # <-

## tar_extractall_from_import SAST106
from tarfile import open as open_archive
open_archive(path).extractall(dest)  # <-

## tar_extractall_fully_trusted_from_import SAST106
from tarfile import open as open_archive
open_archive(path).extractall(dest, filter="fully_trusted")  # <-

## tar_extractall_in_a_helper_module SAST106
def unpack(archive, dest):
    archive.extractall(dest)  # <-

## tar_extractall_aliased SAST106
import tarfile
tar = tarfile.open(path)
unpack = tar.extractall
unpack(dest)  # <-

## tar_extractall_getattr SAST106
import tarfile
with tarfile.open(path) as tar:
    getattr(tar, "extractall")(dest)  # <-

## tar_extract_one_member SAST106
import tarfile
with tarfile.open(path) as tar:
    tar.extract("model.bin", dest)  # <-

## tar_extract_annotated_parameter SAST106
import tarfile

def unpack(tar: tarfile.TarFile, dest):
    tar.extract("model.bin", dest)  # <-

## shutil_unpack_archive SAST106
import shutil
shutil.unpack_archive(path, dest)  # <-

# --- red team: a setting whose name and value are both computed (a loop over a mapping, an
# object's __dict__): the sast gate PASSED on each

## setattr_loop_over_a_literal_dict SAST106
import requests
OPTIONS = {"verify": False, "stream": True}
session = requests.Session()
for key, value in OPTIONS.items():
    setattr(session, key, value)  # <-

## setattr_loop_over_dict_call SAST106
import requests
options = dict(verify=False)
session = requests.Session()
for key, value in options.items():
    setattr(session, key, value)  # <-

## setattr_loop_over_a_merged_dict SAST106
import requests
BASE = {"verify": False}
options = {**BASE, "stream": True}
session = requests.Session()
for key, value in options.items():
    setattr(session, key, value)  # <-

## setattr_loop_over_a_comprehension SAST106
import requests
session = requests.Session()
for key, value in {name: False for name in ("verify", "trust_env")}.items():
    setattr(session, key, value)  # <-

## setattr_loop_over_pairs SAST106
import requests
session = requests.Session()
for key, value in [("verify", False), ("stream", True)]:
    setattr(session, key, value)  # <-

## setattr_loop_by_key SAST106
import requests
OPTIONS = {"verify": False}
session = requests.Session()
for key in OPTIONS:
    setattr(session, key, OPTIONS[key])  # <-

## setattr_loop_key_written_later SAST106
import requests
OPTIONS = {}
session = requests.Session()
for key, value in OPTIONS.items():
    setattr(session, key, value)  # <-
OPTIONS.update(verify=False)

## setattr_loop_in_a_comprehension SAST106
import requests
OPTIONS = {"verify": False}
session = requests.Session()
[setattr(session, key, value) for key, value in OPTIONS.items()]  # <-

## setattr_loop_value_rebound SAST106
import requests
session = requests.Session()
for key, value in {"verify": True}.items():
    value = False
    setattr(session, key, value)  # <-

## setattr_loop_name_bound_by_two_loops SAST106
import requests
session = requests.Session()
for key, value in {"stream": True}.items():
    pass
for key, value in {"verify": False}.items():
    setattr(session, key, value)  # <-

## dunder_dict_update_through_a_long_chain SAST106
import requests
O0 = {"verify": False}
O1 = {**O0}
O2 = {**O1}
O3 = {**O2}
O4 = {**O3}
O5 = {**O4}
O6 = {**O5}
O7 = {**O6}
O8 = {**O7}
O9 = {**O8}
O10 = {**O9}
O11 = {**O10}
O12 = {**O11}
session = requests.Session()
session.__dict__.update(O12)  # <-

## session_verify_through_a_long_chain_of_names SAST106
import requests
V0 = False
V1 = V0
V2 = V1
V3 = V2
V4 = V3
V5 = V4
V6 = V5
V7 = V6
V8 = V7
V9 = V8
V10 = V9
V11 = V10
V12 = V11
V13 = V12
V14 = V13
V15 = V14
V16 = V15
V17 = V16
V18 = V17
V19 = V18
V20 = V19
V21 = V20
V22 = V21
V23 = V22
V24 = V23
V25 = V24
session = requests.Session()
session.verify = V25  # <-

## setattr_loop_names_and_values_apart SAST106
import requests
NAMES = ("verify", "stream")
session = requests.Session()
for key in NAMES:
    setattr(session, key, False)  # <-

## dunder_dict_update SAST106
import requests
OPTIONS = {"verify": False}
session = requests.Session()
session.__dict__.update(OPTIONS)  # <-

## vars_update_from_a_dict SAST106
import requests
OPTIONS = dict(verify=False)
session = requests.Session()
vars(session).update(OPTIONS)  # <-

## dunder_dict_key_in_a_loop SAST106
import requests
OPTIONS = {"verify": False}
session = requests.Session()
for key, value in OPTIONS.items():
    session.__dict__[key] = value  # <-

## dunder_dict_computed_keys SAST106
def harden(session, names):
    session.__dict__.update({name: False for name in names})  # <-

## flask_config_update_from_a_dict SAST106
import flask
DEV = {"DEBUG": True}
app = flask.Flask(__name__)
app.config.update(DEV)  # <-

## flask_config_from_pyfile_not_scanned SAST104
import flask
app = flask.Flask(__name__)
app.config.from_pyfile("instance.cfg")  # <-

## django_settings_configure SAST106
from django.conf import settings
settings.configure(DEBUG=True)  # <-
"""
)

SAFE = _cases(
    """
## json
import json
json.loads(text)

## shell_spelled_out_is_bandits
import subprocess as sp
from subprocess import run
sp.run(command, shell=True)
run(command, shell=True)

## shell_runner_spelled_out_is_bandits
import os
from subprocess import getoutput as output
os.system(command)
output(command)

## shell_false_through_kwargs
import subprocess
subprocess.run(["ls"], **{"shell": False, "check": True})  # nosec B603 B607

## keywords_written_out_are_bandits
import requests as r
import flask
from hashlib import md5
r.get(url, verify=True, timeout=5)
flask.Flask(__name__).run(debug=False)
md5(blob, usedforsecurity=False)

## keywords_bandit_does_not_read_through_kwargs
import json, requests

def fetch(url):
    options = {"headers": headers, "params": params}
    options["allow_redirects"] = False
    json.loads(text, **{"parse_float": float})
    return requests.get(url, timeout=5, **options)

## settings_left_secure_or_computed
import flask, jinja2, requests, ssl

class Client:
    timeout = None
    debug = False

    def __init__(self, verify, ca_bundle):
        self.session = requests.Session()
        self.session.verify = ca_bundle
        self.session.verify = "/etc/ssl/certs/ca.pem"
        self.session.verify = verify
        self.timeout = None
        self.method = "GET"
        self.ssl_version = ssl.PROTOCOL_TLS_CLIENT
        requests.get(url, verify=verify or ca_bundle, timeout=5)
        setattr(self.session, "verify", True)
        options = {}
        options["verify"] = True
        options.setdefault("timeout", None)

app = flask.Flask(__name__)
app.debug = False
app.config["DEBUG"] = False
app.config.update(DEBUG=False, TESTING=True)
jinja2.Environment(autoescape=True).autoescape = True

## tls_left_verifying
import os, ssl

ctx = ssl.create_default_context()
ctx.check_hostname = True
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.verify_mode = ssl.VerifyMode.CERT_REQUIRED
setattr(ctx, "verify_mode", ssl.CERT_REQUIRED)
ctx.check_hostname = flag
ssl._create_default_https_context = ssl.create_default_context

## unverified_context_called_is_bandits
import ssl
import ssl as s
from ssl import _create_unverified_context as unverified
ssl._create_unverified_context()
s._create_unverified_context()
unverified()

## debug_left_off_in_the_environment
import os
os.environ["FLASK_DEBUG"] = "0"
os.environ.setdefault("FLASK_DEBUG", "false")
os.environ["WERKZEUG_DEBUG_PIN"] = "1234-5678"
os.environ["FLASK_ENV"] = "production"
os.environ["DEBUG"] = "1"
os.putenv("PYTHONDONTWRITEBYTECODE", "1")

## debug_left_off_in_a_childs_env
import os, subprocess
subprocess.run(["make", "serve"], env={"FLASK_DEBUG": "0"}, check=True)
subprocess.run(["make", "serve"], env={"OTHER": "1"}, check=True)
env = {**os.environ, "FLASK_DEBUG": "false", "FLASK_ENV": "production"}
env = dict(os.environ, WERKZEUG_DEBUG_PIN="1234-5678", DEBUG="1")
env = os.environ | {"FLASK_DEBUG": ""}

## computed_names_with_computed_values
import os
for name, value in options.items():
    setattr(target, name, value)
setattr(target, name, None)
setattr(target, name, "text")
flags[name] = False

## debug_constant_in_a_plain_module
DEBUG = True
VERBOSE = DEBUG

## requests_calls_bandit_does_not_read_verify_on
import requests
session = requests.Session(**settings)
requests.request("GET", url, **settings)

## kwargs_to_an_unknown_callee
def wrap(**kwargs):
    return helper(**kwargs)

## dict_read_not_written
import requests
options = {"timeout": 5}
if "timeout" in options and options.get("timeout"):
    requests.get(url, timeout=options["timeout"])

## numpy_options_read_and_safe
import numpy as np

def read(path):
    options = {"mmap_mode": "r"}
    options["allow_pickle"] = False
    return np.load(path, **options)

## http_method_through_kwargs
fields = {"method": request.method, "path": path}
fields["status"] = 200
log_event(logger, **fields)

## paramiko_rejecting_policy
import paramiko
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.RejectPolicy())

## multiprocessing_local_queue
import multiprocessing
queue = multiprocessing.Queue()
parent, child = multiprocessing.Pipe()

## yaml_safe_load
import yaml
yaml.safe_load(text)

## yaml_safe_loader
import yaml
yaml.load(text, Loader=yaml.SafeLoader)

## yaml_csafe_loader
from yaml import CSafeLoader, load
load(text, CSafeLoader)

## yaml_base_loader_getattr
import yaml
loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)(text)
loader.get_single_data()

## numpy_load_default
import numpy as np
array = np.load(path)

## numpy_allow_pickle_false
import numpy as np
np.load(path, allow_pickle=False)

## numpy_partial_false
import functools, numpy as np
read = functools.partial(np.load, allow_pickle=False)
read(path)

## torch_weights_only
import torch
torch.load(path, weights_only=True)

## pickle_dumps
import pickle
blob = pickle.dumps(obj)

## marshal_dumps
import marshal
blob = marshal.dumps(code)

## joblib_dump_parallel
from joblib import Parallel, delayed, dump
dump(model, path)
Parallel(n_jobs=2)(delayed(f)(x) for x in xs)

## skops_reviewed_types
import skops.io as sio
sio.loads(blob, trusted=["sklearn.tree._tree.Tree"])

## ruamel_safe
from ruamel.yaml import YAML
YAML(typ='safe').load(text)

## import_module_literal
import importlib
importlib.import_module('json').loads(text)

## getattr_on_data
value = getattr(config.checks, section)

## exec_literal_harmless
exec('total = 1 + 1')

## module_described
import numpy as np
print(np, dir(np), isinstance(np, object))

## string_mentions
HELP = 'never call pickle.loads(blob) here'

## pipeline_without_memory
from sklearn.pipeline import Pipeline
Pipeline(steps, memory=None)

## run_tool_module
import subprocess, sys
def run_module(module, *args):
    return subprocess.run((sys.executable, "-I", "-m", module, *args), check=False)
run_module("ruff", "check")

## git_config_flag
import subprocess
subprocess.run(["git", "-c", f"user.name={name}", "commit"], check=False)

## annotation_types
from types import CodeType

def compiled() -> CodeType | None:
    return None

## registry_pattern
import importlib
gate = getattr(importlib.import_module(f"gates.{module}"), class_name)()

## tar_extraction_filter_data
import tarfile
tarfile.TarFile.extraction_filter = staticmethod(tarfile.data_filter)

## tar_extractall_data_filter_from_import
from tarfile import open as open_archive, data_filter
open_archive(path).extractall(dest, filter="data")
open_archive(path).extract("model.bin", dest, filter=data_filter)

## tar_extraction_filter_wrapping_data_filter
import tarfile

def unpack(archive, dest):
    try:
        def extraction_filter(member, path):
            try:
                return tarfile.data_filter(member, path)
            except tarfile.FilterError as exc:
                raise ValueError(str(exc)) from exc

        archive.extraction_filter = extraction_filter
    finally:
        archive.close()

## pandas_str_extractall
def groups(series):
    return series.str.extractall(r"(?P<letter>[ab])(?P<digit>[0-9])")

## zip_extractall
import zipfile

def unpack(path, dest):
    with zipfile.ZipFile(path) as archive:
        archive.extractall(dest)

## zip_extractall_annotated
import zipfile

def unpack(archive: zipfile.ZipFile, dest):
    archive.extractall(dest)

## extract_of_something_else
import re
found = re.compile("x").extract(text)

## shutil_unpack_archive_data_or_zip
import shutil
shutil.unpack_archive(path, dest, filter="data")
shutil.unpack_archive(path, dest, "zip")

## setattr_loop_over_keyword_arguments
class Record:
    def __init__(self, **fields):
        for key, value in fields.items():
            setattr(self, key, value)

## setattr_loop_over_safe_settings
import requests
OPTIONS = {"verify": "/etc/ssl/ca.pem", "debug": False, "stream": True}
session = requests.Session()
for key, value in OPTIONS.items():
    setattr(session, key, value)
session.__dict__.update(OPTIONS)

## setattr_loop_over_other_names
FLAGS = ("visible", "frozen")

def reset(widget):
    for key in FLAGS:
        setattr(widget, key, False)

## setattr_name_that_is_no_setting
def hide(styler, axis):
    setattr(styler, f"hide_{axis}_names", True)

## verify_mode_bound_to_itself
import ssl

def context(cert_reqs=None):
    cert_reqs = ssl.CERT_REQUIRED if cert_reqs is None else cert_reqs
    ctx = ssl.create_default_context()
    ctx.verify_mode = cert_reqs
    return ctx

## dict_update_with_computed_keys
def mark(seen, names):
    seen.update({name: True for name in names})
"""
)


def _scan(case: Case) -> list[UnsafeLoad]:
    return scan_source(case.code, path=f"src/{case.id}.py", own_packages={"gates"})


@pytest.mark.parametrize("case", BYPASSES, ids=lambda c: c.id)
def test_bypass_is_flagged_at_its_line(case: Case) -> None:
    found = _scan(case)
    assert any(u.rule == case.rule and u.line == case.line for u in found), found
    hit = next(u for u in found if u.line == case.line)
    assert hit.path == f"src/{case.id}.py"
    assert hit.col >= 1
    assert hit.message


@pytest.mark.parametrize("case", SAFE, ids=lambda c: c.id)
def test_safe_code_is_not_flagged(case: Case) -> None:
    assert _scan(case) == []


def test_there_are_enough_planted_bypasses() -> None:
    assert len(BYPASSES) >= 25
    assert len({c.id for c in BYPASSES}) == len(BYPASSES)


def _tree(tmp_path: Path, files: dict[str, str]) -> list[Path]:
    paths = []
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        paths.append(path)
    return sorted(paths)


@pytest.mark.parametrize(
    ("importer", "rule"),
    [
        ("from pkg._compat import restore\nrestore(path)\n", "SAST101"),
        ("from ._compat import restore\nrestore(path)\n", "SAST101"),
        ("import pkg._compat as c\nc.restore(path)\n", "SAST101"),
        # sys.path.insert(0, "pkg") makes the module importable by its bare name.
        ("import _compat\n_compat.restore(path)\n", "SAST101"),
        ("from pkg._compat import np\nnp.load(path, allow_pickle=True)\n", "SAST101"),
        # The module that imports a loader is itself a module holding one.
        ("import pkg._compat as c\ngetattr(c, name)(path)\n", "SAST102"),
        ("from pkg import _compat\nhandlers = [_compat]\n", "SAST102"),
    ],
    ids=[
        "absolute",
        "relative",
        "module_alias",
        "bare_name",
        "reexported_module",
        "computed_getattr",
        "module_passed_on",
    ],
)
def test_a_loader_reexported_by_another_scanned_module_is_followed(
    tmp_path: Path, importer: str, rule: str
) -> None:
    # An import statement alone is not a finding: the loader is found where it is used.
    compat = "import numpy as np\nfrom joblib import load as restore\n"
    files = _tree(
        tmp_path, {"pkg/__init__.py": "", "pkg/_compat.py": compat, "pkg/use.py": importer}
    )
    found = scan(files, root=tmp_path, allowed=[])
    assert [(u.rule, u.path, u.line) for u in found] == [(rule, "pkg/use.py", 2)]


def test_a_keyword_to_a_function_reexported_by_another_scanned_module_is_flagged(
    tmp_path: Path,
) -> None:
    # bandit names the call pkg.http.get (it follows no other module): B501 never fires.
    files = _tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/http.py": "from requests import get\n",
            "pkg/use.py": "from pkg.http import get\nget(url, verify=False)\n",
        },
    )
    found = scan(files, root=tmp_path, allowed=[])
    assert [(u.rule, u.path, u.line, u.call) for u in found] == [
        ("SAST106", "pkg/use.py", 2, "requests.get")
    ]
    assert "under the name pkg.http.get" in found[0].message


@pytest.mark.parametrize(
    "use",
    [
        "from .conf import VERIFY\nrequests.get(url, verify=VERIFY, timeout=5)\n",
        "from pkg.conf import VERIFY as V\nrequests.Session().verify = V\n",
        "from . import conf\nrequests.get(url, verify=conf.VERIFY, timeout=5)\n",
        "import pkg.conf as c\nsetattr(requests.Session(), 'verify', c.VERIFY)\n",
        "from .conf import NONE\nssl.create_default_context().verify_mode = NONE\n",
        "from .conf import ON\nos.environ['FLASK_DEBUG'] = ON\n",
    ],
    ids=["imported", "aliased", "module_attribute", "module_alias", "ssl_constant", "env"],
)
def test_an_insecure_value_imported_from_another_scanned_module_is_judged(
    tmp_path: Path, use: str
) -> None:
    # The value is bound in pkg/conf.py: read in pkg/use.py alone it is a name bandit cannot
    # compare with False, and this check judged only names bound in the same module.
    conf = "import ssl\nVERIFY = False\nNONE = ssl.CERT_NONE\nON = '1'\nSAFE = True\n"
    head = "import os, ssl, requests\n"
    files = _tree(tmp_path, {"pkg/__init__.py": "", "pkg/conf.py": conf, "pkg/use.py": head + use})
    found = scan(files, root=tmp_path, allowed=[])
    assert [(u.rule, u.path, u.line) for u in found] == [("SAST106", "pkg/use.py", 3)]
    safe = use.replace("VERIFY", "SAFE").replace("NONE", "SAFE").replace("ON", "SAFE")
    (tmp_path / "pkg/use.py").write_text(head + safe, encoding="utf-8")
    assert scan(files, root=tmp_path, allowed=[]) == []


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("mysite/settings.py", "DEBUG = True\n"),
        ("mysite/settings/prod.py", "from .base import *\nDEBUG = 1\n"),
        ("mysite/prod_settings.py", "import os\nDEBUG = True\n"),
    ],
    ids=["settings_module", "settings_package", "named_settings"],
)
def test_debug_in_a_settings_module_is_flagged(tmp_path: Path, path: str, code: str) -> None:
    files = _tree(tmp_path, {"mysite/__init__.py": "", path: code})
    found = scan(files, root=tmp_path, allowed=[])
    assert [(u.rule, u.path, u.line) for u in found] == [("SAST106", path, len(code.splitlines()))]
    (tmp_path / path).write_text(code.replace("True", "False").replace("1", "0"), encoding="utf-8")
    assert scan(files, root=tmp_path, allowed=[]) == []


@pytest.mark.parametrize(
    "use",
    [
        'import flask\napp = flask.Flask(__name__)\napp.config.from_object("mysite.devconf")\n',
        "import flask\nfrom mysite import devconf\napp = flask.Flask(__name__)\n"
        "app.config.from_object(devconf)\n",
        'import flask\napp = flask.Flask(__name__)\napp.config.from_pyfile("devconf.py")\n',
        'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.devconf")\n',
        'import os\nos.environ["DJANGO_SETTINGS_MODULE"] = "mysite.devconf"\n',
    ],
    ids=[
        "from_object_name",
        "from_object_module",
        "from_pyfile",
        "django_setdefault",
        "django_set",
    ],
)
def test_debug_in_a_settings_module_under_another_name_is_flagged(tmp_path: Path, use: str) -> None:
    # mysite/devconf.py is named like no settings module and binds no SECRET_KEY: its
    # DEBUG = True went unjudged wherever it was read as settings.
    files = _tree(
        tmp_path,
        {"mysite/__init__.py": "", "mysite/devconf.py": "DEBUG = True\n", "mysite/app.py": use},
    )
    found = scan(files, root=tmp_path, allowed=[])
    last = len(use.splitlines())
    assert [(u.rule, u.path, u.line) for u in found] == [("SAST106", "mysite/app.py", last)]
    assert "mysite/devconf.py" in found[0].message
    (tmp_path / "mysite/devconf.py").write_text("DEBUG = False\n", encoding="utf-8")
    assert scan(files, root=tmp_path, allowed=[]) == []


def test_a_computed_import_outside_the_own_packages_is_flagged(tmp_path: Path) -> None:
    # "gates." confines the import to a scanned package; "pkg_" + name could be anything.
    code = """
        import importlib
        a = getattr(importlib.import_module(f"pkg.{name}"), cls)()
        b = importlib.import_module("pkg" + name)
        c = getattr(importlib.import_module(f"pkg.{name}"), cls)(blob)
    """
    files = _tree(tmp_path, {"pkg/__init__.py": "", "pkg/use.py": code})
    found = scan(files, root=tmp_path, allowed=[])
    assert [(u.rule, u.line) for u in found] == [("SAST102", 3), ("SAST102", 4)]


def test_a_file_too_deep_to_check_is_a_finding(tmp_path: Path) -> None:
    chain = "\n".join(f"a{i + 1} = a{i}" for i in range(3000))
    files = _tree(tmp_path, {"deep.py": f"import pickle\na0 = pickle.loads\n{chain}\na3000(b)\n"})
    found = scan(files, root=tmp_path, allowed=[])
    assert found
    assert all(u.path == "deep.py" for u in found)


@pytest.mark.parametrize("name", ["pathlib", "json", "typing"])
def test_a_module_named_like_the_one_it_imports_from_is_checked(tmp_path: Path, name: str) -> None:
    # pkg/pathlib.py is importable as "pathlib" too (a sys.path change), so its own
    # "from pathlib import Path" led back into itself, and "Path.cwd" chased
    # pathlib.Path.cwd.cwd... until Python's recursion limit: SAST100 "nested too deeply",
    # on 9 of the installed packages' files (_pytest/pathlib.py, numpy/_core/__init__.py ...).
    code = f"import pickle\nfrom {name} import Thing\nhere = Thing.attr\nloader = pickle.loads\n"
    files = _tree(tmp_path, {"pkg/__init__.py": "", f"pkg/{name}.py": code})
    found = scan(files, root=tmp_path, allowed=[])
    assert [(u.rule, u.path, u.line) for u in found] == [("SAST101", f"pkg/{name}.py", 4)]


def test_a_package_binding_a_member_of_its_own_submodule_is_checked(tmp_path: Path) -> None:
    # pkg/__init__.py's "from .registry import registry" (pkg/registry.py not scanned) bound
    # pkg.registry to pkg.registry.registry, which the check followed through the package
    # again, chasing pkg.registry.registry.registry... until Python's recursion limit:
    # SAST100 "nested too deeply" (fsspec/__init__.py, pydantic/mypy.py in site-packages).
    code = (
        "import pickle\nfrom .registry import registry\nregistry.get(name)\nloader = pickle.loads\n"
    )
    files = _tree(tmp_path, {"pkg/__init__.py": code})
    found = scan(files, root=tmp_path, allowed=[])
    assert [(u.rule, u.path, u.line) for u in found] == [("SAST101", "pkg/__init__.py", 4)]


def test_a_class_whose_base_is_computed_from_itself_is_checked(tmp_path: Path) -> None:
    # networkx's graph tests: G is bound to an instance of newGraph, whose base is computed
    # from G; looking an attribute up on newGraph led back to its own bases until Python's
    # recursion limit: SAST100 "nested too deeply" (networkx/classes/tests/test_graph.py).
    code = """
        import pickle

        def test(graph_class):
            G = graph_class()

            class newGraph(G.to_undirected_class()):
                def to_undirected_class(self):
                    return newGraph

            G = newGraph()
            loader = pickle.loads
    """
    files = _tree(tmp_path, {"pkg/__init__.py": "", "pkg/test_graph.py": code})
    found = scan(files, root=tmp_path, allowed=[])
    assert [(u.rule, u.path, u.line) for u in found] == [("SAST101", "pkg/test_graph.py", 11)]


_LOADS = " + ".join(['"l"', '"o"', '"a"', '"d"', '"s"', *['""'] * 2000])


@pytest.mark.parametrize(
    "deep",
    [
        "total = " + " + ".join(["a"] * 2000) + "\nloader = pickle.loads\n",  # nests 2000 deep
        "if a:\n    pass\n" + "elif a:\n    pass\n" * 1200 + "loader = pickle.loads\n",
        f"loader = getattr(pickle, {_LOADS})\n",  # the name is read: pickle.loads
    ],
    ids=["long_sum", "long_elif_chain", "long_string_concatenation"],
)
def test_code_python_parses_is_checked_however_deeply_it_nests(tmp_path: Path, deep: str) -> None:
    # Python parses these (its parser nests up to ~3000 levels); the checker's own recursive
    # visitors hit Python's recursion limit at ~1000 and the file was SAST100 "nested too
    # deeply to check", with no way out for code that is fine. Now it is checked: the loader
    # on its last line is found.
    files = _tree(tmp_path, {"deep.py": "import pickle\n" + deep})
    found = scan(files, root=tmp_path, allowed=[])
    assert [(u.rule, u.line) for u in found] == [("SAST101", len(deep.splitlines()) + 1)]


# --- one real sast gate run over a planted tree -----------------------------------------------

GATE_CASES = [
    c
    for c in BYPASSES
    if c.id
    in {
        "import_module",
        "alias_assignment",
        "getattr_literal",
        "sys_modules",
        "builtins_import",
        "kwargs_dict",
        "yaml_unsafe_load",
        "self_attribute",
        "functools_partial",
        "exec_literal",
        "eval_alias",
        "verify_through_kwargs_dict",
        "verify_set_key_by_key",
        "flask_debug_through_kwargs",
        "verify_through_partial",
        "session_verify_attribute",
        "session_subclass_verify_in_init",
        "flask_debug_config_key",
        "ssl_verify_mode_aliased_constant",
        "ssl_unverified_context_monkeypatched",
        "flask_debug_environment",
        "setattr_computed_name_false",
        "tar_extractall_from_import",
        "tar_extraction_filter_class_wide",
        "setattr_loop_over_a_literal_dict",
    }
]
REEXPORT = ("src/app/_compat.py", "from joblib import load as restore\n")
REEXPORT_USE = (
    "src/app/use.py",
    "from ._compat import restore\n\n\ndef f(p):\n    return restore(p)\n",
)
# bandit's own checks, with every way the tree could try to switch them off.
BANDIT_FAMILY = """
import pickle  # nosec B403
import subprocess  # nosec B404
import yaml


def go(blob, text, cmd):
    pickle.loads(blob)  # nosec pickle
    eval(text)  # nosec B404 eval
    exec(text)  # nosec B102
    yaml.load(text)  # nosec B506
    return subprocess.call(cmd, shell=True)  # nosec not_a_test
"""
BANDIT_EXPECTED = {("B403", 1), ("B301", 7), ("B307", 8), ("B102", 9), ("B506", 10), ("B602", 11)}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Any:
    project = Project(copy_project(tmp_path_factory.mktemp("planted") / "project"))
    root = project.root
    files = {f"src/app/{c.id}.py": c.code for c in GATE_CASES}
    files.update(
        [
            REEXPORT,
            REEXPORT_USE,
            ("src/app/__init__.py", ""),
            ("src/app/family.py", BANDIT_FAMILY.lstrip()),
        ]
    )
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    # bandit reads no config file unless told to: a skip list here must change nothing.
    pyproject = root / "pyproject.toml"
    skips = '\n[tool.bandit]\nskips = ["B102", "B301", "B307", "B403", "B506", "B602"]\n'
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8") + skips if pyproject.exists() else skips
    )
    project.edit_policy(**{"sast.paths": ["src"]})
    context = RunContext(policy=project.load(), run_id="t", reports_dir=root / "reports")
    return SastGate().run(context)


def _errors_at(outcome: Any, path: str) -> list[Any]:
    return [f for f in outcome.findings if f.severity is Severity.ERROR and f.location.path == path]


def test_the_gate_fails_on_the_planted_tree(planted: Any) -> None:
    assert planted.status is Status.FAILED


@pytest.mark.parametrize("case", GATE_CASES, ids=lambda c: c.id)
def test_the_gate_names_file_and_line_of_each_planted_case(planted: Any, case: Case) -> None:
    path = f"src/app/{case.id}.py"
    hits = [
        f for f in _errors_at(planted, path) if f.rule == case.rule and f.location.line == case.line
    ]
    assert hits, [(f.rule, f.location.line) for f in _errors_at(planted, path)]
    assert hits[0].message.startswith(f"{path}:{case.line}:")


def test_the_gate_follows_a_reexport_into_another_module(planted: Any) -> None:
    hits = _errors_at(planted, "src/app/use.py")
    assert [(f.rule, f.location.line) for f in hits] == [("SAST101", 5)]
    assert "joblib.load" in hits[0].message


@pytest.mark.parametrize(("test", "line"), sorted(BANDIT_EXPECTED), ids=str)
def test_bandit_deserialization_checks_cannot_be_switched_off(
    planted: Any, test: str, line: int
) -> None:
    # No nosec (by id, by name, or an unknown name bandit would read as a bare nosec) and no
    # [tool.bandit] skips hide these.
    hits = [f for f in _errors_at(planted, "src/app/family.py") if f.rule == test]
    assert [f.location.line for f in hits] == [line]


def test_a_nosec_on_a_deserialization_check_is_itself_a_finding(planted: Any) -> None:
    hits = [f for f in _errors_at(planted, "src/app/family.py") if f.rule == "SAST014"]
    assert sorted(f.location.line for f in hits) == [1, 7, 8, 9, 10]
