"""The project's own SAST rule: unsafe deserialization, under whatever name the loader is reached.

bandit flags ``pickle`` and ``yaml.load`` when they are spelled out, but not ``joblib.load``,
``pandas.read_pickle``, ``torch.load`` or a skops load that trusts whatever the file asks for,
and none of them once the loader goes by another name. Every one of these runs code chosen by
whoever wrote the bytes. Rules:

- SAST101 a loader that can run code from what it reads is used (called, referenced, aliased,
  subclassed): ``pickle``/``_pickle``/``cPickle`` (anything but ``dump``/``dumps``/
  ``Pickler``), ``marshal.load(s)``, ``shelve``, ``joblib.load`` (anything but ``dump``,
  ``Parallel`` and friends), ``jsonpickle.decode``, ``pickle.Unpickler`` and subclasses of it,
  ``pandas.read_pickle`` (any ``*.read_pickle``), ``torch.load`` without a literal
  ``weights_only=True``, ``numpy.load``/``NpzFile``/``lib.format.read_array`` with
  ``allow_pickle`` not a falsy literal, ``yaml.load``/``load_all`` unless ``Loader`` is
  ``SafeLoader``/``CSafeLoader``/``BaseLoader``/``CBaseLoader``, ``yaml.full_load``/
  ``unsafe_load`` (and ``_all``), PyYAML's unsafe loader and constructor classes, ruamel's
  ``YAML(typ=...)`` other than ``rt``/``safe``/``base``, ``cleanlab.Datalab.load``,
  ``sklearn.datasets.fetch_*`` (they joblib-load a cache), a scikit-learn ``memory=`` cache,
  ``mlflow.*.load_model`` and ``load_pyfunc``, ``distributed.protocol``'s ``loads`` and
  ``deserialize`` functions (dask's wire format), ``torch.hub.load``, ``ForkingPickler.loads``, ``python -m pickle``
  in a command line, ``multiprocessing.connection.Client``/``Listener`` and the
  ``multiprocessing.managers`` managers (their ``recv`` unpickles what a socket sends).
- SAST102 a name this check cannot follow: any use of ``dill`` (imports included),
  ``cloudpickle`` loaders, a dynamic import of a pickle-like module (``__import__("pickle")``,
  ``importlib.import_module``, ``pkgutil.resolve_name``, ``pydoc.locate``) or a star import of
  one, an import whose module name is computed at run time, a ``getattr``/``sys.modules[...]``/
  ``vars(m)[...]``/``globals()[...]`` with a computed name on a module that holds loaders (a
  scanned module that imports one included), such a module or a loader passed where this check
  cannot follow it (an argument, a container, a default, a return value), a write to or a walk
  of ``sys.modules``, the import system's internals, entry points, ``gc.get_objects``,
  ``inspect.getmodule``, and the gadgets that reach any module (``__globals__``,
  ``__subclasses__``, frame ``f_globals``, ``load_module``).
  An import (statement or literal ``importlib``) of code the project holds outside the scan
  (``tests.helpers``, ``build.knob``: a top-level folder or module no scanned file belongs to)
  is SAST102 too: it runs code no scan reads.
- SAST103 ``skops.io.load/loads`` whose ``trusted=`` is computed (a call, a name, a
  comprehension) rather than a literal list/tuple of strings, or ``trusted=True``.
- SAST104 code run where bandit's B102/B307 (which flag every plain ``exec(...)``/
  ``eval(...)``) do not look: ``exec``/``eval`` under another name (``builtins.exec``, an alias,
  ``getattr(builtins, "eval")``), ``compile``/``timeit``/``cProfile.run``/``pdb.run`` of a
  string computed at run time, ``python -c`` with computed code, ``types.FunctionType``/
  ``CodeType``, ``__code__``, a rewritten ``__defaults__``/``__kwdefaults__``, ``runpy``,
  ``doctest``, ``code.interact``, ``ctypes.pythonapi``, ``logging.config.fileConfig``, the
  debuggers, tracers and profilers that run a command string (``bdb.Bdb``, ``pdb.Pdb``,
  ``trace.Trace``, ``cProfile.Profile``), ``_xxsubinterpreters.run_string`` and
  ``site.addsitedir``/``addpackage`` (they run a ``.pth`` file's import lines). Python's option
  syntax is read as Python reads it (``-Ic CODE``, ``-cCODE``, ``-Impickle``); ``shell=``
  given to ``subprocess`` through ``**mapping`` (bandit's B602 sees only ``shell=`` spelled out,
  and reports B603), or a ``**mapping`` this check cannot read there. A literal
  string given to ``exec``/``eval``/``compile``/``timeit`` or to ``python -c`` (also through a
  name bound only to literals), and a string annotation, is parsed and checked like the code
  around it.
- SAST106 a keyword argument bandit reads by name (``BANDIT_KEYWORDS``: ``verify=``, ``debug=``,
  ``autoescape=`` ...) reaching a call where bandit cannot read it: through ``**mapping``, given to
  ``functools.partial``, or written out at a call of the function under another name; and a
  ``**mapping`` whose keys this check cannot read, given to a function bandit reads keywords of.
  Also the setting bandit never reads (``SETTINGS``): ``session.verify = False``,
  ``setattr(s, "verify", False)``, ``kwargs["verify"] = False``, ``app.config["DEBUG"] = True``,
  a class attribute ``debug = True``, on any object; and a keyword written out where bandit
  reads it whose value can be what it flags but is not written as the literal it compares
  (``verify=INSECURE``, ``verify=0``, ``debug=1``, a parameter's default ``verify=False``).
  And settings bandit has no test for (``UNREAD_SETTINGS``), made the same ways:
  ``ctx.check_hostname = False``, ``ctx.verify_mode = ssl.CERT_NONE`` (under any name, or
  ``0``), ``os.environ["FLASK_DEBUG"] = "1"`` (``setdefault``, ``update``, ``os.putenv``, a
  child's ``env`` dict and the other mappings SAST107 reads: ``{**os.environ, ...}``,
  ``dict(...)``, ``os.environ | {...}``), ``FLASK_ENV=development``, ``WERKZEUG_DEBUG_PIN=off``, a module-level
  ``DEBUG = True`` in a settings module (named ``*settings*`` or binding ``SECRET_KEY``/
  ``ALLOWED_HOSTS``); ``ssl._create_unverified_context`` reached any way but a call bandit's
  B323 names (``ssl._create_default_https_context = ssl._create_unverified_context``); a
  ``setattr`` whose name is computed, given ``True``/``False``/``0``/``1`` (unless its literal
  prefix starts no setting: ``f"hide_{axis}"``). A value is read across the modules scanned
  together (``from .conf import VERIFY``, ``conf.VERIFY``). A name and value both computed
  are followed from the mapping a loop takes them from (``for k, v in opts.items():
  setattr(s, k, v)``, ``setattr(s, k, opts[k])``, ``s.__dict__[k] = v``) and into
  ``s.__dict__.update(opts)``/``vars(s).update(opts)``/``config.update(opts)``, the mapping
  read as far as it can be (a literal, ``dict(...)``, ``{**base}``, a comprehension, pairs,
  keys written into it anywhere in its scope): each key is judged with its value; a setting
  among the keys with a value that switches it but not known to go with it, and a computed
  key given a flag in an object's ``__dict__``, fail closed. A settings module under another
  name: the module-level ``DEBUG`` of a scanned module named to ``config.from_object``
  (by text or the module), ``config.from_pyfile("x.py")`` or ``DJANGO_SETTINGS_MODULE``;
  ``settings.configure(DEBUG=True)``; ``from_pyfile`` of any other file is SAST104 (it runs
  code no scan reads). And tarfile extraction bandit's B202 does not read (it reads a call
  named ``*extractall*`` in a module holding ``import tarfile``): ``extraction_filter`` set to
  anything but ``data_filter``/``tar_filter`` (on an archive, ``TarFile`` itself, a subclass,
  by ``setattr``), ``extractall`` without ``filter="data"``/``"tar"`` elsewhere (a module
  without ``import tarfile``, an archive passed in, ``ex = tar.extractall``, ``getattr``,
  ``functools.partial``; a receiver known to be a ``zipfile`` is left alone),
  ``TarFile.extract`` and ``shutil.unpack_archive`` without such a filter.
- SAST107 a child interpreter that runs code no scan read (sastgaps): a command line (at a
  ``subprocess``/``os.exec*``/``os.spawn*``/``asyncio`` call, ``args=``/``executable=``
  included, or any list or tuple display that starts with Python by value, or with the word
  ``python`` followed by an option or a path built at run time: a command handed to a helper)
  whose program is Python (``python3``,
  ``sys.executable`` under any name, ``shutil.which("python3")``, ``os.environ["_"]``, a name
  bound to one) and whose script is not a scanned file (a literal path, or the scanned file's
  folder or one above it joined with literal parts, or ``__file__`` itself), or whose ``-m``
  module is computed (with ``-I`` too since sast107d: any installed module) or is the
  project's code outside the scan; Python reading its program from its input (``-`` or no
  script); ``set_executable`` of anything but Python. A command line held in a name is read
  through its bindings (a list changed in place ends in an unknown word). And the ``PYTHON*``
  variables that make a child read code from elsewhere (``PYTHON_ENV``), set in any mapping (a
  dict display, ``dict(...)``, ``.update``, ``.setdefault``, ``m[k] = v``, ``os.putenv``):
  ``PYTHONPATH`` to anything but the scanned file's folder (or above), itself as it was, or
  those joined by ``os.pathsep``; ``PYTHONHOME`` to anything but ``sys.prefix``;
  ``PYTHONSAFEPATH`` to ``""``; ``PYTHONBREAKPOINT``/``PYTHONWARNINGS`` computed or naming the
  project's unscanned code; the others (``PYTHONSTARTUP``, ``PYTHONUSERBASE``,
  ``PYTHONINSPECT``, ``PYTHONPYCACHEPREFIX`` ...) to anything. A variable named at run time
  written into ``os.environ`` itself (``os.environ[k] = v``, ``os.putenv(k, v)``,
  ``os.environ.update(mapping)``) fails closed. A script that is a parameter of the function
  running it (``def script(p): run(["python3", p])``) is followed to the function's calls in the
  module, each of which must pass a scanned file (passed around, ``*args``, named by another
  scanned module or not called here: fail closed). A command line built by a call
  (``shlex.split``, ``str.split``, ``" ".join``, ``%``, ``.format``) is read as its words, a
  shell command line command by command (``;``, ``&&``, ``|``, ``$(...)``), and ``sh -c TEXT``
  reads TEXT as one. ``PATH`` set in any mapping where a scanned module names a bare ``python``
  must keep the folders before its old value the interpreter's own or the system's
  (``shutil.which("python3", path=...)`` too). The folder rule (SAST107's scripts and
  ``PYTHONPATH``, SAST102's ``sys.path``) follows ``from m import ROOT`` into a module ``m``
  scanned with this one, unless a scanned module sets an attribute of that name. Since red team
  14: ``-m runpy|trace|cProfile|profile|pdb|doctest|pydoc|unittest|inspect`` has the script or
  module it is given judged as the script (``-m code``, ``pdb -c`` and a computed argument fail
  closed; ``timeit``'s statements are read as code), ``-W``/``-X`` as PYTHONWARNINGS and
  PYTHONPYCACHEPREFIX are, a working folder (``cwd=``, a shell's ``cd``) that is not the root or
  a scanned folder fails ``-m`` and importing ``-c`` code without ``-I``/``-P`` (a relative
  script is looked up there; ``env -C DIR`` and ``pushd`` set it too; ``timeout 5s``, ``sudo
  -u USER`` are read past as wrappers), ``os.spawnlp*`` and asyncio's ``loop.subprocess_exec/_shell``
  are read, and Python spelled ``f"{sys.executable}"``, ``sys.executable + ""``,
  ``os.fsencode(...)``, ``vars(sys)["executable"]`` or returned by a lambda or function of the
  module is Python. Since sast107d: the working folder a scanned module moves the
  process to (``os.chdir``, ``os.fchdir``, ``contextlib.chdir``, any ``.chdir(...)``, in any
  module scanned with it, flow-insensitive) is a child's working folder where ``cwd=`` is not
  given; ``-m`` a computed module fails closed with ``-I`` too (it may be ``runpy``, ``pip``,
  ``pytest``), unless it is a parameter every call of whose function, in any scanned module,
  passes a literal (``gates/_tools.py``'s ``run_module``) or the variable of a loop over a
  literal list: each judged with the words after it; ``-m pytest``/``py.test``/``build``/
  ``nox``/``tox``/``uv``/``sphinx`` ... (``_TREE_RUNNERS``), ``pip install|wheel|download``,
  ``unittest`` discovery, ``trace -f`` (a pickle), ``coverage run`` (its script judged),
  ``IPython``/``ipdb``/``debugpy`` (as ``pdb``) and a computed ``timeit -s`` are findings, a
  runner's module is judged as a runner with its words (``-m runpy pytest``), and a
  tool's own program (``pytest``, ``pip``, ``coverage``, ``nox`` ...) is read as ``python -m``
  it; a whole command line that is a parameter of the function running it is read at each
  call of the function, in any scanned module (its ``*argv``: in its module; calls that
  cannot be read: not judged); Python is also a path whose literal end names it (``f"{venv}/bin/python3"``,
  ``os.path.join(venv, "bin", "python")``, ``Path(venv) / "python"``, ``venv + "/bin/python"``),
  ``os.environ.get("PYTHON", sys.executable)``, ``a or b``, ``a if c else b``, a method of it
  (``.replace``, ``.with_name("python3")``), ``os.path.basename`` of it and a template
  (``f"python3.{minor}"``, ``"python%d.%d" % v``); an interpreter at a
  relative path or under the scanned file's folder (``data/bin/python3``, ``ROOT / "bin" /
  "python"``: a committed program) is a finding, at a call or ``set_executable``. Since
  sast108: servers and workers that import the application they are named (``uvicorn``,
  ``gunicorn``, ``flask``, ``celery``, ``streamlit`` ...) join ``_TREE_RUNNERS``, and
  ``http.server --cgi`` is one; ``mypy``, ``pylint``, ``flake8`` and ``python -m coverage``
  import the plugins of the tree's configuration (``_CONFIG_RUNNERS``) unless their option names
  no file; a ``*argv`` helper is read at its calls in other scanned modules too; a ``chdir``
  made ready by ``functools.partial``/``operator.methodcaller`` moves the working folder; and the
  same tools called in process (``_IN_PROCESS``: ``pytest.main``, ``unittest.main(module=...)``,
  pip's, coverage's and mypy's entry points) are SAST104, their arguments judged as ``python -m``.
  Since sast109: task queues' workers (``dramatiq``, ``rq``, ``huey_consumer``), app servers of
  scripts and notebooks (``bokeh``, ``panel``, ``voila``) and ``jupyter-execute``/
  ``jupyter-nbconvert`` join ``_TREE_RUNNERS``; dask's ``--preload`` (``_PRELOAD_RUNNERS``)
  has what it names judged as a module, a script or code; a ``*argv`` helper that is a method is
  read at its calls on any receiver in every scanned module; a tool's configuration file is a
  finding naming it as the tree's unless it is the system's (``/etc/``, ``/usr/``) or none; and
  SAST104 covers servers, workers and coverage started in this process on code named by text:
  ``uvicorn.run("pkg:app")``/``Config`` (and ``app_dir=``), gunicorn's applications and the
  settings that import (``worker_class`` ...), a Celery app's worker, ``distributed.Worker``'s
  ``preload=``, ``coverage.Coverage()`` reading the working folder's configuration.
  sast110: each of those reached through ``functools.partial`` (read as one call when the
  partial is called at once, failing closed otherwise), and ``COVERAGE_RCFILE``/
  ``COVERAGE_PROCESS_START`` set for a child judged as a tool's configuration path
  (``COVERAGE_PROCESS_CONFIG`` fails set to anything).
  sast111: dask's settings that import code (``_DASK_CODE_KEYS``: the preloads, http routes,
  allowed imports, security loader, memory-manager policies) set for a child as
  ``DASK_DISTRIBUTED__...`` (SAST107; ``DASK_CONFIG``/``DASK_ROOT_CONFIG`` judged as a
  configuration path, ``DASK_INTERNAL_INHERIT_CONFIG`` fails) or by ``dask.config.set``
  (SAST104); ``operator.methodcaller`` of a starter's name judged as the call it makes on a
  known receiver, failing closed on an unknown one; ``coverage run`` and its reports need
  ``--rcfile`` from the ``coverage`` program and under ``-I``/``-P`` too.
  SAST102 also covers the standard library's
  path and import machinery patched (``_MACHINERY``: ``os.path.*``, ``builtins.*``,
  ``importlib.*``, ``pathlib.*``, ``sys.meta_path``/``path_hooks``/``path_importer_cache``,
  ``sys.executable``, and what importlib's loaders call: ``_io.open_code``, ``marshal.loads``,
  ``_imp.*``) by assignment, ``setattr``, ``__setattr__``, ``vars(m)[...]`` or a write to
  those lists and caches, also through ``list.insert(sys.meta_path, ...)``,
  ``operator.setitem(...)`` and the like (red team 14).
- SAST100 a file that does not parse (Python's own parser gives up near 3,000 levels of
  nesting; the walks over the tree here are iterative), or whose names (or one expression)
  lead through more levels than Python's recursion limit lets the analysis follow (it went
  unchecked).
- SAST105 a module of a package the gates run in their own process (``pipeline``) reaches
  the gates' own package (``gates.base``, ``gates.runner`` ...) by any route followed above:
  it could change how a gate decides. Scripts outside a package (``noxfile.py``) may.

How: a name-binding analysis over the AST. It is scope-aware (module, class, function, lambda
and comprehension scopes, ``global``/``nonlocal``) and flow-insensitive: a name stands for every
value it is bound to anywhere in its scope. Values are followed through import aliases
(``import pickle as p``, ``from pickle import loads as l``, relative and star imports),
assignments and tuple unpacking, the walrus, conditional expressions, attribute chains (another
module's attribute named ``pickle``/``sys``/``yaml``... is that module: ``os.sys``), class
attributes and ``self.x``, module-level names used in functions, ``getattr`` with a literal (or
literal-concatenated) name, ``vars(m)``/``m.__dict__``/``globals()``/``sys.modules``
subscripts and ``.get``, ``m.__getattribute__``, a C function's ``__self__`` (its module),
``__import__``/``importlib.import_module``/``pkgutil.resolve_name``/``pydoc.locate`` with a
literal name (positional or ``name=``), ``functools.partial``, ``operator.attrgetter``/
``methodcaller``, and ``**{...}``/``**dict(...)`` keyword arguments. Across the files scanned
together (``scan``), a name imported from one of them is followed to what that module binds
(``from pipeline._compat import restore``, also under any dotted suffix of the module's name, as
after a ``sys.path`` change). A loader is a finding where an expression uses it (an assignment
``loader = joblib.load`` included), not where an import statement merely binds it.

An import whose name is computed is a finding, except when the name starts with a literal
prefix naming one of the scanned tree's own packages (``importlib.import_module(f"gates.{m}")``,
as the gate registry does): such a module is code this gate scans. A name fetched from it by a
computed ``getattr`` may only be called without arguments, so that no data reaches it.

Not covered (a static rule cannot see them; they stay with review and the other gates):
``exec``/``eval`` of a string computed at run time (bandit's B102/B307 flag every plain call and
the sast gate lets no ``# nosec`` hide them; codecs/base64 tricks end there or in a computed
import or lookup, which are findings); values carried through containers, function return values
or parameters (a loader or module put there is a finding, but a local class passed around is not
followed, nor a computed index such as ``mods[i]``); libraries that unpickle internally and are
not listed above, and their own aliases (``sklearn.utils.np``); code the import system runs by
itself (``.pth`` files, ``sitecustomize``, a planted module shadowing an installed one,
``zipimport``); a ``python -c`` inside a nested shell (``sh -c "python -c ..."``); files
outside ``[sast].paths``. For SAST107: a program computed at run time that is not recognisably
Python (``subprocess.run([exe, path])`` with ``exe`` a parameter, ``os.path.join(venv, name)``),
a whole command line passed in as a parameter of a function whose calls cannot be read (passed
around, decorated, ``*args``) or taken from a loop or an attribute (a shell string is read only
where it runs), a module outside the lists above that runs what it is given (``uvicorn``
``data.evil:app``, ``streamlit run``, ``mlflow run``) and a tool's configuration read from the
working folder (coverage's or mypy's plugins), the same tools called in process
(``pytest.main``, ``pip``'s internals), a ``chdir`` reached only through ``functools.partial``,
``PATH`` changed in a project that names no bare ``python`` while a program it starts runs one,
``PYTHON*`` variables written under a name
computed at run time into a mapping other than ``os.environ`` (``env[k] = v``). For SAST106: a setting whose name and value are both computed from
a mapping this check cannot read (a parameter's ``**kwargs``, ``json.load(f)``), a mapping key
that is computed (``d[k] = False`` is everywhere), a value read from a file or the environment
at run time (``config.from_file``, ``from_envvar``, a computed ``from_object`` name), a
settings class or module outside the scan; an archive of unknown kind handed to
``.extract(...)`` (``re``, ``zipfile`` and others share the name).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import fnmatch
import functools
import re
import shlex
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

POLICY_KEY = "[sast].loaders"

_PICKLE_SAFE = frozenset(
    [
        "dump",
        "dumps",
        "Pickler",
        "PickleError",
        "PicklingError",
        "UnpicklingError",
        "PickleBuffer",
        "HIGHEST_PROTOCOL",
        "DEFAULT_PROTOCOL",
    ]
)
# Modules that exist to load arbitrary objects: every attribute outside the safe set loads.
# module -> (rule, the attributes that only write or describe)
PICKLE_LIKE: dict[str, tuple[str, frozenset[str]]] = {
    "pickle": ("SAST101", _PICKLE_SAFE),
    "marshal": ("SAST101", frozenset({"dump", "dumps", "version"})),
    "shelve": ("SAST101", frozenset()),
    "joblib": (
        "SAST101",
        frozenset(
            [
                "dump",
                "Parallel",
                "delayed",
                "cpu_count",
                "effective_n_jobs",
                "parallel_backend",
                "parallel_config",
                "register_parallel_backend",
                "hash",
                "wrap_non_picklable_objects",
                "__version__",
            ]
        ),
    ),
    "jsonpickle": (
        "SAST101",
        frozenset(
            [
                "encode",
                "dumps",
                "Pickler",
                "pickler",
                "set_encoder_options",
                "set_preferred_backend",
                "__version__",
            ]
        ),
    ),
    "pandas.compat.pickle_compat": ("SAST101", frozenset()),
    "cloudpickle": (
        "SAST102",
        frozenset(["dump", "dumps", "Pickler", "CloudPickler", "DEFAULT_PROTOCOL"]),
    ),
    "dill": ("SAST102", frozenset()),
}
# Modules any import of which is a finding.
BANNED_MODULES = ("dill",)
_OBJECTS = "builds Python objects the document names"
_ANY_OBJECT = "builds any Python object the document names"
# Loaders that run code from their input whatever the arguments (fnmatch patterns) -> why.
LOADERS: dict[str, str] = {
    "pandas.read_pickle": "unpickles the file",
    "multiprocessing.reduction.ForkingPickler.loads": "is pickle.loads",
    # Their connections' recv() unpickles whatever the other end of the socket sends.
    "multiprocessing.connection.Client": "unpickles what the other end sends (recv)",
    "multiprocessing.connection.Listener": "unpickles what the other end sends (recv)",
    "multiprocessing.managers.*Manager": "unpickles what the manager's server sends",
    "torch.hub.load": "runs the hubconf.py of the repository it fetches",
    "torch.package.PackageImporter": "unpickles the package",
    "yaml.full_load": _OBJECTS,
    "yaml.full_load_all": _OBJECTS,
    "yaml.unsafe_load": _ANY_OBJECT,
    "yaml.unsafe_load_all": _ANY_OBJECT,
    "yaml.Loader": _ANY_OBJECT,
    "yaml.FullLoader": _OBJECTS,
    "yaml.UnsafeLoader": _ANY_OBJECT,
    "yaml.CLoader": _ANY_OBJECT,
    "yaml.CFullLoader": _OBJECTS,
    "yaml.CUnsafeLoader": _ANY_OBJECT,
    "yaml.constructor.Constructor": _ANY_OBJECT,
    "yaml.constructor.FullConstructor": _OBJECTS,
    "yaml.constructor.UnsafeConstructor": _ANY_OBJECT,
    "ruamel.yaml.Loader": _ANY_OBJECT,
    "ruamel.yaml.UnsafeLoader": _ANY_OBJECT,
    "ruamel.yaml.Constructor": _ANY_OBJECT,
    "ruamel.yaml.constructor.Constructor": _ANY_OBJECT,
    "ruamel.yaml.load": _ANY_OBJECT,
    "ruamel.yaml.load_all": _ANY_OBJECT,
    "cleanlab.Datalab.load": "unpickles the saved Datalab",
    "sklearn.datasets.fetch_*": "joblib-loads its cache under data_home",
    "mlflow.*.load_model": "unpickles the logged model",
    "mlflow.*load_pyfunc": "unpickles the logged model",  # pyfunc.load_pyfunc, a flavor's
    # dask's wire format (red team 10): each unpickles the frames it is given whatever they
    # name (a header's "pickle" serializer, msgpack's pickled objects)
    "distributed.protocol.*loads": "unpickles the frames it is given",
    "distributed.protocol.*deserializ*": "unpickles frames whose header names pickle",
    "cleanlab.datalab.internal.serialize.*deserialize": "unpickles the saved Datalab",
    "*.read_pickle": "unpickles the file",  # pandas re-exports it (pandas.io.api, ...)
}
# Loaders safe only with the right argument: name -> (rule, parameter, its position or None).
CONDITIONAL: dict[str, tuple[str, str, int | None]] = {
    "numpy.load": ("SAST101", "allow_pickle", 2),
    "numpy.NpzFile": ("SAST101", "allow_pickle", 2),
    "numpy.lib.format.read_array": ("SAST101", "allow_pickle", 1),
    "torch.load": ("SAST101", "weights_only", None),
    "torch.hub.load_state_dict_from_url": ("SAST101", "weights_only", 6),
    "yaml.load": ("SAST101", "Loader", 1),
    "yaml.load_all": ("SAST101", "Loader", 1),
    "skops.io.load": ("SAST103", "trusted", 1),
    "skops.io.loads": ("SAST103", "trusted", 1),
    "ruamel.yaml.YAML": ("SAST101", "typ", 0),
}
SAFE_YAML_LOADERS = frozenset(
    {"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader", "yaml.CBaseLoader"}
)
SAFE_RUAMEL_TYPES = frozenset({"rt", "safe", "base"})
# Other spellings of the same objects (the longest matching prefix is rewritten).
CANONICAL: dict[str, str] = {
    "_pickle": "pickle",
    "cPickle": "pickle",
    "pickle5": "pickle",
    "dill._dill": "dill",
    "sklearn.externals.joblib": "joblib",
    "joblib.numpy_pickle": "joblib",
    "numpy.lib.npyio": "numpy",
    "numpy.lib._npyio_impl": "numpy",
    "pandas.io.pickle": "pandas",
    "torch.serialization": "torch",
    "yaml.loader": "yaml",
    "yaml.cyaml": "yaml",
    "ruamel.yaml.main": "ruamel.yaml",
    "ruamel.yaml.loader": "ruamel.yaml",
    "skops.io._persist": "skops.io",
    "cleanlab.datalab.datalab": "cleanlab",
    "dask.distributed": "distributed",
}
# Another module's attribute of one of these names is that module (``logging.handlers.pickle``,
# ``os.sys``); ``np``/``pd`` are the names everyone imports numpy and pandas under.
SEGMENTS: dict[str, str] = {
    **{m: m for m in ["pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle"]},
    **{m: m for m in ["joblib", "jsonpickle", "yaml", "numpy", "pandas", "torch", "skops"]},
    **{m: m for m in ["importlib", "builtins", "sys", "pkgutil", "runpy", "ctypes"]},
    "np": "numpy",
    "pd": "pandas",
}
# Calls that import the module they are given the name of (first argument or name=).
IMPORTERS = frozenset(
    {
        "builtins.__import__",
        "importlib.import_module",
        "importlib.__import__",
        "pkgutil.resolve_name",
        "pydoc.locate",
    }
)
_FINDS_OBJECTS = "loads objects named by package metadata (a planted *.dist-info can name any)"
# Names whose use reaches modules or objects without naming them (fnmatch patterns) -> why.
HIDDEN: dict[str, str] = {
    "importlib.util.module_from_spec": "builds a module from a spec this check cannot read",
    "importlib._bootstrap.*": "uses the import system's internals",
    "importlib._bootstrap_external.*": "uses the import system's internals",
    "_frozen_importlib.*": "uses the import system's internals",
    "_frozen_importlib_external.*": "uses the import system's internals",
    "_imp.*": "uses the import system's internals",
    "importlib.metadata.entry_points": _FINDS_OBJECTS,
    "importlib_metadata.entry_points": _FINDS_OBJECTS,
    "pkg_resources.iter_entry_points": _FINDS_OBJECTS,
    "pkg_resources.load_entry_point": _FINDS_OBJECTS,
    "inspect.getmodule": "gives back the module an object comes from (pickle.dumps -> pickle)",
    "gc.get_objects": "searches every live object (any module among them)",
    "gc.get_referrers": "searches live objects (any module among them)",
    "gc.get_referents": "searches live objects (any module among them)",
}
# exec/eval: bandit (B102, B307) flags the plain call; any other spelling is SAST104.
RUNNERS = frozenset({"builtins.exec", "builtins.eval"})
# Calls that run code held in a string (first argument, or one of _CODE_KEYWORDS): a literal
# is checked like the code around it, a computed one is a finding.
STRING_RUNNERS = frozenset(
    {
        "builtins.compile",
        "timeit.timeit",
        "timeit.repeat",
        "timeit.Timer",
        "cProfile.run",
        "cProfile.runctx",
        "profile.run",
        "profile.runctx",
        "pdb.run",
        "pdb.runeval",
        "pdb.runctx",
        "code.compile_command",
    }
)
_CODE_KEYWORDS = ("source", "stmt", "setup", "cmd", "statement", "expression")
# Names any use of which runs code this check cannot read (fnmatch patterns) -> why.
CODE_RUNNERS: dict[str, str] = {
    "runpy.*": "runs a module or file as code",
    "imp.load_source": "runs a file as code",
    "imp.load_compiled": "runs a compiled file as code",
    "code.interact": "runs code given as text",
    "code.InteractiveInterpreter": "runs code given as text",
    "code.InteractiveConsole": "runs code given as text",
    "doctest.*": "runs the code held in docstrings",
    "ctypes.pythonapi": "calls the interpreter's C API (PyRun_String)",
    "ctypes.PyDLL": "calls the interpreter's C API (PyRun_String)",
    "ctypes.pydll": "calls the interpreter's C API (PyRun_String)",
    "logging.config.fileConfig": "evaluates expressions from a configuration file",
    "logging.config.listen": "takes a logging configuration (code included) from a socket",
    # Debuggers, tracers and profilers run a command string: Bdb().run(cmd), Trace().runctx(cmd).
    "bdb.Bdb": "runs code given as text (run, runeval, runctx)",
    "pdb.Pdb": "runs code given as text (run, runeval, runctx)",
    "*.bdb.Bdb": "runs code given as text (run, runeval, runctx)",
    "trace.Trace": "runs code given as text (run, runctx)",
    "cProfile.Profile": "runs code given as text (run, runctx)",
    "profile.Profile": "runs code given as text (run, runctx)",
    "_xxsubinterpreters.run_string": "runs code given as text in a subinterpreter",
    "site.addsitedir": "runs the import lines of the .pth files in the folder",
    "site.addpackage": "runs the import lines of a .pth file",
}
# Constructors of functions and code objects: calling one runs no bandit-visible exec.
CODE_BUILDERS = frozenset({"types.FunctionType", "types.LambdaType", "types.CodeType"})
# Programs that run a command line: ``python -c CODE`` and ``python -m pickle FILE`` are read.
COMMANDS = frozenset(
    {
        *(f"subprocess.{f}" for f in ["run", "call", "check_call", "check_output", "Popen"]),
        *(f"subprocess.{f}" for f in ["getoutput", "getstatusoutput"]),
        *(f"os.{f}" for f in ["system", "popen", "execv", "execve", "execvp", "execvpe"]),
        *(f"os.{f}" for f in ["execl", "execle", "execlp", "execlpe", "spawnv", "spawnve"]),
        *(f"os.{f}" for f in ["spawnvp", "spawnvpe", "spawnl", "spawnle", "posix_spawn"]),
        *(f"os.{f}" for f in ["spawnlp", "spawnlpe"]),
        *(f"asyncio.{f}" for f in ["create_subprocess_exec", "create_subprocess_shell"]),
        "os.posix_spawnp",
    }
)
# Functions that always run their argument through a shell (bandit's B605, by plain name only).
_SHELL_RUNNERS = frozenset(
    {
        "os.system",
        "os.popen",
        "subprocess.getoutput",
        "subprocess.getstatusoutput",
        "asyncio.create_subprocess_shell",
    }
)
# Calls whose shell= runs the command through a shell (bandit's B602 reads it only when spelled out).
_SHELL_TAKERS = frozenset(
    f"subprocess.{f}" for f in ["run", "call", "check_call", "check_output", "Popen"]
)
# Keyword arguments bandit's plugins read by name (bandit 1.9, ``bandit/plugins/*.py``), each
# with the calls it is read on (fnmatch over the qualified name; "*": any call) and the test.
# bandit reads a keyword only where it is written out at a call it can name: one passed through
# ``**mapping``, given to ``functools.partial``, or written out at a call of the function under
# another name is not read at all (SAST106). ``shell=`` (SAST104) and the loaders' ``Loader=``/
# ``weights_only=``/``allow_pickle=`` (SAST101) have rules of their own.
_VERBS = ("get", "options", "head", "post", "put", "patch", "delete")
# bandit: the qualified name starts with requests (httpx) and ends with one of these.
_HTTP = (
    *(f"requests.{p}{v}" for v in _VERBS for p in ["", "*."]),
    *(
        f"httpx.{p}{v}"
        for v in [*_VERBS, "request", "stream", "Client", "AsyncClient"]
        for p in ["", "*."]
    ),
)
_KEYGEN = (
    "cryptography.hazmat.primitives.asymmetric.*.generate_private_key",
    "Crypto.PublicKey.*.generate",
    "Cryptodome.PublicKey.*.generate",
)
_TLS = ("ssl.wrap_socket", "ssl.SSLContext", "*SSL.Context")  # B502 by name (any call by value)
_HUB = ("*.from_pretrained", "*load_dataset", "*hf_hub_download", "*snapshot_download")
BANDIT_KEYWORDS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "verify": ((_HTTP, "B501"), (("logging.config.listen",), "B612")),
    "timeout": ((_HTTP, "B113"),),
    "debug": ((("*.run",), "B201"),),
    "autoescape": ((("*jinja2*.Environment",), "B701"),),
    "filter": ((("*.extractall",), "B202"),),
    "members": ((("*.extractall",), "B202"),),
    "usedforsecurity": ((("hashlib.*",), "B324"),),
    "name": ((("hashlib.new",), "B324"),),
    "salt": ((("crypt.crypt",), "B324"),),
    "method": ((("*",), "B502"), (_TLS, "B502"), (("crypt.mksalt",), "B324")),
    "ssl_version": ((("*",), "B502"), (_TLS, "B502")),
    "key_size": ((_KEYGEN, "B505"),),
    "bits": ((_KEYGEN, "B505"),),
    "curve": ((_KEYGEN, "B505"),),
    "revision": ((_HUB, "B615"),),
    "commit_id": ((_HUB, "B615"),),
    "mpModel": ((("pysnmp.hlapi.CommunityData",), "B508"),),
}
# Settings the libraries read back from an object, under the name of a keyword above:
# requests' ``Session.verify``, jinja2's ``Environment.autoescape``, Flask's ``app.debug`` and
# ``app.config["DEBUG"]`` (read by ``app.run()``), urllib3's ``ssl_version``. bandit reads none
# of them once assigned (``session.verify = False``), given to ``setattr``, set as a mapping key
# (``kwargs["verify"] = False``, ``app.config.update(DEBUG=True)``) or as a class attribute:
# SAST106 on any object when the value is what bandit flags written out (``False``/``0`` for
# verify and autoescape, ``True``/``1`` for debug, a protocol its B502 lists), as far as a value
# is known here (``_constants``). Setting -> (the keyword bandit reads, which values are insecure).
BANDIT_BAD_PROTOCOLS = frozenset(  # bandit's B502 ``bad_protocol_versions`` (its default)
    [
        "PROTOCOL_SSLv2",
        "SSLv2_METHOD",
        "SSLv23_METHOD",
        "PROTOCOL_SSLv3",
        "PROTOCOL_TLSv1",
        "SSLv3_METHOD",
        "TLSv1_METHOD",
        "PROTOCOL_TLSv1_1",
        "TLSv1_1_METHOD",
    ]
)
SETTINGS: dict[str, tuple[str, str]] = {
    "verify": ("verify", "off"),
    "autoescape": ("autoescape", "off"),
    "debug": ("debug", "on"),
    "DEBUG": ("debug", "on"),  # Flask's config key (app.config["DEBUG"], a config object's DEBUG)
    "ssl_version": ("ssl_version", "protocol"),
    "method": ("method", "protocol"),
}
# Settings bandit has no test for at all, with the values that switch a check off (SAST106 on
# any object, as above): an ``ssl.SSLContext``'s ``check_hostname`` (``False``/``0``) and
# ``verify_mode`` (``ssl.CERT_NONE`` under any name, or ``0``); the environment variables
# Flask and Werkzeug read, set as a mapping key (``os.environ``, a child's ``env``) or through
# ``os.putenv``: ``FLASK_DEBUG`` (any text but ""/"0"/"false"/"no", as Flask's
# ``get_debug_flag`` reads it), ``FLASK_ENV=development`` (Flask < 2.3) and
# ``WERKZEUG_DEBUG_PIN=off`` (the debugger's console with no PIN). And a module-level ``DEBUG``
# in a settings module (``_settings_module``). Setting -> (how it is insecure, what it does).
UNREAD_SETTINGS: dict[str, tuple[str, str]] = {
    "check_hostname": ("off", "TLS without a host name check"),
    "verify_mode": ("cert_none", "TLS without certificate verification"),
    "FLASK_DEBUG": ("debug_text", "Flask's debug mode (the debugger runs code sent to it)"),
    "FLASK_ENV": ("development", "Flask's debug mode (the debugger runs code sent to it)"),
    "WERKZEUG_DEBUG_PIN": ("pin_off", "Werkzeug's debugger console without a PIN"),
    # tarfile's default filter (an extractall()/extract() without filter=): anything but
    # tarfile.data_filter/tar_filter (a lambda returning the member, fully_trusted_filter)
    # lets a member write outside the folder; None is the default, judged at the call.
    "extraction_filter": (
        "tar_filter",
        "tarfile extraction that trusts the archive's paths and links (a member can write "
        "outside the folder); use staticmethod(tarfile.data_filter)",
    ),
}
_FLASK_FALSE = frozenset({"", "0", "false", "no"})  # flask.helpers.get_debug_flag
# tarfile's filters that keep members inside the folder (by name at filter=, or the function).
_SAFE_TAR_FILTERS = frozenset({"data", "tar"})
_SAFE_TAR_FILTER_FUNCS = frozenset({"tarfile.data_filter", "tarfile.tar_filter"})
# Archive methods that write members to disk: bandit's B202 reads a call whose name contains
# "extractall" in a module holding ``import tarfile``, and passes only filter="data" there.
_EXTRACTS = frozenset({"extractall", "extract"})
_PUTENV = frozenset({"os.putenv", "posix.putenv"})
# The environment variables above, judged in any mapping (a child's env dict) as SAST107 reads
# the PYTHON* ones.
_DEBUG_ENV = frozenset({"FLASK_DEBUG", "FLASK_ENV", "WERKZEUG_DEBUG_PIN"})
_SETATTR = frozenset(
    {"builtins.setattr", "builtins.object.__setattr__", "builtins.type.__setattr__"}
)
# A module-level DEBUG is a setting in a module named like settings (Django's settings.py,
# settings/prod.py) or one that also binds what only a settings module binds.
_SETTINGS_NAMES = frozenset({"SECRET_KEY", "ALLOWED_HOSTS"})
_UNVERIFIED_CONTEXT = "ssl._create_unverified_context"  # bandit's B323, read only when called
_ALL_SETTINGS = frozenset(SETTINGS) | frozenset(UNREAD_SETTINGS)
_PARTIALS = frozenset({"functools.partial", "functools.partialmethod"})
# Keywords bandit reads at any call (by value: an SSL/TLS protocol constant).
# Calls that reach a scope's names by name (a dict bound there can be changed through them).
_NAMESPACE_CALLS = frozenset(
    f"builtins.{n}" for n in ["locals", "vars", "globals", "exec", "eval", "compile"]
)
# Methods of a dict that add no key to it (any other use of the dict may add one).
_DICT_READS = frozenset(
    ["get", "keys", "values", "items", "copy", "pop", "popitem", "clear", "__contains__"]
)
# Mappings from names to modules or attributes: a subscript or .get() is a lookup.
MODULE_TABLES = frozenset({"sys.modules", "builtins"})
_SYS_MODULES_WRITES = frozenset(
    {"sys.modules.update", "sys.modules.setdefault", "sys.modules.__setitem__"}
)
# Writes to the import path (red team 10): ``sys.path.insert(0, "data/blob.zip")`` then
# ``import evil`` ran a module no scan reads (a zip, a folder outside [sast].paths); a name
# imported after such a write looks like an installed package. Method -> its value argument.
_SYS_PATH_WRITES = {
    "sys.path.insert": 1,
    "sys.path.append": 0,
    "sys.path.extend": 0,
    "sys.path.__setitem__": 1,
    "sys.path.__iadd__": 0,
}
_SYS_PATH_WHY = (
    "adds to sys.path a folder this check cannot tell is the scanned file's own or above it "
    "(modules imported from there, a zip or a folder outside [sast].paths, are code no scan reads)"
)
# Calls that keep a path a folder of the scanned file (or above it): ``str(Path(__file__)
# .resolve().parent)``, ``os.path.dirname(os.path.abspath(__file__))``.
_SAME_FOLDER_CALLS = frozenset(
    {
        "builtins.str",
        "os.fspath",
        "os.path.dirname",
        "os.path.abspath",
        "os.path.realpath",
        "os.path.normpath",
        "pathlib.Path",
    }
)
# Joins that go up from a path when every part after the first is ``..`` (``os.path.join(
# os.path.dirname(__file__), "..")``, the commonest spelling of a script's parent folder).
# ``os.pardir`` is not read: any module can rebind it (``os.pardir = "data"``).
_JOINS = frozenset({"os.path.join"})
# What the rule trusts to keep a folder of the file, replaced, is any folder.
_FOLDER_NAMES = (
    _SAME_FOLDER_CALLS
    | _JOINS
    | {
        f"pathlib.{cls}.{attr}"
        for cls in ("Path", "PurePath", "PosixPath", "PurePosixPath")
        for attr in (
            *("parent", "parents", "resolve", "absolute", "as_posix", "__truediv__"),
            *("__fspath__", "__str__", "__new__", "__init__"),
        )
    }
)
# A child interpreter (SAST107): the program word of a command line that is Python (a literal
# ``python3``, ``/usr/bin/python3.11``, ``pypy``; ``sys.executable`` under any name;
# ``shutil.which("python3")``; ``os.environ["_"]``), the file or module it runs, and the
# ``PYTHON*`` variables that make any child read code from elsewhere.
_INTERPRETER = re.compile(r"(?:python|pypy)[0-9.]*[dmtw]?(?:\.exe)?")
_INTERPRETER_NAMES = frozenset({"sys.executable", "sys._base_executable", "sys.orig_argv"})


def _template_text(word: ast.expr | str) -> str | None:
    """A word built from a literal template, each placeholder read as ``0`` (``f"python3.{v}"``,
    ``"python%d.%d" % v``, ``"python{}".format(v)``, ``f"{venv}/bin/python3"``); None for any
    other word."""
    if isinstance(word, ast.JoinedStr):
        return "".join(_literal_str(v) or "0" for v in word.values)
    if isinstance(word, ast.BinOp) and isinstance(word.op, ast.Mod):
        left = _literal_str(word.left)
        return None if left is None else _PERCENT.sub("0", left)
    if isinstance(word, ast.Call) and isinstance(word.func, ast.Attribute):
        template = _literal_str(word.func.value)
        if word.func.attr == "format" and template is not None:
            return _BRACES.sub(
                lambda m: m.group()[0] if m.group() in ("{{", "}}") else "0", template
            )
    return None


def _interpreter_tail(text: str, *, joined: bool) -> bool:
    """The literal end of a path computed at run time names Python: ``"bin/python3"`` or
    ``"python"`` as a part (``venv / "bin" / "python"``, ``os.path.join(venv, "bin",
    "python")``), ``"/bin/python3"`` glued to a folder (``venv + "/bin/python"``,
    ``f"{venv}/bin/python3"``, ``bindir + "python3"``: ``joined``)."""
    if _spaced(text) or not (joined or text):
        return False
    return bool(_INTERPRETER.fullmatch(text.rsplit("/", 1)[-1]))


_WHICH = frozenset({"shutil.which"})
_ENV_READS = frozenset({"os.getenv", "os.environ.get"})
_PATH_CALLS = frozenset(
    {
        *("builtins.str", "os.fspath", "pathlib.Path", "os.path.abspath", "os.path.realpath"),
        *("os.fsencode", "os.fsdecode"),
    }
)
_SET_EXECUTABLE = "set_executable"
# Shells whose ``-c`` runs a command string (``sh -c "python3 " + path``): read as one.
_SHELLS = frozenset(["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"])
# Calls that build a command line from their one argument's words (``shlex.split(text)``,
# ``shlex.join(words)``); ``text.split()``, ``" ".join(words)`` and ``"...".format(...)`` too.
_COMMAND_BUILDERS = frozenset(["shlex.split", "shlex.join", "subprocess.list2cmdline"])
# Placeholders of %-formatting and str.format, read as words of a command line.
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]")
_BRACES = re.compile(r"\{\{|\}\}|\{[^{}]*\}")
_MARK = re.compile("\x00([0-9]+)\x00")
# Folders a child's PATH may put before the one it had (the system's own, never the tree's).
_SYSTEM_FOLDERS = ("/usr/", "/bin", "/sbin")
_MAX_COMMANDS = 16  # spellings of one command line followed (names bound several times)
# Programs that run the rest of their command line (``env PYTHONPATH=x python ...``,
# ``nice -n 10 python ...``): Python after them is the program; after any other word
# (``uv python install``, ``pyenv python``) it is an argument.
_WRAPPERS = frozenset(
    ["env", "nice", "nohup", "time", "timeout", "sudo", "exec", "stdbuf", "ionice", "setsid"]
)
# Wrapper options that take the next word (``env -C DIR``, ``sudo -u USER``, ``timeout -k 5s``)
# and ``timeout``'s duration: read past before the program (``-C``/``--chdir`` set the folder).
_WRAPPER_TAKES = frozenset(
    ["-C", "--chdir", "-u", "--user", "-g", "--group", "-k", "--kill-after", "-s", "--signal"]
)
_DURATION = re.compile(r"[0-9]+(?:\.[0-9]+)?[smhd]?")
# Python's options that take the next word (``-W error``, ``-X dev``, ``--check-hash-based-pycs
# always``); ``-I`` (isolated) leaves only the environment's own modules importable.
_PYTHON_TAKES = frozenset({"-W", "-X", "--check-hash-based-pycs"})
# Modules that run the script, module or code given after them (red team 14): name -> (options
# taking a value, options naming a module, options giving code, whether every argument is one).
_SCRIPT_RUNNERS: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str], bool]] = {
    "runpy": (frozenset(), frozenset(), frozenset(), False),
    "trace": (
        frozenset({"-C", "--coverdir", "--ignore-module", "--ignore-dir"}),
        frozenset({"--module"}),
        frozenset(),
        False,
    ),
    "cProfile": (
        frozenset({"-o", "--outfile", "-s", "--sort"}),
        frozenset({"-m"}),
        frozenset(),
        False,
    ),
    "profile": (
        frozenset({"-o", "--outfile", "-s", "--sort"}),
        frozenset({"-m"}),
        frozenset(),
        False,
    ),
    "pdb": (frozenset(), frozenset({"-m"}), frozenset({"-c", "--command"}), False),
    "timeit": (
        frozenset({"-n", "--number", "-r", "--repeat", "-u", "--unit"}),
        frozenset(),
        frozenset({"-s", "--setup"}),
        True,
    ),
    "code": (frozenset(), frozenset(), frozenset(), False),
    "doctest": (frozenset({"-o", "--option"}), frozenset(), frozenset(), True),
    "pydoc": (frozenset({"-p", "-n"}), frozenset(), frozenset(), True),
    "unittest": (frozenset({"-k"}), frozenset(), frozenset(), True),
    "inspect": (frozenset(), frozenset(), frozenset(), False),
    # sast107d: debuggers and shells that run a script, a module or code they are given
    "ipdb": (frozenset(), frozenset({"-m"}), frozenset({"-c", "--command"}), False),
    "IPython": (
        frozenset({"--profile", "--ipython-dir", "--config", "--log-level", "--colors"}),
        frozenset({"-m"}),
        frozenset({"-c"}),
        False,
    ),
    "debugpy": (
        frozenset({"--listen", "--connect", "--log-to", "--configure-subProcess", "--pid"}),
        frozenset({"-m"}),
        frozenset({"-c"}),
        False,
    ),
}
_PATH_RUNNERS = frozenset(
    {"trace", "cProfile", "profile", "pdb", "doctest", "ipdb", "IPython", "debugpy"}
)
# Modules that run code the tree holds whatever they are given (sast107d): pytest imports test
# files, every conftest.py and the plugins its configuration names (pytest.ini, pyproject.toml's
# addopts: the pull request's), build runs the project's build backend (pyproject.toml).
_TESTS = "imports test files, conftest.py files and the plugins the tree's configuration names"
_BUILDS = "builds or installs the project: the build backend its pyproject.toml names runs"
_SERVES = "imports the application named module:attr from the working folder"
_TREE_RUNNERS = {
    "pytest": _TESTS,
    "py.test": _TESTS,
    "build": _BUILDS,
    "hatch": _BUILDS,
    "poetry": _BUILDS,
    "pdm": _BUILDS,
    "flit": _BUILDS,
    "uv": "installs, builds or runs projects and scripts (uv run, uv pip install, uv build)",
    "pipx": "installs and runs packages from an index or a path",
    "nox": "runs the sessions of the tree's noxfile.py",
    "tox": "runs the commands of the tree's tox.ini and installs the project",
    "invoke": "runs the tasks of the tree's tasks.py",
    "sphinx": "runs the tree's conf.py and the extensions it names",
    "mkdocs": "runs the hooks and plugins the tree's mkdocs.yml names",
    "jupyter": "runs notebooks and kernels (nbconvert --execute, lab, run)",
    "nbconvert": "runs notebooks given --execute",
    "papermill": "runs the notebooks it is given",
    # sast108: servers and workers that import the application their command line, environment
    # or working folder names (``uvicorn data.evil:app``): each puts the working folder (or its
    # --app-dir / --chdir) first on sys.path, so any name may be the tree's own module.
    "uvicorn": _SERVES,
    "gunicorn": f"{_SERVES}, and runs the working folder's gunicorn.conf.py",
    "hypercorn": f"{_SERVES}, and the Python configuration file it is given",
    "daphne": _SERVES,
    "waitress": _SERVES,
    "fastapi": "imports the application of the path it is given (fastapi run / dev)",
    "flask": "imports the app --app or FLASK_APP names, or the working folder's app.py/wsgi.py",
    "celery": "imports the application -A names and its configuration module",
    "streamlit": "runs the script it is given (streamlit run) and the pages beside it",
    "django": "imports the settings module and the apps DJANGO_SETTINGS_MODULE names",
    "locust": "imports the locustfile.py of the working folder or -f",
    "alembic": "runs the env.py and migration scripts of the tree's alembic.ini",
    "pre_commit": "runs the hooks of the tree's .pre-commit-config.yaml (local hooks: any command)",
    # sast109: task queues' workers (they import the actors, jobs or instance they are named, the
    # working folder first on sys.path), app servers that run the scripts and notebooks given
    # to them, and the notebook runners' other programs (jupyter-nbconvert, jupyter-execute).
    "dramatiq": "imports the broker and actor modules it is given, the working folder first on sys.path",
    "rq": "imports the job functions, the -c settings module and the classes it names from the working folder (--path, . by default)",
    "huey.bin.huey_consumer": "imports the Huey instance it is given (module.attr), the working folder first on sys.path",
    "bokeh": "runs the application scripts, notebooks and folders it is given (bokeh serve, json)",
    "panel": "runs the application scripts and notebooks it is given (panel serve, convert)",
    "voila": "runs the notebooks it is given in a kernel",
    "nbclient": "runs the notebooks it is given (jupyter-execute)",
}
# sast108: tools that import plugins named in a configuration file they look for in the working
# folder (or above): module -> (the option that names another file, what it runs). Checked with
# the real tools: mypy's ``plugins = ["evil.py"]`` ran under -I too (a path); coverage's
# ``plugins = evil`` (a module name) ran at every command of ``python -m coverage``, not under
# -I/-P nor from the coverage program (the working folder is then not on sys.path);
# ``--config-file=`` and ``--rcfile=/dev/null`` stop both.
_CONFIG_RUNNERS = {
    "mypy": ("--config-file", "imports the plugins of mypy.ini, pyproject.toml or setup.cfg"),
    "coverage": (
        "--rcfile",
        "imports the plugins of .coveragerc, setup.cfg, tox.ini or pyproject.toml (run and "
        "the reports put the working folder first on sys.path; run given no program runs the "
        "one their [run] command_line names)",
    ),
    "pylint": ("--rcfile", "imports load-plugins and runs init-hook of pylintrc or pyproject.toml"),
    "flake8": ("--isolated", "imports the local plugins of .flake8, setup.cfg or tox.ini"),
}
# sast108: the same tools called in this process (``pytest.main(["data"])``): call -> the module
# whose command line its first argument (or ``args=``/``argv=``) is, judged as ``python -m`` it.
_IN_PROCESS = {
    "pytest.main": "pytest",
    "pytest.console_main": "pytest",
    "_pytest.config.main": "pytest",
    "unittest.main": "unittest",
    "unittest.TestProgram": "unittest",
    "unittest.main.main": "unittest",
    "unittest.main.TestProgram": "unittest",
    "pip.main": "pip",
    "pip._internal.main": "pip",
    "pip._internal.cli.main.main": "pip",
    "coverage.cmdline.main": "coverage",
    "mypy.api.run": "mypy",
    "mypy.main.main": "mypy",
    # sast109: the servers' and workers' own command-line entry points
    "uvicorn.main": "uvicorn",
    "uvicorn.main.main": "uvicorn",
    "celery.bin.celery.main": "celery",
    "celery.__main__.main": "celery",
}
# sast109: servers run in this process on an application named by an import string
# ("pkg.module:app", imported when the server starts; uvicorn's app_dir= goes first on sys.path):
# the call -> the keyword of the application, also its first argument.
_APP_STRINGS = frozenset(
    {"uvicorn.run", "uvicorn.main.run", "uvicorn.Config", "uvicorn.config.Config"}
)
# gunicorn's applications that read the working folder's gunicorn.conf.py (Python) and import the
# application the process's command line names; a BaseApplication subclass reads neither, but
# the settings it is given import what they name (worker_class="pkg.mod.Worker" ...).
_GUNICORN_APPS = frozenset(
    {
        "gunicorn.app.base.Application",
        "gunicorn.app.wsgiapp.WSGIApplication",
        "gunicorn.app.wsgiapp.run",
    }
)
_GUNICORN_BASE = "gunicorn.app.base.BaseApplication"
_GUNICORN_IMPORTS = frozenset(
    {"worker_class", "logger_class", "wsgi_app", "config", "paste", "pythonpath", "chdir"}
)
# A Celery app's worker started in this process: it imports the modules its configuration
# names (include=, imports, config_from_object's module) and runs the tasks sent to it.
_CELERY_WORKERS = frozenset(
    {"celery.Celery.worker_main", "celery.Celery.start", "celery.Celery.Worker"}
)
# sast111: the last part of each in-process starter's name (``run`` of ``uvicorn.run``, ``main``
# of ``pytest.main``): ``operator.methodcaller`` of one of these names is judged by its receiver.
_STARTER_METHODS = frozenset(
    {"run", "Config", "Application", "WSGIApplication", "worker_main", "start", "Worker"}
    | {"Nanny", "Scheduler", "Coverage", "coverage", "main", "console_main", "TestProgram"}
)
# coverage's API: Coverage(config_file=True), the default, reads the working folder's
# .coveragerc/setup.cfg/tox.ini/pyproject.toml and imports the plugins they name (checked).
_COVERAGE_API = frozenset({"coverage.Coverage", "coverage.coverage", "coverage.control.Coverage"})
# Coverage(data_file, data_suffix, cover_pylib, auto_data, timid, branch, config_file, ...)
_COVERAGE_CONFIG_AT = 6
# sast109: options of those tools that name code whatever the configuration: a file read as
# configuration too, modules imported, Python code run.
_CONFIG_EXTRAS = {
    "flake8": {"--append-config": "file"},
    "pylint": {"--load-plugins": "modules", "--init-hook": "code"},
}
# Configuration files that name no file the pull request can write (the option's value).
_NO_CONFIG = frozenset({"", "/dev/null"})
# sast109: a configuration file under these is the machine's, which the pull request does not
# write (as PATH's system folders); any other path (relative: the working folder's, or under the
# checkout, whose absolute place CI's runners make known) may be the tree's.
_SYSTEM_CONFIG = ("/etc/", "/usr/")
# sast110: coverage's variables that name a configuration file for a child (its plugins are
# imported: by ``coverage`` run there, or at the start of every Python child through the
# ``.pth`` file coverage installs), judged as a tool's configuration path; and the one that holds
# the configuration itself (``COVERAGE_PROCESS_CONFIG``, plugins too), which fails set to anything.
_COVERAGE_ENV_PAIRS = (  # pairs, not a dict display (a display with these keys is judged)
    ("COVERAGE_RCFILE", "names the configuration coverage reads in a child (its plugins imported)"),
    (
        "COVERAGE_PROCESS_START",
        "makes every Python child start coverage with that configuration (the .pth file "
        "coverage installs), importing the plugins it names",
    ),
)
_COVERAGE_ENV: dict[str, str] = dict(_COVERAGE_ENV_PAIRS)
_COVERAGE_CONFIG_DATA = "COVERAGE_PROCESS_CONFIG"
# sast111: dask's configuration settings that import code (each worker, scheduler, nanny or
# client reads them at its start; checked with the real dask 2026.8): key (``-`` for ``_``) ->
# how each item is judged ("preload": as --preload; "modules": a module name each). Set for a
# child as DASK_DISTRIBUTED__WORKER__PRELOAD (its value read as a Python literal, as dask
# does), by dask.config.set in this process, or in a YAML file DASK_CONFIG names.
_DASK_CODE_KEYS = {
    "distributed.scheduler.preload": "preload",
    "distributed.worker.preload": "preload",
    "distributed.nanny.preload": "preload",
    "distributed.client.preload": "preload",
    "distributed.scheduler.http.routes": "modules",
    "distributed.worker.http.routes": "modules",
    "distributed.scheduler.allowed-imports": "modules",
    "distributed.client.security-loader": "modules",
    "distributed.scheduler.active-memory-manager.policies": "classes",
}
# Variables that name dask's configuration files (YAML read at import, any key above) or hold
# the whole configuration (DASK_INTERNAL_INHERIT_CONFIG: what dask passes to its workers).
_DASK_CONFIG_ENV = frozenset({"DASK_CONFIG", "DASK_ROOT_CONFIG"})
_DASK_CONFIG_DATA = "DASK_INTERNAL_INHERIT_CONFIG"
_DASK_SETS = frozenset({"dask.config.set"})
# A tool's own program, the same as python -m TOOL (``pytest data``, ``pip install .``).
_CONSOLE_SCRIPTS = {
    **{name: name for name in _TREE_RUNNERS if name not in ("sphinx", "django", "pre_commit")},
    **{name: name for name in _CONFIG_RUNNERS},
    "sphinx-build": "sphinx",
    "django-admin": "django",
    "pre-commit": "pre_commit",
    "waitress-serve": "waitress",
    "pip": "pip",
    "pip3": "pip",
    "dramatiq-gevent": "dramatiq",
    "rqworker": "rq",
    "huey_consumer": "huey.bin.huey_consumer",
    "huey_consumer.py": "huey.bin.huey_consumer",
    "jupyter-nbconvert": "nbconvert",
    "jupyter-execute": "nbclient",
    "jupyter-lab": "jupyter",
    "jupyter-notebook": "jupyter",
    "jupyter-server": "jupyter",
    "jupyter-run": "jupyter",
    "jupyter-kernel": "jupyter",
    "dask": "dask",
    "dask-worker": "distributed.cli.dask_worker",
    "dask-scheduler": "distributed.cli.dask_scheduler",
    "dask-spec": "distributed.cli.dask_spec",
    "dask-ssh": "distributed.cli.dask_ssh",
}
# sast109: dask's programs import the module, file or script text given to --preload (and
# --preload-nanny) in each worker, scheduler or nanny (a URL is downloaded and run); ``dask
# spec`` imports the classes its spec names. Module -> the command it is (None: ``dask CMD``).
_PRELOAD_RUNNERS: dict[str, str | None] = {
    "dask": None,
    "distributed.cli.dask_worker": "worker",
    "distributed.cli.dask_scheduler": "scheduler",
    "distributed.cli.dask_spec": "spec",
    "distributed.cli.dask_ssh": "ssh",
}
_PRELOADS = frozenset({"--preload", "--preload-nanny"})
# The same servers built in this process: their preload= / preload_nanny= are imported alike.
_DASK_SERVERS = frozenset(
    {
        *("distributed.Worker", "distributed.Nanny", "distributed.Scheduler"),
        *(
            "distributed.worker.Worker",
            "distributed.nanny.Nanny",
            "distributed.scheduler.Scheduler",
        ),
    }
)
# Calls and methods that keep a program Python (``sys.executable.replace(...)``, the
# interpreter's base name looked up on PATH); ``with_name``/``with_stem`` are judged by their name.
_PROGRAM_CALLS = frozenset({"os.path.basename", "os.path.normpath", "os.path.expanduser"})
_PROGRAM_METHODS = frozenset(
    {"replace", "strip", "rstrip", "lstrip", "lower", "resolve", "absolute", "expanduser"}
    | {"as_posix", "encode", "decode", "readlink", "with_suffix", "with_name", "with_stem"}
)
# pip's commands that install or build: a package's build backend or setup.py runs, and an
# installed wheel's .pth files run at the environment's next start (any source: a path, an index,
# a requirements file; a package name the pull request writes is code it chose).
_PIP_BUILDS = frozenset({"install", "wheel", "download"})
_PIP_TAKES = frozenset(
    {
        *("--log", "--log-file", "--local-log", "--cache-dir", "--proxy", "--timeout"),
        *("--retries", "--exists-action", "--trusted-host", "--cert", "--client-cert"),
        *("--keyring-provider", "--use-feature", "--use-deprecated"),
    }
)
# coverage run's options that take the next word; -m/--module makes its argument a module.
_COVERAGE_TAKES = frozenset(
    {"--rcfile", "--source", "--include", "--omit", "--concurrency", "--context", "--data-file"}
)
# sast111: coverage's commands that do not put the working folder on sys.path (from the coverage
# program or under -I/-P); run and the reporting commands do (checked with the real coverage).
_COVERAGE_NO_PATH = frozenset({"erase", "combine", "debug", "help"})
# Options of a runner whose value is a pickle it loads (trace's counts file, read at its start).
_PICKLE_OPTIONS = {"trace": frozenset({"-f", "--file"})}
# Calls that change the process's working folder (any receiver's .chdir: pytest's monkeypatch,
# a context manager): a child started without cwd= afterwards runs there (sast107d).
_CHDIRS = frozenset({"os.chdir", "posix.chdir", "os.fchdir", "posix.fchdir", "contextlib.chdir"})
_CHDIR_ATTRS = frozenset({"chdir", "fchdir"})
# Environment variables that make a Python child read code no scan read -> what they do.
# (Pairs, not a dict display: a display with these keys is judged as an environment.)
_PYTHON_ENV_PAIRS = (
    ("PYTHONPATH", "puts folders first on a child's import path"),
    ("PYTHONHOME", "moves a child's standard library to another folder"),
    ("PYTHONUSERBASE", "moves a child's user site-packages (the .pth files there run)"),
    ("PYTHONSTARTUP", "names a file a child runs when it starts interactively"),
    ("PYTHONINSPECT", "makes a child read code from its input after its script"),
    (
        "PYTHONEXECUTABLE",
        "changes the interpreter a child reports and starts its own children with",
    ),
    ("PYTHONPLATLIBDIR", "moves a child's platform library folder"),
    ("PYTHONPYCACHEPREFIX", "makes a child read compiled code from another folder"),
    ("PYTHONBREAKPOINT", "names a callable a child imports at breakpoint()"),
    ("PYTHONWARNINGS", "names warning categories a child imports from their modules"),
    ("PYTHONSAFEPATH", "turned off, puts a child's working folder first on its import path"),
)
PYTHON_ENV: dict[str, str] = dict(_PYTHON_ENV_PAIRS)
# The standard library's path and import machinery: replaced at run time (an assignment, a
# ``setattr``, its ``__dict__``), a later import, or a path the rules here trust (the sys.path
# rule's folders, a child's script), reads what no scan saw (SAST102). Attribute prefixes.
_MACHINERY = (
    "os.path.",
    "posixpath.",
    "ntpath.",
    "genericpath.",
    "builtins.",
    "importlib.",
    "pathlib.",
    "zipimport.",
    "pkgutil.",
    "site.",
    "os.fspath",
    "sys.executable",
    "sys._base_executable",
    "sys.meta_path",
    "sys.path_hooks",
    "sys.path_importer_cache",
    # What importlib's own loaders call at every import (red team 14): ``_io.open_code`` reads
    # each source file, ``_io.FileIO`` the rest, ``marshal.loads`` each cached .pyc, ``_imp``
    # builds extension and frozen modules; ``_frozen_importlib*`` are the loaders themselves.
    # (``io.open_code`` is not here: importlib holds ``_io``'s, which that write leaves alone.)
    "_io.open_code",
    "_io.FileIO",
    "marshal.loads",
    "_imp.",
    "_frozen_importlib.",
    "_frozen_importlib_external.",
)
_IMPORT_TABLES = frozenset({"sys.meta_path", "sys.path_hooks", "sys.path_importer_cache"})
_TABLE_WRITES = frozenset(
    ["insert", "append", "extend", "__setitem__", "__iadd__", "update", "setdefault", "__ior__"]
)
# A method called unbound, the table as its first argument (``list.insert(sys.meta_path, 0,
# F())``), or the operator module's in-place writes (``operator.setitem(table, k, v)``): the
# same writes as ``table.insert(...)`` (red team 14).
_UNBOUND_WRITES = frozenset(
    [f"builtins.list.{m}" for m in _TABLE_WRITES]
    + [f"builtins.dict.{m}" for m in _TABLE_WRITES]
    + [
        f"operator.{m}"
        for m in ("setitem", "iadd", "iconcat", "ior", "__setitem__", "__iadd__", "__iconcat__")
    ]
    + ["operator.__ior__"]
)
# Attributes that reach modules, globals or the import machinery behind any object.
GADGETS = frozenset(
    [
        "__globals__",
        "__subclasses__",
        "__builtins__",
        "f_globals",
        "f_locals",
        "f_builtins",
        "load_module",
        "exec_module",
    ]
)
# Attributes that reach code objects, rewrite what a call does, or the C API: SAST104.
CODE_GADGETS = frozenset(["__code__", "__defaults__", "__kwdefaults__"])
_C_API_PREFIXES = ("PyRun_", "PyEval_", "Py_CompileString")
# Methods of a module table that hand out its modules.
_TABLE_WALKS = frozenset(["values", "items", "copy", "pop", "popitem"])
# Calls that only describe their arguments: a module passed to them goes nowhere.
_INSPECTORS = frozenset(
    f"builtins.{n}"
    for n in [
        "dir",
        "isinstance",
        "issubclass",
        "id",
        "repr",
        "str",
        "hasattr",
        "callable",
        "print",
        "type",
    ]
)
# Calls whose first argument this check follows rather than treating it as passed away.
_FOLLOWED = frozenset(
    {
        "builtins.getattr",
        "builtins.hasattr",
        "builtins.vars",
        "functools.partial",
        "functools.partialmethod",
    }
)
_BUILTIN_NAMES = frozenset(dir(builtins))
_SHOWN = 60  # characters of source quoted in a message
_MAX_DEPTH = 20  # names bound to names bound to string literals
# What a value followed further than _MAX_DEPTH may be: every value a setting is judged by.
_ANY_CONSTANT = (False, True, "1", "development", "off")


def _prefixes() -> frozenset[str]:
    """Every module (or class) above a dangerous name: they carry it as an attribute."""
    found: set[str] = set()
    names = [*PICKLE_LIKE, *LOADERS, *CONDITIONAL, *IMPORTERS, *HIDDEN, *RUNNERS]
    for name in [*names, *STRING_RUNNERS, *CODE_RUNNERS, *CODE_BUILDERS, *MODULE_TABLES]:
        parts = name.split("*", 1)[0].rstrip(".").split(".")
        if not parts[0]:
            continue  # "*.read_pickle": no module above it
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + (name in PICKLE_LIKE)))
    return frozenset(found)


CARRIERS = _prefixes()
_GLOB_CARRIERS = tuple(
    n.split("*", 1)[0]
    for n in [*LOADERS, *HIDDEN, *CODE_RUNNERS]
    if "*" in n and n.split("*", 1)[0].strip(".")
)


@dataclass(frozen=True)
class UnsafeLoad:
    """One unsafe deserialization site (``col`` is 1-based; 0 when unknown)."""

    rule: str
    path: str
    line: int
    call: str
    message: str
    col: int = 0


# --- names ------------------------------------------------------------------------------------


@functools.cache
def _canonical(name: str) -> str:
    """``sklearn.externals.joblib.load`` -> ``joblib.load``; ``f.__call__`` -> ``f``."""
    while name.endswith(".__call__"):
        name = name.removesuffix(".__call__")
    for old in sorted(CANONICAL, key=len, reverse=True):
        if name == old or name.startswith(old + "."):
            name = CANONICAL[old] + name[len(old) :]
            break
    parts = name.split(".")
    for index in range(1, len(parts)):
        # ruamel.yaml is not yaml: a path this check knows by name keeps its name.
        if parts[index] in SEGMENTS and ".".join(parts[: index + 1]) not in CARRIERS:
            return _canonical(".".join([SEGMENTS[parts[index]], *parts[index + 1 :]]))
    return name


@functools.cache
def _pickle_like(name: str) -> str | None:
    return next(
        (
            m
            for m in sorted(PICKLE_LIKE, key=len, reverse=True)
            if name == m or name.startswith(m + ".")
        ),
        None,
    )


@functools.cache
def _loader(name: str) -> tuple[str, str] | None:
    """(rule, why) when using ``name`` at all loads code from what it reads (or hides it)."""
    module = _pickle_like(name)
    if module is not None:
        rule, safe = PICKLE_LIKE[module]
        rest = name[len(module) + 1 :]
        if rest and rest.split(".")[0] not in safe:
            return rule, f"{module} loads arbitrary objects"
        return None
    for rule, table in (("SAST101", LOADERS), ("SAST102", HIDDEN), ("SAST104", CODE_RUNNERS)):
        for pattern, why in table.items():
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + ".*"):
                return rule, why
    return None


# The package of the gates themselves (this module's): the code they judge runs in their
# process (the train, cv, risk and serve gates call pipeline/), so reaching into it is SAST105.
JUDGE_PACKAGE = __name__.partition(".")[0]


def _judging(name: str) -> bool:
    return name == JUDGE_PACKAGE or name.startswith(JUDGE_PACKAGE + ".")


@functools.cache
def _carrier(name: str) -> bool:
    """True for a module (or class, or ``__dict__``) that holds a loader or an importer."""
    return (
        name in CARRIERS
        or name.endswith(".__dict__")
        or any(name.startswith(g) for g in _GLOB_CARRIERS)
    )


def _literal_str(node: ast.expr | None) -> str | None:
    """A string known without running anything: a literal, or literals joined with + or f""
    (read without recursion: ``"a" + "b" + ...`` nests as deep as it is long)."""
    parts: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Constant) and isinstance(item.value, str):
            parts.append(item.value)
        elif isinstance(item, ast.BinOp) and isinstance(item.op, ast.Add):
            stack += [item.right, item.left]
        elif isinstance(item, ast.JoinedStr):
            stack += reversed(item.values)
        else:
            return None
    return "".join(parts)


def _leading_str(node: ast.expr) -> str:
    """The literal text a computed string starts with (``f"gates.{x}"`` -> ``gates.``)."""
    while True:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            node = node.left
        elif isinstance(node, ast.JoinedStr) and node.values:
            node = node.values[0]
        else:
            return ""


def _literal_strings(node: ast.expr) -> list[str] | None:
    """The strings of a literal list/tuple of string literals, else None."""
    if not isinstance(node, ast.List | ast.Tuple):
        return None
    strings = [_literal_str(e) for e in node.elts]
    return None if None in strings else [s or "" for s in strings]


def _module_argument(node: ast.Call) -> ast.expr | None:
    """The module name an importer is given: first argument, or name=/path= keyword."""
    if node.args and not isinstance(node.args[0], ast.Starred):
        return node.args[0]
    keywords = {k.arg: k.value for k in node.keywords}
    if None in keywords or any(isinstance(a, ast.Starred) for a in node.args):
        return ast.Constant(value=None)  # *args/**kwargs: a name this check cannot read
    return keywords.get("name") or keywords.get("path")


def _falsy_literal(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and not node.value


def _dotted(node: ast.expr) -> str:
    """A call's name as bandit writes it before its import aliases: ``a.b.c``, ``.run`` for
    ``Flask(...).run`` (``bandit.core.utils.get_call_name``), "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _pairs(target: ast.expr, value: ast.expr) -> Iterator[tuple[ast.expr, ast.expr]]:
    """Each place a store writes with the expression it gets (``a.x, b.y = 1, 2`` pairwise;
    an unpacked value this check cannot split is not followed)."""
    if isinstance(target, ast.Tuple | ast.List):
        if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts):
            for inner, part in zip(target.elts, value.elts, strict=True):
                yield from _pairs(inner, part)
        return
    yield target, value


def _default(function: ast.AST | None, name: str) -> ast.expr | None:
    """The default value of the parameter ``name`` of ``function`` (None: none)."""
    if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return None
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    pairs = [
        *zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True),
        *zip(args.kwonlyargs, args.kw_defaults, strict=True),
    ]
    return next((value for arg, value in pairs if arg.arg == name), None)


def _own_nodes(body: Sequence[ast.AST]) -> Iterator[ast.AST]:
    """The nodes of a body (the functions, lambdas and classes in it included, not their
    insides)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))


def _iterated(it: ast.expr, count: int, index: int) -> ast.expr | None:
    """The mapping (or literal list of pairs) a loop ``for <count names> in it`` takes its
    ``index``-th name from as a key: ``m.items()``/``[("k", v)]`` for ``k, v``, ``m``/
    ``m.keys()`` for ``k``; None for any other loop."""
    method = it.func.attr if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) else ""
    if count == 2 and index == 0:
        if isinstance(it, ast.List | ast.Tuple):
            return it
        if method == "items" and isinstance(it, ast.Call) and not it.args:
            return it.func.value if isinstance(it.func, ast.Attribute) else None
        return None
    if count == 1:
        if method == "keys" and isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute):
            return it.func.value
        return it
    return None


# A command-line word standing for what this check did not read: a name followed past
# ``_MAX_DEPTH``, or spellings of a command line past ``_MAX_COMMANDS`` (it may be Python).
_UNREAD = ast.Name(id="<a command line too deep or with too many spellings to read>")


def _before_any_star(call: ast.Call, position: int | None) -> bool:
    """The argument at ``position`` is written out before any ``*args`` of the call (so neither
    ``*args`` nor ``**mapping`` can give that parameter instead)."""
    return (
        position is not None
        and position < len(call.args)
        and not any(isinstance(a, ast.Starred) for a in call.args[: position + 1])
    )


def _capped(lines: list[list[ast.expr | str]]) -> list[list[ast.expr | str]]:
    """At most ``_MAX_COMMANDS`` spellings; the rest stand as one unread line (fail closed)."""
    if len(lines) <= _MAX_COMMANDS:
        return lines
    return [*lines[: _MAX_COMMANDS - 1], [_UNREAD]]


def _machinery(name: str) -> bool:
    """A name of the standard library's path or import machinery (``_MACHINERY``)."""
    if name.startswith("builtins.") and name.count(".") > 1:
        return False  # builtins.Exception.at: an instance's attribute (built-in types take none)
    return any(name == p.rstrip(".") or name.startswith(p) for p in _MACHINERY)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


# --- values a name can hold -------------------------------------------------------------------


@dataclass(frozen=True)
class _Ref:
    """An object outside the module, by its qualified name (``joblib.load``)."""

    name: str


@dataclass(frozen=True, eq=False)
class _Class:
    """A class defined in the scanned code; its instances are looked up the same way."""

    scope: _Scope


@dataclass(frozen=True)
class _Getter:
    """``operator.attrgetter("a.b", ...)``."""

    paths: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, eq=False)
class _MethodCaller:
    """``operator.methodcaller("name", *args, **kwargs)``."""

    name: str
    call: ast.Call


@dataclass(frozen=True, eq=False)
class _Partial:
    """``functools.partial(target, *args, **kwargs)``."""

    targets: frozenset[_Value]
    call: ast.Call


@dataclass(frozen=True)
class _BoundGetattr:
    """``m.__getattribute__`` or ``globals().get``: a lookup bound to its object."""

    targets: frozenset[_Value]


@dataclass(frozen=True)
class _Own:
    """A module of a scanned package imported by a computed name (or a member of it)."""

    package: str
    member: bool


@dataclass(frozen=True, eq=False)
class _Namespace:
    """``globals()``, ``locals()``, ``vars()``: a scope as a mapping."""

    scope: _Scope


_Value = _Ref | _Class | _Getter | _MethodCaller | _Partial | _BoundGetattr | _Own | _Namespace
_Values = frozenset[_Value]
_NOTHING: _Values = frozenset()


def _table(value: _Value) -> bool:
    """A mapping from names to modules or attributes (sys.modules, m.__dict__, globals())."""
    if isinstance(value, _Namespace):
        return True
    return isinstance(value, _Ref) and (
        value.name in MODULE_TABLES or value.name.endswith(".__dict__")
    )


def _starter_list(method: str) -> str:
    """The in-process starters whose name ends in ``method`` (``uvicorn.run`` ...), shown."""
    every = (
        _APP_STRINGS
        | _GUNICORN_APPS
        | _CELERY_WORKERS
        | _COVERAGE_API
        | _DASK_SERVERS
        | _IN_PROCESS.keys()
    )
    found = sorted(n for n in every if n.rpartition(".")[2] == method)
    return ", ".join(found[:4]) + (" ..." if len(found) > 4 else "") or method


def _names(values: _Values) -> set[str]:
    return {v.name for v in values if isinstance(v, _Ref)}


@dataclass(frozen=True)
class _Target:
    """What a dynamic import loads: a literal module name, or a computed one."""

    module: str | None  # None: computed at run time
    package: str = ""  # computed, but under this scanned package ("gates")


# --- scopes and bindings (pass 1) -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Binding:
    expr: ast.expr | None  # None: a value not followed (a parameter, a loop variable)
    scope: _Scope | None  # where expr is evaluated
    path: tuple[int, ...] = ()  # position inside a tuple/list literal being unpacked
    value: _Values | None = None  # known when bound (imports, classes, self)


_UNFOLLOWED = _Binding(None, None)


@dataclass(eq=False)
class _Scope:
    kind: str  # "module", "class", "function" or "comprehension"
    parent: _Scope | None
    node: ast.AST | None = None
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)
    attributes: dict[str, list[_Binding]] = field(default_factory=dict)  # class: self.x = ...
    declared_global: set[str] = field(default_factory=set)
    declared_nonlocal: set[str] = field(default_factory=set)
    stars: list[str] = field(default_factory=list)  # module: from m import *
    self_name: str | None = None  # a method's first parameter
    owner: _Scope | None = None  # the class a method belongs to

    def module(self) -> _Scope:
        scope = self
        while scope.parent is not None and scope.kind != "module":
            scope = scope.parent
        return scope

    def bind(self, name: str, binding: _Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)


# The keys a **mapping passes: each with its value and the scope that value is evaluated in.
_Keys = dict[str, tuple[ast.expr, _Scope]]
# What a mapping can hold, for judging settings: key (None: computed), value (None: unknown),
# and the scope the value is evaluated in.
_Entry = tuple[str | None, ast.expr | None, _Scope]


def _mapping_operands(node: ast.expr) -> list[ast.expr] | None:
    """What a mapping expression may take its keys from: both sides of ``a | b``, either branch
    of a conditional, any operand of ``and``/``or``; None for any other expression."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return [node.left, node.right]
    if isinstance(node, ast.IfExp):
        return [node.body, node.orelse]
    if isinstance(node, ast.BoolOp):
        return list(node.values)
    return None


def _merge(into: _Keys, more: _Keys) -> bool:
    """Add ``more``'s keys; False when a key would get a second value (which one wins is
    not read: ``{**base, "k": v}``, two bindings of a name, a key that may be either name)."""
    for key, entry in more.items():
        if key in into and into[key][0] is not entry[0]:
            return False
        into[key] = entry
    return True


def _annotations(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.expr]:
    args = node.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None and arg.annotation is not None:
            yield arg.annotation
    if node.returns is not None:
        yield node.returns


class _Binder(ast.NodeVisitor):
    """Pass 1: the scopes of one module and every binding made in them.

    Iterative: ``visit`` inside a handler (and ``generic_visit``'s) only queues the node with
    the scope current at that moment, and one loop visits the queue depth first, in the order
    the recursive visitor would. Code Python parses can be nested deeper (a long ``a + b +
    ...``, a long ``elif`` chain) than Python's recursion limit lets a recursive visitor go."""

    def __init__(self, scope: _Scope, module: str, package: bool) -> None:
        self.scope = scope
        self.module = module
        self.package = package
        self.scopes: dict[ast.AST, _Scope] = {}
        self._queued: list[tuple[ast.AST, _Scope]] | None = None  # set while a handler runs

    def visit(self, node: ast.AST) -> None:
        if self._queued is not None:
            self._queued.append((node, self.scope))
            return
        start = self.scope
        stack = [(node, start)]
        while stack:
            item, self.scope = stack.pop()
            self._queued = []
            super().visit(item)
            stack.extend(reversed(self._queued))
            self._queued = None
        self.scope = start

    def bind(self, name: str, binding: _Binding) -> None:
        scope = self.scope
        if name in scope.declared_global:
            scope = scope.module()
        elif name in scope.declared_nonlocal:
            scope = scope.parent or scope
            while scope.kind != "function" and scope.parent is not None:
                scope = scope.parent
        scope.bind(name, binding)

    def _bind_target(self, target: ast.expr, value: ast.expr | None, path: tuple[int, ...]) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, _Binding(value, self.scope, path))
        elif isinstance(target, ast.Tuple | ast.List):
            for index, element in enumerate(target.elts):
                self._bind_target(element, value, (*path, index))
        elif isinstance(target, ast.Starred):
            self._bind_target(target.value, None, ())
        elif (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and self.scope.owner is not None
            and target.value.id == self.scope.self_name
        ):
            binding = _Binding(value, self.scope, path)
            self.scope.owner.attributes.setdefault(target.attr, []).append(binding)

    def _unfollowed(self, target: ast.expr) -> None:
        for name in ast.walk(target):
            if isinstance(name, ast.Name):
                self.bind(name.id, _UNFOLLOWED)

    def absolute(self, module: str | None, level: int) -> str:
        """``from ..x import y`` inside ``pkg.sub.mod`` -> ``pkg.x``."""
        if not level:
            return module or ""
        parts = self.module.split(".") if self.module else []
        parts = parts if self.package else parts[:-1]
        parts = parts[: len(parts) - (level - 1)]
        return ".".join([*parts, *([module] if module else [])])

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            name = alias.name if alias.asname else alias.name.partition(".")[0]
            self.bind(alias.asname or name, _Binding(None, None, value=frozenset({_Ref(name)})))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = self.absolute(node.module, node.level)
        for alias in node.names:
            if alias.name == "*":
                self.scope.module().stars.append(module)
                continue
            ref = _Ref(f"{module}.{alias.name}" if module else alias.name)
            self.bind(alias.asname or alias.name, _Binding(None, None, value=frozenset({ref})))

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.declared_global.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.scope.declared_nonlocal.update(node.names)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._bind_target(target, node.value, ())
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._bind_target(node.target, node.value, ())
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._bind_target(node.target, None, ())
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        scope = self.scope
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        scope.bind(node.target.id, _Binding(node.value, self.scope))
        self.generic_visit(node)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self._unfollowed(node.target)
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self._unfollowed(node.optional_vars)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bind(node.name, _UNFOLLOWED)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.bind(node.name, _UNFOLLOWED)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.bind(node.name, _UNFOLLOWED)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.bind(node.rest, _UNFOLLOWED)
        self.generic_visit(node)

    def _enter(self, node: ast.AST, kind: str) -> _Scope:
        scope = _Scope(kind, self.scope, node)
        self.scopes[node] = scope
        return scope

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        outer = self.scope
        args = node.args
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        method = False
        if not isinstance(node, ast.Lambda):
            for expr in [*node.decorator_list, *_annotations(node)]:
                self.visit(expr)
            self.bind(node.name, _UNFOLLOWED)
            static = any(
                isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list
            )
            method = outer.kind == "class" and not static
        scope = self._enter(node, "function")
        params = [*args.posonlyargs, *args.args]
        for arg in [*params, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                scope.bind(arg.arg, _UNFOLLOWED)
        if method and params:
            # self (or cls): its attributes are looked up on the class and its bases.
            scope.self_name, scope.owner = params[0].arg, outer
            scope.bindings[params[0].arg] = [_Binding(None, None, value=frozenset({_Class(outer)}))]
        self.scope = scope
        for statement in [node.body] if isinstance(node, ast.Lambda) else node.body:
            self.visit(statement)
        self.scope = outer

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._function(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.bases, *(k.value for k in node.keywords), *node.decorator_list]:
            self.visit(expr)
        outer = self.scope
        scope = self._enter(node, "class")
        self.bind(node.name, _Binding(None, None, value=frozenset({_Class(scope)})))
        self.scope = scope
        for statement in node.body:
            self.visit(statement)
        self.scope = outer

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        outer = self.scope
        self.scope = self._enter(node, "comprehension")
        for generator in node.generators:
            self._unfollowed(generator.target)
        self.generic_visit(node)
        self.scope = outer

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension


# --- resolution: what an expression may evaluate to -------------------------------------------


class _Module:
    """One module's scopes, and what each of its expressions may evaluate to (no findings)."""

    def __init__(
        self,
        tree: ast.AST,
        *,
        path: str,
        name: str,
        package: bool,
        project: _Project,
        parent: _Scope | None = None,
    ) -> None:
        self.path = path
        self.name = name
        self.package = package
        self.project = project
        self.tree = tree
        # Code in a string (exec, annotations) is bound in its own scope inside the caller's.
        self.top = _Scope("module" if parent is None else "function", parent, tree)
        # texts(): a name's strings, once worked out (None while under way: a cycle, or names
        # bound to names bound to names, each many times, branched exponentially)
        self._texts: dict[tuple[int, str, int], list[str] | None] = {}
        binder = _Binder(self.top, name, package)
        binder.visit(tree)
        self.scopes = binder.scopes

    def ref(self, name: str) -> _Values:
        return self.project.expand(_canonical(name))

    @staticmethod
    def defining(name: str, scope: _Scope) -> _Scope | None:
        """The scope whose binding of ``name`` a use in ``scope`` sees (None: unbound)."""
        start = scope.module() if name in scope.declared_global else scope
        current: _Scope | None = start
        while current is not None:
            # A class body's names are not visible from the functions inside it.
            if (current is start or current.kind != "class") and name in current.bindings:
                return current
            current = current.parent
        return None

    def lookup(self, name: str, scope: _Scope) -> _Values:
        defining = self.defining(name, scope)
        if defining is not None:
            return self.project.bound(self, defining, name)
        values: set[_Value] = set()
        for star in scope.module().stars:
            if _pickle_like(_canonical(star)) is None:  # those are a finding at the import
                values |= self.ref(f"{star}.{name}")
        if name == "__builtins__":
            values.add(_Ref("builtins"))
        elif name in _BUILTIN_NAMES:
            values.add(_Ref(f"builtins.{name}"))
        return frozenset(values)

    def texts(self, node: ast.expr, scope: _Scope, depth: int = 0) -> list[str] | None:
        """The strings ``node`` can be: a literal, or a name bound only to literals; else None."""
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            return [node.value.decode("utf-8", "replace")]
        text = _literal_str(node)
        if text is not None:
            return [text]
        defining = self.defining(node.id, scope) if isinstance(node, ast.Name) else None
        if defining is None or depth > _MAX_DEPTH or not isinstance(node, ast.Name):
            return None
        key = (id(defining), node.id, depth)  # the depth too: the answer is the same as unshared
        if key in self._texts:
            return self._texts[key]
        self._texts[key] = None
        found: list[str] | None = []
        for binding in defining.bindings[node.id]:
            if binding.expr is None or binding.scope is None or binding.path:
                found = None
                break
            texts = self.texts(binding.expr, binding.scope, depth + 1)
            if texts is None or found is None:
                found = None
                break
            found += [t for t in texts if t not in found]  # each string once
        self._texts[key] = found
        return found

    def evaluate(self, binding: _Binding) -> _Values:
        if binding.value is not None:
            return frozenset(
                v for r in binding.value for v in (self.ref(r.name) if isinstance(r, _Ref) else {r})
            )
        expr = binding.expr
        for index in binding.path:
            if not isinstance(expr, ast.Tuple | ast.List) or any(
                isinstance(e, ast.Starred) for e in expr.elts[: index + 1]
            ):
                return _NOTHING
            expr = expr.elts[index] if index < len(expr.elts) else None
        if expr is None or binding.scope is None:
            return _NOTHING
        return self.resolve(expr, binding.scope)

    def attribute(self, values: _Values, attr: str) -> _Values:
        found: set[_Value] = set()
        for value in values:
            if isinstance(value, _Ref) and attr in ("__getattribute__", "__getattr__"):
                found.add(_BoundGetattr(frozenset({value})))
            elif isinstance(value, _Ref) and attr == "__self__" and "." in value.name:
                # A C function's __self__ is its module: pickle.dumps.__self__ is _pickle.
                found |= self.ref(value.name.rsplit(".", 1)[0])
            elif isinstance(value, _Ref):
                found |= self.ref(f"{value.name}.{attr}")
            elif isinstance(value, _Class):
                found |= self.class_attribute(value.scope, attr, set())
            elif isinstance(value, _Own):
                found.add(_Own(value.package, member=True))
            elif isinstance(value, _Namespace) and attr == "get":
                found.add(_BoundGetattr(frozenset({value})))
        return frozenset(found)

    def class_attribute(self, scope: _Scope, attr: str, seen: set[int]) -> set[_Value]:
        """``attr`` on a class and its bases. A base computed from the class itself (networkx's
        ``G = newGraph()``, ``class newGraph(G.to_undirected_class())``) leads back here while
        the same lookup is under way: that path adds nothing (a cycle, as in ``bound``)."""
        key = (id(scope), attr)
        if id(scope) in seen:
            return set()
        if key in self.project.looking_up:
            self.project.cut()
            return set()
        seen.add(id(scope))
        self.project.looking_up.add(key)
        try:
            return self._class_attribute(scope, attr, seen)
        finally:
            self.project.looking_up.discard(key)

    def _class_attribute(self, scope: _Scope, attr: str, seen: set[int]) -> set[_Value]:
        found: set[_Value] = set()
        if attr in scope.bindings:
            found |= self.project.bound(self, scope, attr)
        if attr in scope.attributes:
            found |= self.project.bound(self, scope, attr, attributes=True)
        if isinstance(scope.node, ast.ClassDef) and scope.parent is not None:
            for base in scope.node.bases:
                for value in self.resolve(base, scope.parent):
                    if isinstance(value, _Class):
                        found |= self.class_attribute(value.scope, attr, seen)
                    elif isinstance(value, _Ref):
                        found |= self.ref(f"{value.name}.{attr}")
        return found

    def subscript(self, values: _Values, key: str) -> _Values:
        """``sys.modules["pickle"]``, ``m.__dict__["load"]``, ``globals()["pickle"]``."""
        found: set[_Value] = set()
        for value in values:
            if isinstance(value, _Namespace):
                found |= self.lookup(key, value.scope)
            elif isinstance(value, _Ref) and value.name == "sys.modules":
                found |= self.ref(key)
            elif isinstance(value, _Ref) and value.name == "builtins":
                found |= self.ref(f"builtins.{key}")
            elif isinstance(value, _Ref) and value.name.endswith(".__dict__"):
                found |= self.ref(f"{value.name.removesuffix('.__dict__')}.{key}")
        return frozenset(found)

    def resolve(self, node: ast.expr, scope: _Scope) -> _Values:  # noqa: PLR0911 - one per kind
        """Every value ``node`` may evaluate to that this check follows (empty: unknown)."""
        if isinstance(node, ast.Name):
            return self.lookup(node.id, scope)
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            return frozenset(_Ref(f"{n}.__dict__") for n in _names(self.resolve(node.value, scope)))
        if isinstance(node, ast.Attribute):
            return self.attribute(self.resolve(node.value, scope), node.attr)
        if isinstance(node, ast.Subscript):
            key = _literal_str(node.slice)
            return _NOTHING if key is None else self.subscript(self.resolve(node.value, scope), key)
        if isinstance(node, ast.NamedExpr):
            return self.resolve(node.value, scope)
        if isinstance(node, ast.IfExp):
            return self.resolve(node.body, scope) | self.resolve(node.orelse, scope)
        if isinstance(node, ast.BoolOp):
            return frozenset(v for e in node.values for v in self.resolve(e, scope))
        if isinstance(node, ast.Call):
            return self.call_result(node, scope)
        return _NOTHING

    def call_result(self, node: ast.Call, scope: _Scope) -> _Values:
        """What a call gives back, where it is one this check knows (getattr, import, ...)."""
        funcs = self.resolve(node.func, scope)
        names = _names(funcs)
        found = set(self._lookup_result(names, node.args, scope))
        if names & IMPORTERS and _module_argument(node) is not None:
            target = self.import_target(node, names)
            if target.module is not None:
                found |= self.ref(target.module)
            elif target.package:
                found.add(_Own(target.package, member=False))
        if names & {"functools.partial", "functools.partialmethod"} and node.args:
            found.add(_Partial(self.resolve(node.args[0], scope), node))
        if "operator.attrgetter" in names:
            paths = [_literal_str(a) for a in node.args]
            if paths and None not in paths:
                found.add(_Getter(tuple(tuple((p or "").split(".")) for p in paths)))
        method = _literal_str(node.args[0]) if node.args else None
        if "operator.methodcaller" in names and method is not None:
            found.add(_MethodCaller(method, node))
        for func in funcs:
            found |= self.apply(func, node, scope)
        return frozenset(found)

    def _lookup_result(self, names: set[str], args: list[ast.expr], scope: _Scope) -> _Values:
        """getattr(), vars(), locals(), globals()."""
        found: set[_Value] = set()
        if "builtins.getattr" in names and len(args) >= 2:
            key = _literal_str(args[1])
            objects = self.resolve(args[0], scope)
            if key is not None:
                found |= self.attribute(objects, key)
            found |= {_Own(v.package, member=True) for v in objects if isinstance(v, _Own)}
            found |= self.resolve(args[2], scope) if len(args) >= 3 else _NOTHING
        if "builtins.vars" in names and args:
            found |= {_Ref(f"{n}.__dict__") for n in _names(self.resolve(args[0], scope))}
        if names & {"builtins.locals", "builtins.vars"} and not args:
            found.add(_Namespace(scope))
        if "builtins.globals" in names:
            found.add(_Namespace(scope.module()))
        return frozenset(found)

    def apply(self, func: _Value, node: ast.Call, scope: _Scope) -> _Values:
        """What calling one value gives back, where this check can tell."""
        first = node.args[0] if node.args else None
        key = _literal_str(first)
        if isinstance(func, _Ref) and func.name.endswith(".get"):  # sys.modules.get("pickle")
            table = frozenset({_Ref(func.name.removesuffix(".get"))})
            return _NOTHING if key is None else self.subscript(table, key)
        # Calling a class gives an instance, looked up like the class.
        if isinstance(func, _Class):
            return frozenset({func})
        if isinstance(func, _Ref):
            return frozenset({func}) if func.name.rsplit(".", 1)[-1][:1].isupper() else _NOTHING
        if isinstance(func, _Getter) and first is not None:
            found: set[_Value] = set()
            for path in func.paths:
                values = self.resolve(first, scope)
                for attr in path:
                    values = self.attribute(values, attr)
                found |= values
            return frozenset(found)
        if isinstance(func, _BoundGetattr) and key is not None:
            tables = frozenset(v for v in func.targets if isinstance(v, _Namespace))
            return self.attribute(func.targets - tables, key) | self.subscript(tables, key)
        return _NOTHING

    def import_target(self, node: ast.Call, names: set[str]) -> _Target:
        """The module ``__import__``/``import_module``/``resolve_name`` is asked to load."""
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        argument = _module_argument(node)
        name = _literal_str(argument)
        if argument is None or name is None:
            leading = _leading_str(argument) if argument is not None else ""
            package = leading.partition(".")[0]
            confined = "." in leading and package in self.project.own_packages
            return _Target(None, package if confined else "")
        if "pkgutil.resolve_name" in names:
            return _Target(name.replace(":", "."))
        if name.startswith("."):  # import_module(".x", package="p")
            anchor = node.args[1] if len(node.args) > 1 else keywords.get("package")
            base = _literal_str(anchor)
            if base is None:
                return _Target(None)
            return _Target(f"{base}{name}" if name.strip(".") else base)
        if names & {"builtins.__import__", "importlib.__import__"}:
            fromlist = node.args[3] if len(node.args) > 3 else keywords.get("fromlist")
            empty = fromlist is None or _falsy_literal(fromlist)
            empty = empty or (isinstance(fromlist, ast.List | ast.Tuple) and not fromlist.elts)
            if empty:  # __import__("a.b") gives back the package a
                return _Target(name.partition(".")[0])
        return _Target(name)


_UNKNOWN = object()


@dataclass
class _Args:
    """The arguments a call passes, as far as they can be read without running anything."""

    positional: list[ast.expr] = field(default_factory=list)
    starred: bool = False  # a *args: positions from there on are unknown
    keywords: dict[str, ast.expr] = field(default_factory=dict)
    unknown_keywords: bool = False  # a **mapping this check cannot read
    scopes: dict[str, _Scope] = field(default_factory=dict)  # a value read from a **mapping: where

    def get(self, name: str, position: int | None) -> ast.expr | object | None:
        """The expression passed for a parameter, None when absent, _UNKNOWN when unknowable."""
        if name in self.keywords:
            return self.keywords[name]
        if position is not None and position < len(self.positional):
            return self.positional[position]
        if (position is not None and self.starred) or self.unknown_keywords:
            return _UNKNOWN
        return None


# --- pass 2: judging every expression ---------------------------------------------------------


# The expressions judged: everything else only passes values on (or is a statement).
_EXPRESSIONS = (
    ast.Name,
    ast.Attribute,
    ast.Subscript,
    ast.Call,
    ast.NamedExpr,
    ast.IfExp,
    ast.BoolOp,
)


class _Checker:
    """Walks one module and reports every expression that reaches a loader or hides one."""

    def __init__(self, module: _Module, *, at: ast.AST | None = None, prefix: str = "") -> None:
        self.module = module
        self.parents: dict[ast.AST, ast.AST] = {}  # filled on the way down, read on the way up
        self.found: list[UnsafeLoad] = []
        self.reported: set[ast.AST] = set()
        self.at = at  # code from a string: every finding points at the call holding it
        self.prefix = prefix
        self._parents_of: dict[ast.AST, ast.AST] | None = None  # the whole tree's, when needed
        self._entries_of: dict[tuple[int, str], list[_Entry]] = {}  # a mapping name, read
        self._reading: set[tuple[int, str]] = set()  # mapping names being read
        self._cut_entries = 0  # cycles met while reading them
        # sys.path values: a name's answer, once known (False while it is being worked out,
        # so names bound to each other end, and each name costs one pass however it is reached)
        self._folder_names: dict[tuple[str, int, bool], bool] = {}
        self._binding_counts: dict[str, int] = {}
        self._following: set[tuple[int, str]] = set()  # names whose constants are being read
        self._in_place: dict[str, bool] = {}  # names of lists changed in place (command lines)
        # command lines: a name's answer, once known (False / itself while being worked out)
        self._name_answers: dict[tuple[int, str, str, bool], bool] = {}
        self._name_words: dict[tuple[int, str], list[list[ast.expr | str]]] = {}
        self._following_params: set[tuple[int, str]] = set()  # parameters followed to calls
        self._follow_imports = True  # the folder rule follows names imported from scanned modules
        self._others: dict[int, _Checker] = {}
        self._chdir_list: list[tuple[str, ast.expr | str]] | None = None  # os.chdir, anywhere

    def resolve(self, node: ast.expr, scope: _Scope) -> _Values:
        return self.module.resolve(node, scope)

    def carrier(self, name: str) -> bool:
        """A module holding loaders: a known one, or a scanned module that imports one."""
        return _carrier(name) or self.module.project.holds_loaders(name)

    def report(self, node: ast.AST, rule: str, call: str, message: str) -> None:
        if node in self.reported:
            return
        self.reported.add(node)
        where = self.at or node
        line, col = getattr(where, "lineno", 0), getattr(where, "col_offset", -1) + 1
        self.found.append(
            UnsafeLoad(rule, self.module.path, line, call, self.prefix + message, col)
        )

    def check(self) -> list[UnsafeLoad]:
        self._walk(self.module.tree, self.module.top)
        return self.found

    def _walk(self, node: ast.AST, scope: _Scope) -> None:
        """Judge every node after its children (iteratively: code Python parses can be
        nested deeper than Python's recursion limit)."""
        stack: list[tuple[ast.AST, _Scope, ast.AST | None, bool]] = [(node, scope, None, False)]
        while stack:
            item, where, parent, children_done = stack.pop()
            if children_done:
                self.judge(item, where)
                continue
            if parent is not None:
                self.parents[item] = parent
            stack.append((item, where, parent, True))
            inner = self.module.scopes.get(item)
            children = list(ast.iter_child_nodes(item))
            for child in reversed(children):
                # Decorators, defaults, annotations and bases are evaluated outside the new scope.
                stack.append(
                    (child, inner if inner and self._inside(item, child) else where, item, False)
                )

    @staticmethod
    def _inside(node: ast.AST, child: ast.AST) -> bool:
        if isinstance(node, ast.Lambda):
            return child is node.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return child in node.body
        return True  # comprehensions

    def _is_call_of(self, node: ast.AST) -> bool:
        parent = self.parents.get(node)
        return isinstance(parent, ast.Call) and parent.func is node

    def _followed(self, call: ast.Call, scope: _Scope) -> bool:
        """True when the call's first argument is followed (getattr, partial, attrgetter...)."""
        funcs = self.resolve(call.func, scope)
        return bool(_names(funcs) & _FOLLOWED) or any(
            isinstance(f, _Getter | _MethodCaller) for f in funcs
        )

    def _inner(self, node: ast.AST, scope: _Scope) -> list[ast.AST]:
        """The sub-expressions whose value this node builds on."""
        if isinstance(node, ast.Attribute | ast.Subscript | ast.NamedExpr):
            return [node.value]
        if isinstance(node, ast.Call):
            return [node.func, *(node.args[:1] if self._followed(node, scope) else [])]
        if isinstance(node, ast.IfExp):
            return [node.body, node.orelse]
        if isinstance(node, ast.BoolOp):
            return list(node.values)
        return []

    def judge(self, node: ast.AST, scope: _Scope) -> None:
        self._judge_setting(node, scope)
        self._judge_env_dict(node, scope)  # env={"PYTHONPATH": ...}, {**os.environ, ...}
        self._judge_command_display(node, scope)
        if not isinstance(node, _EXPRESSIONS):
            self._judge_statement(node, scope)
            return
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript) and not isinstance(
            node.ctx, ast.Load
        ):
            return
        if any(inner in self.reported for inner in self._inner(node, scope)):
            self.reported.add(node)  # the inner expression already carries the finding
            return
        values = self.resolve(node, scope)
        if isinstance(node, ast.Call):
            self._judge_call(node, scope)
        if isinstance(node, ast.Subscript):
            self._judge_subscript(node, scope)
        if isinstance(node, ast.Attribute):
            self._judge_attribute(node, values, scope)
        if node in self.reported or self._judge_unverified_context(node, values, scope):
            return
        escapes = self._escapes(node, values, scope)
        for value in values:
            if self._judge_value(node, value, escapes=escapes, scope=scope):
                return

    def _judge_statement(self, node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            self._judge_import(node)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            self._judge_store(node, scope)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.AnnAssign):
            self._judge_annotations(node, scope)
        if isinstance(node, ast.ClassDef):
            self._judge_gunicorn_class(node, scope)

    def _judge_unverified_context(self, node: ast.AST, values: _Values, scope: _Scope) -> bool:
        """SAST106 for ``ssl._create_unverified_context`` anywhere but called by a name bandit
        gives it (its B323): aliased by assignment, fetched by ``getattr``, or assigned over
        ``ssl._create_default_https_context`` (every HTTPS client of the process then trusts
        any certificate). True when it was a finding."""
        if _UNVERIFIED_CONTEXT not in _names(values):
            return False
        if (
            isinstance(node, ast.Name | ast.Attribute)
            and self._is_call_of(node)
            and _UNVERIFIED_CONTEXT in self._bandit_names(node, scope)
        ):
            return False  # bandit's B323
        why = (
            f"reaches {_UNVERIFIED_CONTEXT} ({ast.unparse(node)[:_SHOWN]}), where bandit's "
            f"B323 does not read it (it reads only a call of it by its own name): TLS "
            f"without certificate verification"
        )
        self.report(node, "SAST106", _UNVERIFIED_CONTEXT, why)
        return True

    def _judge_value(self, node: ast.AST, value: _Value, *, escapes: bool, scope: _Scope) -> bool:
        """Report what one value of ``node`` means here; True when it was a finding."""
        if isinstance(value, _Ref):
            return self._judge_ref(node, value.name, escapes=escapes, scope=scope)
        if not escapes:
            return False
        if isinstance(value, _Partial):
            conditional = sorted(_names(value.targets) & CONDITIONAL.keys())
            if conditional:
                name = conditional[0]
                why = f"passes a partial of {name} where the arguments it gets cannot be checked"
                self.report(node, CONDITIONAL[name][0], name, why)
        elif isinstance(value, _Own):
            why = "passes a module imported by a computed name where this check cannot follow it"
            self.report(node, "SAST102", "import_module", why)
        elif isinstance(value, _BoundGetattr) and any(
            self.carrier(n) for n in _names(value.targets)
        ):
            why = "passes a module's attribute lookup where this check cannot follow it"
            self.report(node, "SAST102", "__getattribute__", why)
        return node in self.reported

    def _judge_ref(self, node: ast.AST, name: str, *, escapes: bool, scope: _Scope) -> bool:
        called = self._is_call_of(node)
        loader = _loader(name)
        if _judging(name) and self._judged():
            why = (
                f"reaches {name}, the gates' own code, from the code they judge (it runs in "
                "the gate's process and could change how a gate decides)"
            )
            self.report(node, "SAST105", name, why)
        elif loader is not None:
            rule, why = loader
            shown = f"calls {name}()" if called else f"refers to {name}"
            self.report(node, rule, name, f"{shown} ({why})")
        elif name in _SHELL_RUNNERS and not (
            called and isinstance(node, ast.expr) and self._plain(node, scope)
        ):
            why = f"reaches {name}() under another name or passes it on (bandit's B605 checks only the plain call)"
            self.report(node, "SAST104", name, why)
        elif name in RUNNERS:
            plain = isinstance(node, ast.Name) and node.id == name.partition(".")[2] and called
            if not plain:
                why = f"reaches {name.partition('.')[2]}() under another name (bandit checks only the plain call)"
                self.report(node, "SAST104", name, why)
        elif not escapes:
            return False
        elif name in CONDITIONAL:
            why = f"passes {name} where the arguments it gets cannot be checked"
            self.report(node, CONDITIONAL[name][0], name, why)
        elif name in IMPORTERS:
            why = f"passes {name} where the modules it imports cannot be checked"
            self.report(node, "SAST102", name, why)
        elif name in STRING_RUNNERS:
            why = f"passes {name} where the code it runs cannot be checked"
            self.report(node, "SAST104", name, why)
        elif self.carrier(name):
            why = f"passes {name} (it holds loaders) where this check cannot follow it"
            self.report(node, "SAST102", name, why)
        return node in self.reported

    def _judged(self) -> bool:
        """A module of a package the gates import and run (not theirs, not a script)."""
        name = self.module.name
        return not _judging(name) and ("." in name or self.module.package)

    def _escapes(self, node: ast.AST, values: _Values, scope: _Scope) -> bool:  # noqa: PLR0911
        """True when the value is used where this check no longer follows it."""
        parent = self.parents.get(node)
        if parent is None or isinstance(parent, ast.Expr | ast.Compare | ast.Attribute):
            return False
        if isinstance(parent, ast.IfExp):
            return node is not parent.test and self._escapes(parent, values, scope)
        if isinstance(parent, ast.BoolOp | ast.NamedExpr):
            return self._escapes(parent, values, scope)
        if isinstance(parent, ast.Subscript):  # only a module table is looked up by name
            return node is not parent.value or not any(_table(v) for v in values)
        if isinstance(parent, ast.Call):
            if node is parent.func or _names(self.resolve(parent.func, scope)) & _INSPECTORS:
                return False
            return not (parent.args and node is parent.args[0] and self._followed(parent, scope))
        if isinstance(parent, ast.Tuple | ast.List):
            return not self._unpacked(parent, node, scope)
        if isinstance(parent, ast.Assign | ast.AnnAssign):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            return not all(self._trackable(t, scope) for t in targets)
        return True

    @staticmethod
    def _trackable(target: ast.expr, scope: _Scope) -> bool:
        """A name, or ``self.x`` in a method: bindings this check follows."""
        if isinstance(target, ast.Name):
            return True
        return (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and scope.owner is not None
            and target.value.id == scope.self_name
        )

    def _unpacked(self, literal: ast.Tuple | ast.List, element: ast.AST, scope: _Scope) -> bool:
        """An element of a tuple literal assigned element-wise to names (``a, b = x, y``)."""
        path = [next(i for i, e in enumerate(literal.elts) if e is element)]
        node: ast.AST = literal
        parent = self.parents.get(node)
        while isinstance(parent, ast.Tuple | ast.List):
            path.insert(0, next(i for i, e in enumerate(parent.elts) if e is node))
            node, parent = parent, self.parents.get(parent)
        if not isinstance(parent, ast.Assign) or parent.value is not node:
            return False
        for target in parent.targets:
            current: ast.expr = target
            for index in path:
                if not isinstance(current, ast.Tuple | ast.List) or index >= len(current.elts):
                    return False
                if any(isinstance(e, ast.Starred) for e in current.elts):
                    return False
                current = current.elts[index]
            if not self._trackable(current, scope):
                return False
        return True

    def _judge_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            module = _pickle_like(_canonical(node.module or ""))
            if module is not None:
                why = f"star-imports {module}: its loaders are then called by bare names"
                self.report(node, PICKLE_LIKE[module][0], f"{module}.*", why)
                return
        names = (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
        for name in names:
            if name.partition(".")[0] in BANNED_MODULES:
                self.report(
                    node, "SAST102", name, f"imports {name} (it unpickles arbitrary objects)"
                )
                return
            if self._unread(name, node):
                return

    def _unread(self, name: str, node: ast.AST) -> bool:
        """An import of code the project holds outside the scan (``tests/``, ``build/``...)."""
        if isinstance(node, ast.ImportFrom) and node.level:
            return False
        top = name.partition(".")[0]
        if top not in self.module.project.outside:
            return False
        why = f"imports {name}, code in the project that no scan reads (outside [sast].paths)"
        self.report(node, "SAST102", name, why)
        return True

    def _file_folder(
        self, node: ast.expr | None, scope: _Scope, depth: int = 0, itself: str = ""
    ) -> bool:
        """Whether ``node`` is, as written, ``__file__`` or a folder above it (a name whose every
        binding is one, followed; ``itself``: the name being bound, a folder by induction);
        anything else may name a folder no scan reads."""
        if node is None or depth > _MAX_DEPTH:
            return False
        if isinstance(node, ast.List | ast.Tuple):
            return all(self._file_folder(e, scope, depth + 1, itself) for e in node.elts)
        if isinstance(node, ast.Name):
            return node.id == itself or self._file_name(node.id, scope, depth)
        inner = self._folder_of(node, scope)
        return inner is not None and self._file_folder(inner, scope, depth + 1, itself)

    def _file_name(self, name: str, scope: _Scope, depth: int) -> bool:
        """A name whose every binding in the module is a plain assignment, where this use sees
        it (at top level, under an ``if``, or in the function that uses it), of a file folder:
        ``ROOT = join(dirname(__file__), ".."); ROOT = normpath(ROOT)`` (sympy's spelling)."""
        if name == "__file__":
            return self._bindings(name) == 0
        if depth > _MAX_DEPTH:
            return False
        imported = self._imported(ast.Name(id=name), scope) if self._follow_imports else None
        if imported is not None:
            other, attr = imported
            return self._other(other)._file_name(attr, other.top, depth + 1)
        defining = self.module.defining(name, scope)
        key = (name, id(defining), self._follow_imports)
        if key not in self._folder_names:
            self._folder_names[key] = False
            self._folder_names[key] = self._folder_bindings(name, defining, depth)
        return self._folder_names[key]

    def _imported(self, node: ast.expr, scope: _Scope) -> tuple[_Module, str] | None:
        """``REPO`` bound once in this module, by ``from tests.conftest import REPO``, where
        ``tests/conftest.py`` is scanned with it, binds ``REPO`` and no scanned module sets an
        attribute of that name (``conftest.REPO = ...``): that module and the name."""
        if not isinstance(node, ast.Name) or self._bindings(node.id) != 1:
            return None
        defining = self.module.defining(node.id, scope)
        bound = defining.bindings.get(node.id, []) if defining else []
        refs = list(bound[0].value or ()) if len(bound) == 1 else []
        if len(refs) != 1 or not isinstance(refs[0], _Ref):
            return None
        module, _, attr = refs[0].name.rpartition(".")
        others = self.module.project.modules.get(module, [])
        if len(others) != 1 or others[0] is self.module or attr not in others[0].top.bindings:
            return None
        if self._attribute_set(attr):
            return None
        return others[0], attr

    def _attribute_set(self, attr: str) -> bool:
        """A scanned module sets an attribute ``attr`` on anything (``m.REPO = ...``,
        ``setattr(m, "REPO", ...)``) or calls ``setattr`` with a computed name."""
        index = self._index()
        return attr in index.set_attributes or index.computed_setattr

    def _other(self, module: _Module) -> _Checker:
        """A checker of another scanned module (no findings of its own: only its answers)."""
        if id(module) not in self._others:
            self._others[id(module)] = _Checker(module)
        return self._others[id(module)]

    def _folder_bindings(self, name: str, defining: _Scope | None, depth: int) -> bool:
        bound = [] if defining is None else defining.bindings[name]
        if not bound or len(bound) != self._bindings(name):  # bound elsewhere too, or deleted
            return False
        for binding in bound:
            if binding.expr is None or binding.scope is None or binding.path:
                return False
            if isinstance(binding.expr, ast.List):  # ``ROOTS.append("data")`` changes it unbound
                return False
            if not self._file_folder(binding.expr, binding.scope, depth + 1, itself=name):
                return False
        return True

    def _folder_of(self, node: ast.expr, scope: _Scope) -> ast.expr | None:  # noqa: PLR0911
        """The path ``node`` takes its folder of (or keeps as it is), when it does only that."""
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            return node.value
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
            return node.value.value if node.value.attr == "parents" else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            # ``Path(__file__).parent / ".."``: one step up, never into a named folder
            return node.left if _literal_str(node.right) == ".." else None
        if (
            isinstance(node, ast.JoinedStr)
            and len(node.values) == 1
            and isinstance(node.values[0], ast.FormattedValue)
            and node.values[0].conversion in (-1, ord("s"))
            and node.values[0].format_spec is None
        ):
            return node.values[0].value  # f"{ROOT}" is str(ROOT)
        if not isinstance(node, ast.Call) or node.keywords:
            return None
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("resolve", "absolute", "as_posix"):
            return None if node.args else func.value
        names = _names(self.resolve(func, scope))
        if names and names <= _JOINS and node.args:
            first, *rest = node.args
            up = rest and all(_literal_str(a) == ".." for a in rest)
            return first if up and not isinstance(first, ast.Starred) else None
        if names and names <= _SAME_FOLDER_CALLS and len(node.args) == 1:
            return node.args[0]
        return None

    def _bindings(self, name: str) -> int:
        """How many times the module binds ``name`` anywhere (assignments, parameters,
        imports, handlers, patterns, definitions)."""
        if name not in self._binding_counts:
            self._binding_counts[name] = self._count_bindings(name)
        return self._binding_counts[name]

    def _count_bindings(self, name: str) -> int:
        count = 0
        for n in ast.walk(self.module.tree):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
                count += n.id == name
            elif isinstance(n, ast.arg):
                count += n.arg == name
            elif isinstance(n, ast.alias):
                count += (n.asname or n.name.partition(".")[0]) == name
            elif isinstance(n, ast.ExceptHandler | ast.MatchAs | ast.MatchStar):
                count += n.name == name
            elif isinstance(n, ast.MatchMapping):
                count += n.rest == name
            elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                count += n.name == name
        return count

    def _sys_path(self, node: ast.expr, scope: _Scope) -> bool:
        return "sys.path" in _names(self.resolve(node, scope))

    def _narrowed(self, node: ast.expr | None, scope: _Scope) -> bool:
        """``sys.path[1:]``: a slice of sys.path as it is, which adds nothing to it."""
        return (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Slice)
            and self._sys_path(node.value, scope)
        )

    def _judge_store(self, node: ast.Assign | ast.AugAssign | ast.AnnAssign, scope: _Scope) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(node, ast.AugAssign):
                self._judge_env_store(target, None, scope)
            elif node.value is not None:
                for place, value in _pairs(target, node.value):
                    self._judge_env_store(place, value, scope)
            # ``sys.path = [...]``; a name or attribute bound to it changes it only in place
            # (``p += [...]``): ``self.path = path``, with ``path`` sys.path, writes nothing.
            whole = (
                isinstance(target, ast.Name | ast.Attribute)
                and isinstance(node, ast.AugAssign)
                and self._sys_path(target, scope)
            ) or (
                isinstance(target, ast.Attribute)
                and target.attr == "path"
                and "sys" in _names(self.resolve(target.value, scope))
            )
            part = isinstance(target, ast.Subscript) and self._sys_path(target.value, scope)
            trusted = (
                _names(self.resolve(target, scope)) if isinstance(target, ast.Attribute) else set()
            )
            if trusted & _FOLDER_NAMES:
                # ``os.path.dirname = lambda p: "data"`` (in any module) turns the sys.path
                # rule's own folder into any folder
                why = f"replaces {min(trusted)}, which the sys.path rule reads as a folder of the file"
                self.report(target, "SAST102", "sys.path", why)
            if (
                (whole or part)
                and not self._file_folder(node.value, scope)
                and not self._narrowed(node.value, scope)
            ):
                self.report(target, "SAST102", "sys.path", _SYS_PATH_WHY)
            for sub in ast.walk(target):
                if isinstance(sub, ast.Subscript) and "sys.modules" in _names(
                    self.resolve(sub.value, scope)
                ):
                    why = "writes to sys.modules (an import of that name then loads what this check did not see)"
                    self.report(sub, "SAST102", "sys.modules", why)
                if isinstance(sub, ast.Attribute) and sub.attr in CODE_GADGETS:
                    why = f"replaces a function's {sub.attr} (what a call runs, or the arguments it gets)"
                    self.report(sub, "SAST104", sub.attr, why)
            self._judge_machinery_store(target, node, scope)  # after the sys.path rule's own

    def _judge_annotations(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.AnnAssign, scope: _Scope
    ) -> None:
        """A string annotation is code too: ``typing.get_type_hints`` evaluates it."""
        annotations = [node.annotation] if isinstance(node, ast.AnnAssign) else _annotations(node)
        for annotation in annotations:
            for sub in ast.walk(annotation):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    where = "in a string annotation (get_type_hints evaluates it)"
                    self.nested(sub.value, "eval", sub, scope, where)

    def _judge_attribute(self, node: ast.Attribute, values: _Values, scope: _Scope) -> None:
        attr = node.attr
        if attr == "read_pickle" and not values:
            self.report(node, "SAST101", "read_pickle", "calls .read_pickle() (unpickles)")
        elif attr in GADGETS:
            why = f"reaches {attr} (the modules and builtins behind any object, out of this check's sight)"
            self.report(node, "SAST102", attr, why)
        elif attr in CODE_GADGETS or attr.startswith(_C_API_PREFIXES):
            why = f"reaches {attr} (code objects or the interpreter's C API run what bandit cannot see)"
            self.report(node, "SAST104", attr, why)
        elif attr in _TABLE_WALKS and any(_table(v) for v in self.resolve(node.value, scope)):
            why = (
                f"walks a module table with .{attr}() (any module in it, out of this check's sight)"
            )
            self.report(node, "SAST102", attr, why)

    def _judge_subscript(self, node: ast.Subscript, scope: _Scope) -> None:
        if _literal_str(node.slice) is not None:
            return
        for value in self.resolve(node.value, scope):
            shown = value.name if isinstance(value, _Ref) else "globals()"
            if _table(value) and (
                isinstance(value, _Namespace) or self.carrier(shown) or shown in MODULE_TABLES
            ):
                why = f"looks up a name computed at run time ({ast.unparse(node.slice)[:_SHOWN]}) in {shown}"
                self.report(node, "SAST102", shown, why)
                return

    def _judge_call(self, node: ast.Call, scope: _Scope) -> None:
        funcs = self.resolve(node.func, scope)
        names = _names(funcs)
        if names & IMPORTERS and _module_argument(node) is not None:
            self._judge_import_call(node, names)
        self._judge_lookup(node, funcs, names, scope)
        if any(isinstance(f, _Own) and f.member for f in funcs) and (node.args or node.keywords):
            why = "passes arguments to a name chosen at run time (it could be a loader its module imports)"
            self.report(node, "SAST102", "getattr", why)
        if names & _SYS_MODULES_WRITES:
            why = "writes to sys.modules (an import of that name then loads what this check did not see)"
            self.report(node, "SAST102", "sys.modules", why)
        for write in sorted(names & _SYS_PATH_WRITES.keys()):
            at = _SYS_PATH_WRITES[write]
            value = node.args[at] if len(node.args) > at and not node.keywords else None
            if not self._file_folder(value, scope):
                self.report(node, "SAST102", "sys.path", _SYS_PATH_WHY)
                break
        if names & CODE_BUILDERS:
            why = "builds a function or code object at run time (bandit's exec/eval checks do not see it run)"
            self.report(node, "SAST104", min(names & CODE_BUILDERS), why)
        self._judge_code_string(node, names, scope)
        self._judge_command(node, names, scope)
        self._judge_child(node, names, scope)
        self._judge_in_process(node, names, scope)
        self._judge_in_process_app(node, names, scope)
        self._judge_env_call(node, names, scope)
        self._judge_dask_set(node, names, scope)
        self._judge_machinery_call(node, names, scope)
        self._judge_unbound_write(node, names, scope)
        self._judge_shell(node, names, scope)
        self._judge_arguments(node, funcs, scope)
        self._judge_memory(node, names)
        self._judge_keywords(node, funcs, scope)
        self._judge_host_key_policy(node, funcs, scope)
        self._judge_extraction(node, names, scope)

    def _judge_shell(self, node: ast.Call, names: set[str], scope: _Scope) -> None:
        """``shell=`` bandit's B602 does not see: passed through ``**mapping`` (bandit reports the
        call as B603, which a routine ``# nosec B603`` hides), or given to ``subprocess.run``
        reached under another name or through ``functools.partial`` (bandit's B604, at low
        confidence: below the default threshold)."""
        funcs = self.resolve(node.func, scope)
        partials = [
            f for f in funcs if isinstance(f, _Partial) and _names(f.targets) & _SHELL_TAKERS
        ]
        if not names & _SHELL_TAKERS and not partials:
            return
        taker = min(
            (names | _names(frozenset(t for p in partials for t in p.targets))) & _SHELL_TAKERS
        )
        shells: list[ast.expr] = []
        for call in [node, *(p.call for p in partials)]:
            for keyword in call.keywords:
                if keyword.arg == "shell" and (
                    call is not node or not self._plain(node.func, scope)
                ):
                    shells.append(keyword.value)
                if keyword.arg is not None:
                    continue
                args = _Args()
                if not self._expand_keywords(keyword.value, args, scope):
                    shown = ast.unparse(keyword.value)[:_SHOWN]
                    why = f"passes keyword arguments from {shown}, where shell= may be set unseen by bandit"
                    self.report(node, "SAST104", taker, why)
                    return
                shells += [args.keywords["shell"]] if "shell" in args.keywords else []
        if any(not _falsy_literal(shell) for shell in shells):
            why = f"calls {taker}() with shell= where bandit's B602 does not see it (under another name, a partial or **mapping)"
            self.report(node, "SAST104", taker, why)

    def _plain(self, func: ast.expr, scope: _Scope) -> bool:
        """``subprocess.run``/``sp.run``/``run`` spelled through import names only, as bandit reads them."""
        while isinstance(func, ast.Attribute):
            func = func.value
        if not isinstance(func, ast.Name):
            return False
        defining = self.module.defining(func.id, scope)
        return defining is not None and all(
            b.expr is None and b.value is not None for b in defining.bindings[func.id]
        )

    def _bandit_names(self, func: ast.expr, scope: _Scope) -> set[str]:
        """The name bandit gives a call: its dotted spelling with the first name replaced by
        what that name's import statement names (``import requests as r``: ``r.get`` is
        ``requests.get``), and nothing further: bandit follows no assignment and no other
        module (``from pkg.http import get``, re-exporting ``requests.get``, is ``pkg.http.get``)."""
        written = _dotted(func)
        if not self._plain(func, scope):
            return {written}
        root, _, tail = written.partition(".")
        defining = self.module.defining(root, scope)
        bound = [b.value or _NOTHING for b in defining.bindings[root]] if defining else []
        return {".".join(filter(None, [n, tail])) for v in bound for n in _names(v)} or {written}

    def _judge_import_call(self, node: ast.Call, names: set[str]) -> None:
        target = self.module.import_target(node, names)
        if target.module is not None:
            if self._unread(target.module, node):
                return
            if _pickle_like(_canonical(target.module)) is not None:
                why = f"imports {target.module} dynamically (hides its loaders from review)"
                self.report(node, "SAST102", f"import {target.module}", why)
        elif not target.package:
            shown = ast.unparse(_module_argument(node) or node)[:_SHOWN]
            why = f"imports a module whose name is computed at run time ({shown})"
            self.report(node, "SAST102", "import_module", why)

    def _judge_lookup(self, node: ast.Call, funcs: _Values, names: set[str], scope: _Scope) -> None:
        """getattr(m, name), m.__getattribute__(name), sys.modules.get(name): name computed."""
        args = node.args
        key: ast.expr | None = None
        targets: set[_Value] = set()
        if "builtins.getattr" in names and len(args) >= 2 and _literal_str(args[1]) is None:
            key, targets = args[1], set(self.resolve(args[0], scope))
        if args and _literal_str(args[0]) is None:
            for func in funcs:
                if isinstance(func, _BoundGetattr):
                    key = args[0]
                    targets |= func.targets
                elif isinstance(func, _Ref) and func.name.endswith(".get"):
                    key = args[0]
                    targets.add(_Ref(func.name.removesuffix(".get")))
        if key is None:
            return
        for target in targets:
            shown = target.name if isinstance(target, _Ref) else "globals()"
            if isinstance(target, _Namespace) or self.carrier(shown) or shown in MODULE_TABLES:
                why = (
                    f"looks up a name computed at run time ({ast.unparse(key)[:_SHOWN]}) on {shown}"
                )
                self.report(node, "SAST102", shown, why)
                return

    def _judge_code_string(self, node: ast.Call, names: set[str], scope: _Scope) -> None:
        """exec/eval/compile/timeit... of a literal is checked; of a computed string, a finding."""
        runner = names & (RUNNERS | STRING_RUNNERS)
        if not runner:
            return
        name = min(runner)
        sources = [*node.args[:1], *(k.value for k in node.keywords if k.arg in _CODE_KEYWORDS)]
        if name.startswith("timeit."):
            sources += node.args[1:2]  # setup
        mode = "eval" if name == "builtins.eval" else "exec"
        if name == "builtins.compile":
            given = node.args[2] if len(node.args) > 2 else None
            given = given or next((k.value for k in node.keywords if k.arg == "mode"), None)
            mode = "eval" if _literal_str(given) == "eval" else "exec"
        for source in sources:
            texts = self.module.texts(source, scope)
            for text in texts or []:
                self.nested(text, mode, node, scope, f"in the code string passed to {name}()")
            if texts is None and name not in RUNNERS:  # bandit flags every plain exec/eval
                why = f"runs code from a string computed at run time ({ast.unparse(source)[:_SHOWN]}) through {name}()"
                self.report(node, "SAST104", name, why)
                return

    def _judge_command(  # noqa: PLR0912 - one per option read
        self, node: ast.Call, names: set[str], scope: _Scope
    ) -> None:
        """``python -c CODE`` reads CODE like exec; ``python -m pickle FILE`` unpickles FILE."""
        if not names & COMMANDS:
            return
        words: list[ast.expr | str] = []
        for arg in node.args:
            if isinstance(arg, ast.List | ast.Tuple):
                words += arg.elts
            elif _literal_str(arg) is not None:
                words += _shell_words(_literal_str(arg) or "")
            else:
                words.append(arg)
        texts = [[w] if isinstance(w, str) else self.module.texts(w, scope) for w in words]
        python = any(
            any("python" in t.rsplit("/", 1)[-1] for t in ts or [])
            or (isinstance(w, ast.expr) and "sys.executable" in _names(self.resolve(w, scope)))
            for w, ts in zip(words, texts, strict=True)
        )
        for index, flags in enumerate(texts if python else []):
            option = _python_option(flags[0]) if flags and len(flags) == 1 else None
            argument = _option_argument(option, index, words, texts)
            if option is None or argument is None:
                continue
            text, (following, codes) = option[0], argument
            code = codes[0] if codes and len(codes) == 1 else None
            if text == "-c" and codes is not None:
                for each in codes:
                    self.nested(each, "exec", node, scope, "in the code given to python -c")
            elif text == "-c":
                shown = ast.unparse(following)[:_SHOWN] if isinstance(following, ast.expr) else ""
                why = f"runs python -c with code computed at run time ({shown})"
                self.report(node, "SAST104", "python -c", why)
            elif text == "-m" and code is not None and _pickle_like(_canonical(code)):
                why = f"runs python -m {code} (it loads the file it is given)"
                self.report(node, "SAST101", f"python -m {code}", why)
            elif text == "-m" and code == "timeit":
                after = index + (1 if option[1] else 2)
                for each in _timeit_code(texts[after:]):
                    self.nested(each, "exec", node, scope, "in the code given to python -m timeit")

    # --- code a child interpreter runs (SAST107) ----------------------------------------------

    def _command_lines(self, node: ast.Call, scope: _Scope) -> list[list[ast.expr | str]]:
        """The command lines a call can be given, word by word (a word this check cannot read
        is the expression itself): its positional arguments, lists and tuples, a name bound to
        one (each binding; a list changed in place ends in an unknown word), ``a + b``, a
        literal shell string and an f-string split into words; ``args=`` as the first
        argument. ``executable=`` names the program that runs instead of the first word
        (``Popen(["ls", "data/evil.py"], executable=sys.executable)`` runs Python)."""
        lines: list[list[ast.expr | str]] = [[]]
        given = [k.value for k in node.keywords if k.arg == "args"]
        for arg in [*given, *node.args]:
            lines = self._join_words(lines, self._words(arg, scope, 0))
        program = next((k.value for k in node.keywords if k.arg == "executable"), None)
        if program is not None:
            lines = [[program, *line[1:]] for line in lines]
        return lines

    def _join_words(
        self, heads: list[list[ast.expr | str]], tails: list[list[ast.expr | str]]
    ) -> list[list[ast.expr | str]]:
        return _capped([[*h, *t] for h in heads for t in tails])

    def _words(  # noqa: PLR0911, PLR0912 - one per kind of expression
        self, node: ast.expr, scope: _Scope, depth: int
    ) -> list[list[ast.expr | str]]:
        if depth > _MAX_DEPTH:
            return [[_UNREAD]]
        if isinstance(node, ast.List | ast.Tuple):
            lines: list[list[ast.expr | str]] = [[]]
            for element in node.elts:
                inner = element.value if isinstance(element, ast.Starred) else None
                one: list[list[ast.expr | str]] = [[element]]
                lines = self._join_words(
                    lines, self._words(inner, scope, depth + 1) if inner else one
                )
            return lines
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self._words(node.left, scope, depth + 1)
            return self._join_words(left, self._words(node.right, scope, depth + 1))
        text = _literal_str(node)
        if text is not None:
            return [list(_shell_words(text))]
        if isinstance(node, ast.JoinedStr):
            split: list[ast.expr | str] = []
            for part in node.values:
                piece = _literal_str(part)
                if piece is not None:
                    split += _shell_words(piece)
                elif isinstance(part, ast.FormattedValue):
                    split.append(part.value)
            return [split]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            template = _literal_str(node.left)
            if template is not None:
                right = node.right
                values = right.elts if isinstance(right, ast.Tuple) else [right]
                return [_template_words(template, _PERCENT, list(values), {}, node)]
        if isinstance(node, ast.Call):
            built = self._built_command(node, scope, depth)
            if built is not None:
                return built
        if isinstance(node, ast.Name):
            defining = self.module.defining(node.id, scope)
            bound = defining.bindings.get(node.id, []) if defining else []
            if not bound or any(b.expr is None or b.scope is None or b.path for b in bound):
                return [[node]]
            key = (id(defining), node.id)
            if key in self._name_words:  # once per name (a name met again in its own
                return self._name_words[key]  # binding stands for itself)
            self._name_words[key] = [[node]]
            found: list[list[ast.expr | str]] = []
            for binding in bound:
                if binding.expr is not None and binding.scope is not None:
                    found = _capped(found + self._words(binding.expr, binding.scope, depth + 1))
            if self._changed_in_place(node.id):
                found = [[*line, node] for line in found]
            self._name_words[key] = found or [[node]]
            return self._name_words[key]
        return [[node]]

    def _built_command(  # noqa: PLR0911 - one per kind of call
        self, node: ast.Call, scope: _Scope, depth: int
    ) -> list[list[ast.expr | str]] | None:
        """The words of a command line a call builds: ``shlex.split(text)``, ``text.split()``,
        ``" ".join(words)``, ``shlex.join(words)``, ``"python3 {}".format(path)``; None for
        any other call."""
        func, args = node.func, node.args
        plain = len(args) == 1 and not node.keywords and not isinstance(args[0], ast.Starred)
        if plain and _names(self.resolve(func, scope)) & _COMMAND_BUILDERS:
            return self._words(args[0], scope, depth + 1)
        if not isinstance(func, ast.Attribute):
            return None
        if func.attr == "split" and not args and not node.keywords:
            return self._words(func.value, scope, depth + 1)
        if func.attr == "join" and plain:
            separators = self.module.texts(func.value, scope)
            if separators and all(not t.strip() for t in separators):
                return self._words(args[0], scope, depth + 1)
        template = _literal_str(func.value)
        if func.attr == "format" and template is not None:
            values = [a for a in args if not isinstance(a, ast.Starred)]
            named = {k.arg: k.value for k in node.keywords if k.arg is not None}
            if len(values) == len(args) and len(named) == len(node.keywords):
                return [_template_words(template, _BRACES, values, named, node)]
            return [[node]]
        return None

    def _changed_in_place(self, name: str) -> bool:
        """``cmd.append(x)``, ``cmd += [x]``, ``cmd[0] = x`` anywhere in the module."""
        if name not in self._in_place:
            changed = False
            for n in ast.walk(self.module.tree):
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
                    target = n.func.value
                    changed |= n.func.attr in _TABLE_WRITES and _dotted(target) == name
                elif isinstance(n, ast.AugAssign):
                    changed |= _dotted(n.target) == name
                elif isinstance(n, ast.Assign):
                    changed |= any(
                        isinstance(t, ast.Subscript) and _dotted(t.value) == name for t in n.targets
                    )
            self._in_place[name] = changed
        return self._in_place[name]

    def _interpreter(  # noqa: PLR0911, PLR0912 - one per spelling of the interpreter
        self, word: ast.expr | str, scope: _Scope, depth: int = 0, *, literal: bool = True
    ) -> bool:
        """A command-line word that is Python: ``python3``, ``/usr/bin/python3.11``,
        ``sys.executable`` under any name, ``shutil.which("python3")``, ``os.environ["_"]``,
        ``str(...)`` of one, a name bound to one."""
        if isinstance(word, str):
            return literal and bool(_INTERPRETER.fullmatch(word.rsplit("/", 1)[-1]))
        if depth > _MAX_DEPTH or word is _UNREAD:
            return (
                True  # names bound to names too deep to follow, or spellings too many: fail closed
            )
        texts = self.module.texts(word, scope)
        if texts is not None:
            return any(self._interpreter(t, scope, literal=literal) for t in texts)
        if _names(self.resolve(word, scope)) & _INTERPRETER_NAMES:
            return True  # vars(sys)["executable"], sys.__dict__["executable"] too
        if isinstance(word, ast.Subscript):
            table = _names(self.resolve(word.value, scope))
            if "sys.orig_argv" in table:
                return True
            return "os.environ" in table and self.module.texts(word.slice, scope) == ["_"]
        if isinstance(word, ast.BinOp) and isinstance(word.op, ast.Add | ast.Div):
            tails = self.module.texts(word.right, scope)  # venv / "python", venv + "/bin/python"
            joined = isinstance(word.op, ast.Add)
            if any(_interpreter_tail(t, joined=joined) for t in tails or []):
                return literal  # a path to Python: a command line where the word is one
        template = _template_text(
            word
        )  # f"python3.{minor}", "python%d.%d" % v, "python{}".format(v)
        if template is not None and _interpreter_tail(template, joined=True):
            return literal
        if isinstance(word, ast.BoolOp):  # os.getenv("PYTHON") or sys.executable
            return any(self._interpreter(v, scope, depth + 1, literal=literal) for v in word.values)
        if isinstance(word, ast.IfExp):
            return any(
                self._interpreter(v, scope, depth + 1, literal=literal)
                for v in (word.body, word.orelse)
            )
        if isinstance(word, ast.BinOp) and isinstance(word.op, ast.Add):  # sys.executable + ""
            tails = self.module.texts(word.right, scope)
            return not any(_spaced(t) for t in tails or []) and self._interpreter(
                word.left, scope, depth + 1, literal=literal
            )
        if isinstance(word, ast.JoinedStr) and word.values:  # f"{sys.executable}"
            head = word.values[0]
            last = _literal_str(word.values[-1])
            if last is not None and _interpreter_tail(last, joined=True):
                return literal and not any(_spaced(_literal_str(v) or "") for v in word.values)
            return (
                isinstance(head, ast.FormattedValue)
                and not any(_spaced(_literal_str(v) or "") for v in word.values)
                and self._interpreter(head.value, scope, depth + 1, literal=literal)
            )
        if (
            isinstance(word, ast.Call)
            and isinstance(word.func, ast.Attribute)
            and word.func.attr in _PROGRAM_METHODS
        ):  # sys.executable.replace("python", "pypy"), Path(venv).with_name("python3")
            if word.func.attr in ("with_name", "with_stem"):
                tails = self.module.texts(word.args[0], scope) if word.args else None
                if any(_interpreter_tail(t, joined=False) for t in tails or []):
                    return literal
            return self._interpreter(word.func.value, scope, depth + 1, literal=literal)
        if isinstance(word, ast.Call) and self._returns_interpreter(word, scope, depth):
            return True  # exe() of a lambda or a function of the module returning it
        if isinstance(word, ast.Call) and word.args:
            funcs = _names(self.resolve(word.func, scope))
            first = word.args[0]
            if funcs & _WHICH:
                return self._interpreter(first, scope, depth + 1)
            if funcs & _ENV_READS:
                default = word.args[1] if len(word.args) > 1 else None
                default = next((k.value for k in word.keywords if k.arg == "default"), default)
                return self.module.texts(first, scope) == ["_"] or (
                    default is not None
                    and self._interpreter(default, scope, depth + 1, literal=literal)
                )
            if len(word.args) > 1 and funcs & (_JOINS | _PATH_CALLS):  # join(venv, "python")
                tails = self.module.texts(word.args[-1], scope)
                if any(_interpreter_tail(t, joined=False) for t in tails or []):
                    return literal
            if funcs & (_PATH_CALLS | _PROGRAM_CALLS):
                return self._interpreter(first, scope, depth + 1, literal=literal)
        if isinstance(word, ast.Name):
            defining = self.module.defining(word.id, scope)
            key = (id(defining), word.id, "interpreter", literal)
            if key not in self._name_answers:  # once per name: names bound to names branch
                self._name_answers[key] = False
                self._name_answers[key] = any(
                    b.expr is not None
                    and b.scope is not None
                    and not b.path
                    and self._interpreter(b.expr, b.scope, depth + 1, literal=literal)
                    for b in (defining.bindings.get(word.id, []) if defining else [])
                )
            return bool(self._name_answers[key])
        return False

    def _returns_interpreter(self, call: ast.Call, scope: _Scope, depth: int) -> bool:
        """A call of a lambda or a function this module defines that returns Python
        (``exe = lambda: sys.executable``; ``def exe(): return sys.executable``)."""
        if not isinstance(call.func, ast.Name):
            return False
        defining = self.module.defining(call.func.id, scope)
        key = (id(defining), call.func.id, "returns", False)
        if defining is None or key in self._name_answers:
            return bool(self._name_answers.get(key))  # a function calling itself adds nothing
        self._name_answers[key] = False
        returned: list[tuple[ast.expr, _Scope]] = []
        for binding in defining.bindings.get(call.func.id, []):
            if isinstance(binding.expr, ast.Lambda):
                inner = self.module.scopes.get(binding.expr)
                returned += [(binding.expr.body, inner)] if inner is not None else []
        for node, inner in self.module.scopes.items():
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.name == call.func.id
                and inner.parent is defining
            ):
                returned += [
                    (n.value, inner)
                    for n in _own_nodes(node.body)
                    if isinstance(n, ast.Return) and n.value is not None
                ]
        found = any(self._interpreter(v, s, depth + 1, literal=False) for v, s in returned)
        self._name_answers[key] = found
        return found

    def _judge_child(self, node: ast.Call, names: set[str], scope: _Scope) -> None:
        """SAST107: a child interpreter on a file or module this scan did not read."""
        if names & _WHICH and node.args:
            where = node.args[1] if len(node.args) > 1 else None
            where = next((k.value for k in node.keywords if k.arg == "path"), where)
            if (
                where is not None
                and self._interpreter(node.args[0], scope)
                and not self._search_path_ok(where, scope)
            ):
                why = (
                    f"looks Python up on {ast.unparse(where)[:_SHOWN]}: a python in a folder "
                    f"searched before the system's runs instead, a program no scan read"
                )
                self.report(node, "SAST107", "shutil.which", why)
            return
        if (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == _SET_EXECUTABLE
            and len(node.args) == 1  # distutils' compiler.set_executable(key, value) is not it
        ):
            committed = self._program_problem(node.args[0], scope)
            if committed is not None:
                self.report(node, "SAST107", _SET_EXECUTABLE, committed)
            elif not self._interpreter(node.args[0], scope):
                shown = ast.unparse(node.args[0])[:_SHOWN]
                why = (
                    f"sets the interpreter multiprocessing starts its children with to {shown}, "
                    f"which this check cannot tell is Python (it can run any program)"
                )
                self.report(node, "SAST107", _SET_EXECUTABLE, why)
            return
        if _loop_runner(node):  # loop.subprocess_exec(protocol, *command): asyncio's own
            node = copy.copy(node)
            node.args = node.args[1:]
            names = names | {"subprocess.Popen"}
            self._judge_command(node, names, scope)
        if not names & COMMANDS or any(
            arg in self.reported or (isinstance(arg, ast.BinOp) and arg.left in self.reported)
            for arg in node.args
        ):
            return
        cwd = next((k.value for k in node.keywords if k.arg == "cwd"), None)
        for line in self._command_lines(node, scope):
            problem = self._child_problem(line, scope, cwd=cwd)
            for place, moved in self._chdirs() if cwd is None and problem is None else []:
                problem = self._child_problem(line, scope, cwd=moved)
                if problem is not None:  # the process's working folder, moved before it starts
                    problem = f"after {place}, {problem}"
                    break
            if problem is not None:
                self.report(node, "SAST107", "python", problem)
                return
        self._judge_given_line(node, scope)

    def _judge_in_process(self, node: ast.Call, names: set[str], scope: _Scope) -> None:
        """SAST104 (sast108): a tool run in this process (``_IN_PROCESS``: ``pytest.main``,
        ``unittest.main``, pip's and coverage's ``main``, ``mypy.api.run``), its argument list
        judged as ``python -m TOOL`` with those words. ``unittest.main()`` with neither
        ``module=`` nor ``argv=`` runs the calling module's own tests and passes, as pip's,
        coverage's or mypy's ``main()`` with no argument list does (the process's own command
        line: the tool's entry point, ``coverage/__main__.py``); ``pytest.main()`` fails always."""
        call = min(names & _IN_PROCESS.keys(), default=None)
        if call is None:
            return
        tool = _IN_PROCESS[call]
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        given = keywords.get("argv", keywords.get("args"))
        if tool == "unittest":
            module = keywords.get("module", node.args[0] if node.args else None)
            own = module is None or _literal_str(module) == "__main__"
            if given is None and own:
                return  # the module's own tests, with the process's command line
            if given is None and isinstance(module, ast.Constant) and module.value is None:
                why = f"calls {call}(module=None) in this process: the tests it imports are named at run time (sys.argv), code no scan may have read"
                self.report(node, "SAST104", call, why)
                return
            if isinstance(module, ast.Constant) and module.value is None:
                own = True  # module=None: argv names every test
            lines: list[list[ast.expr | str]] = (
                [  # argv[0] is the program's name; a computed first word may be the whole list
                    line[1:]
                    if len(line) > 1 or (line and self._word_text(line[0], scope) is not None)
                    else line
                    for line in self._words(given, scope, 0)
                ]
                if given is not None
                else [[]]
            )
            if not own and module is not None:
                lines = [[module, *line] for line in lines]  # module= names what it loads
        else:
            given = given if given is not None else (node.args[0] if node.args else None)
            if given is None and tool not in _TREE_RUNNERS:
                return  # main(): the process's own command line, as the tool's entry point
            lines = self._words(given, scope, 0) if given is not None else [[]]
        for line in _capped(lines):
            problem = self._runner_problem(tool, line, scope)
            if problem is not None:
                problem = f"calls {call}() in this process, as python -m {tool} would: {problem}"
                self.report(node, "SAST104", call, problem)
                return

    def _judge_in_process_app(
        self,
        node: ast.Call,
        names: set[str],
        scope: _Scope,
        at: ast.Call | None = None,
        how: str = "functools.partial",
    ) -> None:
        """SAST104 (sast109): a server, worker or tool started in this process on code named
        by text: ``uvicorn.run("pkg:app")``/``uvicorn.Config(...)`` (the module judged as a
        ``-m`` module, ``app_dir=`` as a working folder), gunicorn's applications, a Celery
        app's worker, ``coverage.Coverage()`` reading the working folder's configuration, and
        ``X.cfg.set(...)`` of a gunicorn setting that imports what it names; each also made
        ready by ``functools.partial`` (sast110): read as one call when called at once
        (``partial(f, a)(b)``), failing closed otherwise (a keyword given at its later call
        replaces the partial's)."""
        if self._judge_partial_app(node, names, scope) or self._judge_methodcaller_app(
            node, names, scope
        ):
            return
        problem: str | None = None
        call = ""
        if names & _APP_STRINGS:
            call = min(names & _APP_STRINGS)
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            app = keywords.get("app", node.args[0] if node.args else None)
            folder = keywords.get("app_dir")
            hidden = any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords
            )
            if hidden and (isinstance(app, ast.Starred | None) or folder is None):
                problem = "the application or app_dir= is given through *args/**mapping, not read here: it may be an import string or a folder of code no scan read"
            elif app is not None:
                problem = self._import_string_problem(app, scope, "the application")
            if problem is None and folder is not None and not self._cwd_ok(folder, scope):
                shown = ast.unparse(folder)[:_SHOWN]
                problem = f"puts app_dir {shown} first on sys.path: every later import may be a module there, code no scan read"
        elif names & _GUNICORN_APPS:
            call = min(names & _GUNICORN_APPS)
            problem = "runs the working folder's gunicorn.conf.py and imports the application the process's command line names, code no scan read"
        elif names & _CELERY_WORKERS or (
            isinstance(node.func, ast.Attribute) and node.func.attr == "worker_main"
        ):
            call = min(names & _CELERY_WORKERS, default="worker_main")
            problem = "starts a Celery worker: it imports the modules its configuration names (include=, imports, config_from_object) and runs the tasks sent to it, code no scan read"
        elif names & _COVERAGE_API:
            call = min(names & _COVERAGE_API)
            problem = self._coverage_api_problem(node, scope)
        elif names & _DASK_SERVERS:
            call = min(names & _DASK_SERVERS)
            problem = self._dask_server_problem(node, scope)
        elif (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == "set"
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "cfg"
            and len(node.args) == 2
            and self._gunicorn_module()
        ):
            call = "gunicorn cfg.set"
            problem = self._gunicorn_setting_problem(node.args[0], node.args[1], scope)
        if problem is not None:
            through = "" if at is None else f" (through {how}, called at once)"
            where = node if at is None else at
            self.report(
                where, "SAST104", call, f"calls {call}(){through} in this process: {problem}"
            )

    def _starts_app(self, func: ast.expr, names: set[str]) -> str | None:
        """The in-process starter ``func`` is (``uvicorn.run``, ``coverage.Coverage`` ...)."""
        starters = names & (
            _APP_STRINGS
            | _GUNICORN_APPS
            | _CELERY_WORKERS
            | _COVERAGE_API
            | _DASK_SERVERS
            | _IN_PROCESS.keys()
        )
        if starters:
            return min(starters)
        if isinstance(func, ast.Attribute) and func.attr == "worker_main":
            return "worker_main"
        return None

    def _target_names(self, target: ast.expr, scope: _Scope) -> set[str]:
        """The names ``target`` is, and those of the partials it is (``partial(partial(f))``)."""
        values = self.resolve(target, scope)
        inner = frozenset(t for v in values if isinstance(v, _Partial) for t in v.targets)
        return _names(values) | _names(inner)

    def _judge_partial_app(self, node: ast.Call, names: set[str], scope: _Scope) -> bool:
        """``functools.partial(uvicorn.run, ...)`` and the other starters: called at once, the
        two argument lists are judged as one call; otherwise a finding (SAST104), since the
        arguments its later call adds, or the keywords it replaces (``config_file=``,
        ``app_dir=``), are not read here. True when ``node`` is such a partial or its call."""
        if isinstance(node.func, ast.Call) and self._judge_partial_called(node, node.func, scope):
            return True
        if self._judge_bound_app(node, names, scope):
            return True
        if not (names & _PARTIALS and node.args) or isinstance(node.args[0], ast.Starred):
            return False
        starter = self._starts_app(node.args[0], self._target_names(node.args[0], scope))
        if starter is None:
            return False
        parent = self.parents.get(node)
        if isinstance(parent, ast.Call) and parent.func is node:
            return True  # partial(f, a)(b): judged at the call, as one
        why = (
            f"calls {min(names & _PARTIALS)}({starter}, ...): the arguments its later call adds, "
            f"or the keywords it replaces (the application, app_dir=, config_file=, preload=), "
            f"are not read here, and {starter} may import code no scan read; call it directly "
            f"(or the partial at once)"
        )
        self.report(node, "SAST104", starter, why)
        return True

    def _judge_bound_app(self, node: ast.Call, names: set[str], scope: _Scope) -> bool:
        """A starter bound to an argument (``types.MethodType``, ``__get__``) or a Celery app's
        worker through ``operator.methodcaller``: SAST104. True when it was a finding."""
        bound = self._bound_starter(node, names, scope)
        if bound is not None:
            why = f"binds {bound} to an argument ({ast.unparse(node.func)[:_SHOWN]}): the application, configuration or argument list it gets is not read here, and {bound} may import code no scan read; call it directly"
            self.report(node, "SAST104", bound, why)
            return True
        if "operator.methodcaller" in names and _literal_str(
            node.args[0] if node.args else None
        ) in ("worker_main", "Worker"):
            why = "calls a Celery app's worker through operator.methodcaller: it starts a worker that imports the modules its configuration names and runs the tasks sent to it, code no scan read"
            self.report(node, "SAST104", "worker_main", why)
            return True
        return False

    def _judge_methodcaller_app(self, node: ast.Call, names: set[str], scope: _Scope) -> bool:
        """SAST104 (sast111): ``operator.methodcaller("run", "pkg:app")`` applied to a receiver
        is the call ``receiver.run("pkg:app")``. Called at once (or by a name bound to it) on a
        receiver the analysis knows, it is judged as that call when the receiver's method is a
        starter (``uvicorn.run``, ``pytest.main``) and passes otherwise (``subprocess``'s
        ``run`` is read as a child already); on a receiver it does not know (a parameter, an
        item of a list), or built and not called at once (``map``, ``sorted(key=)``), a starter's
        name fails closed. True when it was judged here."""
        if "operator.methodcaller" in names:
            method = _literal_str(node.args[0] if node.args else None)
            parent = self.parents.get(node)
            if method not in _STARTER_METHODS or (
                isinstance(parent, ast.Call) and parent.func is node
            ):
                return False  # called at once: judged at the call, with its receiver
            why = (
                f"builds operator.methodcaller({method!r}, ...), whose receiver is bound later "
                f"and not read here: on {_starter_list(method)} it starts a server, worker or "
                f"tool on code named by text, code no scan may have read; call it directly"
            )
            self.report(node, "SAST104", f"methodcaller({method!r})", why)
            return True
        callers = [
            f
            for f in self.resolve(node.func, scope)
            if isinstance(f, _MethodCaller) and f.name in _STARTER_METHODS
        ]
        for caller in callers:
            receiver = (
                node.args[0]
                if len(node.args) == 1 and not isinstance(node.args[0], ast.Starred)
                else None
            )
            values = frozenset() if receiver is None else self.resolve(receiver, scope)
            known = bool(values) and all(isinstance(v, _Ref | _Class) for v in values)
            targets = _names(self.module.attribute(values, caller.name))
            func = ast.Attribute(
                value=receiver or ast.Name(id="_", ctx=ast.Load()),
                attr=caller.name,
                ctx=ast.Load(),
            )
            if receiver is not None and self._starts_app(func, targets) is not None:
                merged = ast.copy_location(
                    ast.Call(
                        func=func,
                        args=list(caller.call.args[1:]),
                        keywords=list(caller.call.keywords),
                    ),
                    node,
                )
                self._judge_in_process_app(
                    merged, targets, scope, at=node, how="operator.methodcaller"
                )
                self._judge_in_process(merged, targets, scope)
                return True
            if known or caller.call is not node.func:
                continue  # a receiver that is no starter; a named one failed where it was built
            shown = ast.unparse(receiver)[:_SHOWN] if receiver is not None else "its argument"
            why = (
                f"calls operator.methodcaller({caller.name!r}, ...) on {shown}, a receiver not "
                f"known here: on {_starter_list(caller.name)} it starts a server, worker or tool "
                f"on code named by text, code no scan may have read; call it directly"
            )
            self.report(node, "SAST104", f"methodcaller({caller.name!r})", why)
            return True
        return False

    def _bound_starter(self, node: ast.Call, names: set[str], scope: _Scope) -> str | None:
        """``types.MethodType(uvicorn.run, "pkg:app")`` and ``uvicorn.run.__get__("pkg:app")``
        bind a starter's first argument as a partial does: the starter, or None."""
        func = node.func
        if "types.MethodType" in names and node.args:
            target = node.args[0]
        elif isinstance(func, ast.Attribute) and func.attr == "__get__":
            target = func.value
        else:
            return None
        if isinstance(target, ast.Starred):
            return None
        return self._starts_app(target, self._target_names(target, scope))

    def _judge_partial_called(self, node: ast.Call, inner: ast.Call, scope: _Scope) -> bool:
        """``partial(starter, a, k=v)(b, k=w)`` judged as ``starter(a, b, k=w)`` (the call's
        keyword replaces the partial's). True when ``inner`` is a partial of a starter."""
        if not (inner.args and _names(self.resolve(inner.func, scope)) & _PARTIALS):
            return False
        target = inner.args[0]
        if (
            isinstance(target, ast.Starred)
            or self._starts_app(target, self._target_names(target, scope)) is None
        ):
            return False
        keywords: dict[str, ast.keyword] = {}
        hidden = [k for k in [*inner.keywords, *node.keywords] if k.arg is None]
        for keyword in [*inner.keywords, *node.keywords]:
            if keyword.arg is not None:
                keywords[keyword.arg] = keyword
        merged = ast.copy_location(
            ast.Call(
                func=target,
                args=[*inner.args[1:], *node.args],
                keywords=[*keywords.values(), *hidden],
            ),
            node,
        )
        names = self._target_names(target, scope)
        self._judge_in_process_app(merged, names, scope, at=node)
        self._judge_in_process(merged, names, scope)  # pytest.main, uvicorn's main ...
        return True

    def _stringy(  # noqa: PLR0911 - one per kind of expression
        self, node: ast.expr, scope: _Scope, depth: int = 0
    ) -> bool:
        """``node`` is text built at run time (an f-string, ``%``, ``+`` with text, ``.format``,
        ``str()``, an environment read), or a name bound to such: an import string computed."""
        if depth > _MAX_DEPTH:
            return True
        if isinstance(node, ast.JoinedStr) or _literal_str(node) is not None:
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            return self._stringy(node.left, scope, depth + 1) or self._stringy(
                node.right, scope, depth + 1
            )
        if isinstance(node, ast.Subscript):
            return "os.environ" in _names(self.resolve(node.value, scope))
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
                return True
            funcs = _names(self.resolve(node.func, scope))
            return bool(funcs & {"builtins.str", "os.getenv", "os.environ.get"})
        if isinstance(node, ast.Name):
            defining = self.module.defining(node.id, scope)
            return any(
                b.expr is not None
                and b.scope is not None
                and not b.path
                and self._stringy(b.expr, b.scope, depth + 1)
                for b in (defining.bindings.get(node.id, []) if defining else [])
            )
        return False

    def _import_string_problem(self, value: ast.expr, scope: _Scope, what: str) -> str | None:
        """An import string (``pkg.module:attr``): its module judged as a ``-m`` module (the
        project's unscanned code fails); text computed at run time fails; an object passes."""
        texts = self.module.texts(value, scope)
        if texts is None:  # a module-level text of another scanned module (conf.APP) too
            texts = [c for c in self._constants(value, scope) if isinstance(c, str)] or None
        if texts is None:
            if not self._stringy(value, scope):
                return None  # an application object: the scan reads its code where it is built
            shown = ast.unparse(value)[:_SHOWN]
            return f"{what} is the import string {shown}, computed at run time: it may name code no scan read"
        for text in texts:
            module = text.partition(":")[0]
            problem = self._module_problem(module, False, scope) if module else None
            if problem is not None:
                return f"{what} {text} is imported: {problem.replace('runs python -m', 'module')}"
        return None

    def _dask_server_problem(self, node: ast.Call, scope: _Scope) -> str | None:
        """``distributed.Worker(preload=[...])`` (and ``Nanny``, ``Scheduler``, ``preload_nanny=``)
        imports what it names, as ``dask-worker --preload`` does; ``**mapping`` fails closed."""
        if any(k.arg is None for k in node.keywords):
            return "preload= may be given through **mapping: the worker imports what it names, code no scan may have read"
        for keyword in node.keywords:
            if keyword.arg not in ("preload", "preload_nanny"):
                continue
            value = keyword.value
            items: list[ast.expr] = (
                list(value.elts) if isinstance(value, ast.List | ast.Tuple | ast.Set) else [value]
            )
            for item in items:
                if isinstance(item, ast.Constant) and item.value is None:
                    continue  # preload=None: nothing
                problem = self._preloaded(
                    item.value if isinstance(item, ast.Starred) else item, scope
                )
                if problem is not None:
                    return f"{keyword.arg}= {problem}"
        return None

    def _coverage_api_problem(self, node: ast.Call, scope: _Scope) -> str | None:
        """``coverage.Coverage()`` reads the working folder's configuration unless
        ``config_file=`` is ``False``, ``""``, ``/dev/null`` (``os.devnull``) or the system's."""
        if any(k.arg is None for k in node.keywords) or any(
            isinstance(a, ast.Starred) for a in node.args
        ):
            return "config_file= may be given through *args/**mapping: it may read the working folder's configuration, whose plugins it imports"
        value = next((k.value for k in node.keywords if k.arg == "config_file"), None)
        if value is None and len(node.args) > _COVERAGE_CONFIG_AT:
            value = node.args[_COVERAGE_CONFIG_AT]
        if isinstance(value, ast.Constant) and value.value is False:
            return None
        if value is not None:
            text = self._word_text(value, scope)
            if text in _NO_CONFIG or self._names_devnull(value, scope):
                return None
            if text is not None and text.startswith(_SYSTEM_CONFIG) and ".." not in text:
                return None
        shown = "the default (True)" if value is None else ast.unparse(value)[:_SHOWN]
        return (
            f"config_file= is {shown}: coverage reads the working folder's .coveragerc, "
            f"setup.cfg, tox.ini or pyproject.toml (the pull request's) and imports the plugins "
            f"they name, code no scan read; give config_file=False"
        )

    def _gunicorn_module(self) -> bool:
        """A module scanned with this one subclasses gunicorn's BaseApplication."""
        modules = {id(m): m for ms in self.module.project.modules.values() for m in ms}
        for module in [self.module, *modules.values()]:
            checker = self if module is self.module else self._other(module)
            for node in ast.walk(module.tree):
                if isinstance(node, ast.ClassDef) and any(
                    _GUNICORN_BASE in _names(checker.resolve(b, checker._scope_of(b)))
                    for b in node.bases
                ):
                    return True
        return False

    def _judge_gunicorn_class(self, node: ast.ClassDef, scope: _Scope) -> None:
        """A subclass of gunicorn's Application or WSGIApplication (SAST104); of
        ``coverage.Coverage`` or ``uvicorn.Config``, whose arguments are then not read here
        (fails closed)."""
        for base in node.bases:
            names = _names(self.resolve(base, scope))
            if names & _GUNICORN_APPS:
                why = f"subclasses {min(names & _GUNICORN_APPS)}: it runs the working folder's gunicorn.conf.py and imports the application the process's command line names, code no scan read"
                self.report(node, "SAST104", min(names & _GUNICORN_APPS), why)
                return
            hidden = names & (_COVERAGE_API | {"uvicorn.Config", "uvicorn.config.Config"})
            if hidden:
                why = f"subclasses {min(hidden)}: the configuration file or application its instances are given is not read here (it may be the tree's, imported in this process)"
                self.report(node, "SAST104", min(hidden), why)
                return

    def _gunicorn_setting_problem(
        self, key: ast.expr, value: ast.expr, scope: _Scope
    ) -> str | None:
        """A gunicorn setting that imports what it names (``worker_class``, ``wsgi_app``,
        ``config`` ...): a literal key has its value judged; a key computed at run time has
        every such key written as text in the modules scanned with it judged instead."""
        keys = self.module.texts(key, scope)
        if keys is not None:
            return _first(
                self._gunicorn_value_problem(k.lower(), value, scope)
                for k in keys
                if k.lower() in _GUNICORN_IMPORTS
            )
        modules = {id(m): m for ms in self.module.project.modules.values() for m in ms}
        for module in [self.module, *(m for m in modules.values() if m is not self.module)]:
            checker = self if module is self.module else self._other(module)
            for found in ast.walk(module.tree):
                pairs: list[tuple[str | None, ast.expr]] = []
                if isinstance(found, ast.Dict):
                    pairs = [
                        (_literal_str(k), v)
                        for k, v in zip(found.keys, found.values, strict=True)
                        if k is not None
                    ]
                elif isinstance(found, ast.Call):
                    pairs = [(k.arg, k.value) for k in found.keywords if k.arg]
                for name, given in pairs:
                    if name is not None and name.lower() in _GUNICORN_IMPORTS:
                        where = checker._scope_of(given)
                        problem = checker._gunicorn_value_problem(name.lower(), given, where)
                        if problem is not None:
                            return f"{problem} (at {module.path}:{given.lineno})"
        return None

    def _gunicorn_value_problem(  # noqa: PLR0911 - one per kind of setting
        self, key: str, value: ast.expr, scope: _Scope
    ) -> str | None:
        """Why the gunicorn setting ``key`` given ``value`` imports code no scan read."""
        if key in ("pythonpath", "chdir"):
            texts = self.module.texts(value, scope)
            folders: list[ast.expr | str] = (
                [f.strip() for t in texts for f in t.split(",")] if texts is not None else [value]
            )
            for folder in folders:
                if not self._cwd_ok(folder, scope):
                    shown = folder if isinstance(folder, str) else ast.unparse(folder)[:_SHOWN]
                    return f"gunicorn's {key} {shown} is put first on sys.path (or made the working folder): its modules are code no scan read"
            return None
        if key == "paste":
            return "gunicorn's paste names a PasteDeploy file, whose application it imports by name: code no scan read"
        texts = self.module.texts(value, scope)
        if texts is None:
            if not self._stringy(value, scope):
                return None  # a class or an application object the scan reads where it is built
            return f"gunicorn's {key} is {ast.unparse(value)[:_SHOWN]}, computed at run time: it imports what it names, code no scan may have read"
        for text in texts:
            if key == "config" and not text.startswith("python:"):
                problem = self._script_problem(value, scope)
                if problem is not None:
                    return f"gunicorn's config {text} is run as Python: {problem}"
                continue
            name = text.removeprefix("python:")
            if key in ("worker_class", "logger_class"):
                if name.startswith("egg:") or "." not in name:
                    continue  # an entry point of an installed package, or a built-in worker
                name = name.rpartition(".")[0]
            module = name.partition(":")[0]
            problem = self._module_problem(module, False, scope)
            if problem is not None:
                return f"gunicorn's {key} {text} is imported: {problem.replace('runs python -m', 'module')}"
        return None

    def _judge_given_line(self, node: ast.Call, scope: _Scope) -> None:
        """A command line given to the function running it (``def run(command):
        subprocess.run(command)``, ``*argv``): judged at each call of the function."""
        given = [k.value for k in node.keywords if k.arg == "args"] or node.args[:1]
        if not given:
            return
        parameter = self._parameter(given[0], scope)
        problem = None if parameter is None else self._given_line_problem(*parameter)
        problem = problem or self._vararg_line_problem(given[0], scope)
        if problem is not None:
            self.report(node, "SAST107", "python", problem)

    def _judge_command_display(self, node: ast.AST, scope: _Scope) -> None:
        """A command line written as a list or tuple display whose first word is Python by
        value (``sys.executable`` under any name, ``shutil.which("python3")``), wherever it is:
        handed to a helper of the project's own (``run([sys.executable, path])``), or the
        head of ``[sys.executable] + argv``. A display starting with the literal word ``python``
        is a command line here only when its next word is an option (``["python3", "-m",
        mod]``) or a path built at run time (``["python3", str(ROOT / "data" / x)]``):
        ``("python", "diff")`` and ``("python", sys.version)`` are not commands. Python alone
        (``[sys.executable]``) is read only at a call that runs it."""
        line = node
        parent = self.parents.get(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            if (
                isinstance(parent, ast.BinOp)
                and isinstance(parent.op, ast.Add)
                and parent.left is node
            ):
                return  # ((a + b) + c): judged once, with the whole sum it heads
            while isinstance(line, ast.BinOp) and isinstance(line.op, ast.Add):
                line = line.left
        elif isinstance(parent, ast.BinOp):
            return  # judged with the sum it heads
        if not (
            isinstance(line, ast.List | ast.Tuple)
            and isinstance(line.ctx, ast.Load)
            and line.elts
            and not isinstance(line.elts[0], ast.Starred)
            and self._interpreter(line.elts[0], scope)
        ):
            return
        if not self._interpreter(line.elts[0], scope, literal=False) and not (
            len(line.elts) > 1 and self._command_like(line.elts[1], scope, 0)
        ):
            return
        for words in self._words(node, scope, 0) if isinstance(node, ast.expr) else []:
            if len(words) < 2:
                continue
            problem = self._child_problem(words, scope)
            if problem is not None:
                self.report(node, "SAST107", "python", problem)
                return

    def _command_like(  # noqa: PLR0911 - one per kind of expression
        self, word: ast.expr, scope: _Scope, depth: int
    ) -> bool:
        """A word after a literal ``python`` that makes the display a command line: an
        option (``-m``, ``-I``), or a path built at run time (``/`` on a path, a join, a
        ``Path``, an f-string holding ``/`` or ``.py``, a name bound to one)."""
        text = _literal_str(word)
        if text is not None or depth > _MAX_DEPTH:
            return text is not None and text.startswith("-")
        if isinstance(word, ast.BinOp) and isinstance(word.op, ast.Div):
            return True
        if isinstance(word, ast.JoinedStr):
            return any(
                "/" in (_literal_str(p) or "") or ".py" in (_literal_str(p) or "")
                for p in word.values
            )
        if isinstance(word, ast.Call):
            funcs = _names(self.resolve(word.func, scope))
            if funcs & _JOINS or "pathlib.Path" in funcs:
                return True
            return bool(funcs & _PATH_CALLS) and any(
                self._command_like(a, scope, depth + 1) for a in word.args
            )
        if isinstance(word, ast.Name):
            if self._parameter(word, scope) is not None:
                return True  # ["python3", p]: p may be any path
            defining = self.module.defining(word.id, scope)
            key = (id(defining), word.id, "command", True)
            if key not in self._name_answers:
                self._name_answers[key] = False
                self._name_answers[key] = any(
                    b.expr is not None
                    and b.scope is not None
                    and not b.path
                    and self._command_like(b.expr, b.scope, depth + 1)
                    for b in (defining.bindings.get(word.id, []) if defining else [])
                )
            return bool(self._name_answers[key])
        return False

    def _child_problem(
        self,
        line: list[ast.expr | str],
        scope: _Scope,
        depth: int = 0,
        cwd: ast.expr | str | None = None,
    ) -> str | None:
        """Why a command line runs Python code no scan read; None when it does not. A shell
        command line is read command by command (``cd data && python3 evil.py``: the commands
        after ``cd`` run in its folder), and a shell's ``-c`` command string (``sh -c "python3 "
        + path``) as a command line of its own."""
        for command in _shell_commands(line):
            if command[0] in ("cd", "pushd"):
                cwd = command[1] if len(command) > 1 else cwd
                continue
            problem = self._shell_problem(command, scope, depth, cwd) or self._python_problem(
                command, scope, cwd
            )
            if problem is not None:
                return problem
        return None

    def _shell_problem(
        self,
        line: list[ast.expr | str],
        scope: _Scope,
        depth: int,
        cwd: ast.expr | str | None = None,
    ) -> str | None:
        """``sh -c TEXT`` (after ``env``, ``nice`` ...; ``bash -lc``, ``sh -ec``): TEXT's
        command lines, read as any other."""
        index = 0
        while index < len(line) and self._before_program(line[index], scope):
            index += 1
        if index >= len(line) or depth > _MAX_DEPTH:
            return None
        word = line[index]
        texts = [word] if isinstance(word, str) else self.module.texts(word, scope)
        if not texts or not all(t.rsplit("/", 1)[-1] in _SHELLS for t in texts):
            return None
        for at in range(index + 1, len(line) - 1):
            word = line[at]
            options = [word] if isinstance(word, str) else self.module.texts(word, scope)
            option = options[0] if options and len(options) == 1 else ""
            if option == "--":
                return None
            # sh -o pipefail -c ...: words between options are read past (fail closed)
            if option.startswith("-") and "c" in option[1:] and option[1:].isalpha():
                command = line[at + 1]
                lines: list[list[ast.expr | str]] = (
                    [list(_shell_words(command))]
                    if isinstance(command, str)
                    else self._words(command, scope, depth + 1)
                )
                for words in lines:
                    problem = self._child_problem(words, scope, depth + 1, cwd)
                    if problem is not None:
                        return problem
                return None
        return None

    def _python_problem(  # noqa: PLR0911, PLR0912, PLR0915 - Python's options, as it reads them
        self, line: list[ast.expr | str], scope: _Scope, cwd: ast.expr | str | None = None
    ) -> str | None:
        """Why one command (no shell operators in it) runs Python code no scan read. ``cwd``
        is the child's working folder when the call sets it (``cwd=``, ``cd``): without
        ``-I``/``-P`` it is first on the import path of ``-m`` and ``-c``, and a relative
        script is found there."""
        start = next((i for i, w in enumerate(line) if self._interpreter(w, scope)), None)
        if start is None:
            return self._tool_problem(line, scope, cwd)
        prefix = self._wrappers(line[:start], scope, cwd)
        if prefix is None:
            return None
        cwd = prefix[0]
        problem = self._program_problem(line[start], scope)
        if problem is not None:
            return problem
        index = start + 1
        while index < len(line) and self._interpreter(line[index], scope):
            index += 1  # os.execv(sys.executable, [sys.executable, ...]): argv[0] again
        isolated = safe = False
        while index < len(line):
            word = line[index]
            texts = [word] if isinstance(word, str) else self.module.texts(word, scope)
            if texts is None or len(texts) != 1:
                if not texts or not any(t.startswith("-") for t in texts):
                    return self._cwd_script_problem(word, scope, cwd)
                return f"starts Python with options computed at run time ({', '.join(texts)})"
            text = texts[0]
            if text == "-":
                return "starts Python reading its code from its input, which no scan read"
            if text == "--":
                index += 1
                break
            if text in _PYTHON_TAKES:
                following = line[index + 1] if index + 1 < len(line) else ""
                problem = self._setting_problem(text[1:], following, scope)
                if problem is not None:
                    return problem
                index += 2
                continue
            if text.startswith("--"):
                return None  # --version, --help: nothing runs
            if not text.startswith("-"):
                break
            cluster = text[1:]
            at = next((i for i, c in enumerate(cluster) if c not in _PYTHON_FLAGS), len(cluster))
            flags, rest = cluster[:at], cluster[at:]
            isolated |= "I" in flags
            safe |= "I" in flags or "P" in flags
            if not rest:
                index += 1
                continue
            if rest[0] in "WX":  # -W error::mod.Category, -Xpycache_prefix=data
                following = rest[1:] or (line[index + 1] if index + 1 < len(line) else "")
                problem = self._setting_problem(rest[0], following, scope)
                if problem is not None:
                    return problem
                index += 1 if rest[1:] else 2
                continue
            if rest[0] not in "cm":
                return None  # Python refuses an option it does not know
            argument = rest[1:] or (line[index + 1] if index + 1 < len(line) else "")
            if rest[0] == "c" and self._imports_nothing(argument, scope):
                return None  # -c "pass": nothing is imported from the working folder
            if cwd is not None and not safe and not self._cwd_ok(cwd, scope):
                shown = cwd if isinstance(cwd, str) else ast.unparse(cwd)[:_SHOWN]
                return (
                    f"runs python -{rest[0]} in the working folder {shown}, first on its import "
                    f"path (no -I/-P): it imports code there that no scan may have read"
                )
            if rest[0] == "c":
                return None  # the code given to -c is read as code (SAST104)
            module = argument
            after = line[index + (1 if rest[1:] else 2) :]
            problem = self._module_problem(module, isolated, scope, after)
            if problem is not None or (not rest[1:] and index + 1 >= len(line)):
                return problem
            return self._runner_problem(module, after, scope, safe=safe)
        if index >= len(line):  # python alone reads its program from its input
            return (
                "starts Python with no script: it reads its code from its input, which no scan read"
            )
        return self._cwd_script_problem(line[index], scope, cwd)

    def _tool_problem(
        self, line: list[ast.expr | str], scope: _Scope, cwd: ast.expr | str | None
    ) -> str | None:
        """A Python tool's own program (``pytest``, ``pip``, ``coverage``, ``nox`` ...), after
        any wrappers, judged as ``python -m TOOL`` with the same words."""
        for at, word in enumerate(line):
            text = self._word_text(word, scope)
            base = (text or "").rsplit("/", 1)[-1].removesuffix(".exe")
            tool = _CONSOLE_SCRIPTS.get(base) or _CONSOLE_SCRIPTS.get(base.rstrip("0123456789."))
            if tool is not None:
                if self._wrappers(line[:at], scope, cwd) is None:
                    return None  # an argument of another program (git grep pytest)
                return self._runner_problem(tool, line[at + 1 :], scope, safe=True)
        return None

    def _wrappers(
        self, words: list[ast.expr | str], scope: _Scope, cwd: ast.expr | str | None
    ) -> tuple[ast.expr | str | None] | None:
        """The words before Python, when each may come before a program (``env``, ``nice
        -n 10``, ``timeout 5s``, ``sudo -u USER``), with the working folder ``env -C DIR`` /
        ``--chdir=DIR`` sets; None when another program runs Python as an argument."""
        for at, word in enumerate(words):
            texts = [word] if isinstance(word, str) else self.module.texts(word, scope)
            last = words[at - 1] if at else ""
            before = [last] if isinstance(last, str) else self.module.texts(last, scope)
            if before and before[0] in _WRAPPER_TAKES:  # env -C DIR, sudo -u USER, timeout -k 5
                cwd = word if before[0] in ("-C", "--chdir") else cwd
            elif texts and len(texts) == 1 and texts[0].startswith("--chdir="):
                cwd = texts[0].partition("=")[2]
            elif not self._before_program(word, scope) and not (
                texts and all(_DURATION.fullmatch(t) for t in texts)  # timeout 5s
            ):
                return None
        return (cwd,)

    def _setting_problem(self, option: str, value: ast.expr | str, scope: _Scope) -> str | None:
        """``-W``/``-X`` as their variables are judged: a warning category in a module of the
        project no scan reads is imported (PYTHONWARNINGS); ``-X pycache_prefix`` makes a
        child read compiled code from another folder (PYTHONPYCACHEPREFIX); computed: fails
        closed."""
        texts = [value] if isinstance(value, str) else self.module.texts(value, scope)
        if texts is None:
            shown = ast.unparse(value)[:_SHOWN] if isinstance(value, ast.expr) else ""
            return f"starts Python with -{option} {shown}, computed at run time: it may import or read code no scan read"
        for text in texts:
            if option == "W" and not self._env_value_ok(
                "PYTHONWARNINGS", ast.Constant(value=text), scope
            ):
                return f"starts Python with -W {text}: {PYTHON_ENV['PYTHONWARNINGS']}, code no scan read"
            if option == "X" and text.partition("=")[0] == "pycache_prefix":
                return f"starts Python with -X {text}: it {PYTHON_ENV['PYTHONPYCACHEPREFIX']}, code no scan read"
        return None

    def _runner_problem(  # noqa: PLR0911, PLR0912 - one per kind of argument
        self,
        module: ast.expr | str,
        rest: list[ast.expr | str],
        scope: _Scope,
        *,
        safe: bool = False,
    ) -> str | None:
        """``python -m runpy|trace|cProfile|profile|pdb|timeit|code|doctest|...`` runs the
        script, module or code it is given: that argument is judged as the script (a word this
        check cannot read fails closed)."""
        texts = self._module_texts(module, scope)
        if texts is not None and len(texts) > 1:
            return _first(self._runner_problem(t, rest, scope, safe=safe) for t in texts)
        name = texts[0].removesuffix(".__main__") if texts else ""  # -m pip.__main__
        if name in _TREE_RUNNERS:
            return f"runs python -m {name}, which {_TREE_RUNNERS[name]}: code no scan read"
        if name == "pip":
            return self._pip_problem(rest, scope)
        if name in _CONFIG_RUNNERS and not (
            safe and name == "coverage" and not self._coverage_reads_folder(rest, scope)
        ):
            problem = self._config_problem(name, rest, scope)
            if problem is not None or name != "coverage":
                return problem
        if name == "coverage":
            return self._coverage_problem(rest, scope)
        if name == "http.server":
            return self._cgi_problem(rest, scope)
        if name in _PRELOAD_RUNNERS:
            return self._preload_problem(name, rest, scope)
        if name == "unittest" and self._discovers(rest, scope):
            return (
                "runs python -m unittest discovery, which imports every test*.py under the "
                "working folder: code no scan read"
            )
        if name not in _SCRIPT_RUNNERS:
            return None
        takes, modules, codes, each = _SCRIPT_RUNNERS[name]
        if name == "code":
            return "runs python -m code, an interactive console reading code from its input, which no scan read"
        index = 0
        while index < len(rest):
            word = rest[index]
            words = [word] if isinstance(word, str) else self.module.texts(word, scope)
            text = words[0] if words and len(words) == 1 else None
            if text is None:
                shown = ast.unparse(word)[:_SHOWN] if isinstance(word, ast.expr) else ""
                return f"runs python -m {name} with {shown}, computed at run time: the script, module or code it runs may be one no scan read"
            following = rest[index + 1] if index + 1 < len(rest) else ""
            option = text.partition("=")[0]
            if option in _PICKLE_OPTIONS.get(name, ()):
                return f"runs python -m {name} {text}: it unpickles that file (code chosen by whoever wrote it)"
            if option in codes:
                if name != "timeit":
                    return (
                        f"runs python -m {name} {text}: the code given there is Python no scan read"
                    )
                code = text.partition("=")[2] if "=" in text else following
                if isinstance(code, ast.expr) and self.module.texts(code, scope) is None:
                    shown = ast.unparse(code)[:_SHOWN]
                    return f"runs python -m timeit {text} {shown}, code computed at run time: code no scan read"
                index += 1 if "=" in text else 2  # timeit's setup: read as code (SAST104)
                continue
            if option in modules:  # cProfile -m pip install .: the module with its own words
                after = rest[index + 2 :]
                return self._module_problem(following, False, scope) or (
                    self._runner_problem(following, after, scope) if following else None
                )
            if option in takes:
                index += 1 if "=" in text else 2
                continue
            if text == "--":
                index += 1
                continue
            if text.startswith("-") and len(text) > 1:
                index += 1
                continue
            after = rest[index + 1 :]
            if not each:
                return self._target_problem(word, text, name, scope, after)
            problem = (
                None if name == "timeit" else self._target_problem(word, text, name, scope, after)
            )
            if problem is not None:
                return problem
            index += 1
        return None

    def _word_text(self, word: ast.expr | str, scope: _Scope) -> str | None:
        """The one string a command-line word is, else None."""
        texts = [word] if isinstance(word, str) else self.module.texts(word, scope)
        return texts[0] if texts and len(texts) == 1 else None

    def _pip_problem(self, rest: list[ast.expr | str], scope: _Scope) -> str | None:
        """``python -m pip install|wheel|download ...``: it builds or installs code no scan
        read (a build backend, ``setup.py``, a wheel's ``.pth`` files), from a path, an index
        or a requirements file alike; pip's other commands (``list``, ``freeze``, ``show``,
        ``uninstall``) run nothing. A computed word before the command fails closed."""
        index = 0
        while index < len(rest):
            text = self._word_text(rest[index], scope)
            if text is None:
                shown = ast.unparse(w)[:_SHOWN] if isinstance(w := rest[index], ast.expr) else ""
                return f"runs python -m pip with {shown}, computed at run time: it may install or build code no scan read"
            if text.partition("=")[0] == "--python":
                return f"runs python -m pip {text}: pip then runs under another interpreter, a program no scan read"
            if text in _PIP_TAKES:
                index += 2
                continue
            if text.startswith("-"):
                index += 1
                continue
            if text in _PIP_BUILDS:
                return (
                    f"runs python -m pip {text}, which builds or installs packages: their build "
                    f"backend or setup.py runs, and a wheel's .pth files run at the next start, "
                    f"code no scan read"
                )
            return None
        return None

    def _coverage_reads_folder(self, rest: list[ast.expr | str], scope: _Scope) -> bool:
        """A coverage command that reads the working folder's configuration and imports its
        plugins with that folder first on ``sys.path`` even from the ``coverage`` program or
        under ``-I``/``-P`` (sast111, checked with the real coverage 7.17): ``run`` given no
        program runs the one ``[run] command_line`` names, ``run -m`` puts the working folder
        first on ``sys.path``, and the reporting commands (``report``, ``html``, ``xml`` ...)
        insert it there themselves; ``erase``, ``combine``, ``debug`` and ``help`` do not. A
        command computed at run time may be any."""
        index = 0
        while index < len(rest):
            text = self._word_text(rest[index], scope)
            if text is None:
                return True
            if not text.startswith("-"):
                return text not in _COVERAGE_NO_PATH
            index += 2 if text in _COVERAGE_TAKES else 1
        return False

    def _coverage_problem(self, rest: list[ast.expr | str], scope: _Scope) -> str | None:
        """``python -m coverage run [options] SCRIPT|-m MODULE``: the script or module is
        judged as Python's own; coverage's other commands run no program."""
        index, command, module = 0, None, False
        while index < len(rest):
            word = rest[index]
            text = self._word_text(word, scope)
            if text is None:
                shown = ast.unparse(word)[:_SHOWN] if isinstance(word, ast.expr) else ""
                return f"runs python -m coverage with {shown}, computed at run time: the program it runs may be one no scan read"
            if command is None and not text.startswith("-"):
                command = text
                if command != "run":
                    return None
            elif text in ("-m", "--module"):
                module = True
            elif text in _COVERAGE_TAKES:
                index += 1
            elif command is not None and not text.startswith("-"):
                if module:  # coverage run -m pytest: the module with its own words
                    return self._module_problem(text, False, scope) or self._runner_problem(
                        text, rest[index + 1 :], scope
                    )
                return self._script_problem(word, scope)
            index += 1
        return None

    def _config_problem(self, name: str, rest: list[ast.expr | str], scope: _Scope) -> str | None:
        """``mypy``, ``coverage``, ``pylint``, ``flake8``: they import the plugins a
        configuration file of the working folder names, unless their option names no file
        (``--config-file=``, ``--rcfile=/dev/null``, flake8's ``--isolated``) or the machine's
        (``/etc/...``); every time the option is given counts (the last one wins). The options
        that name code themselves (pylint's ``--load-plugins``/``--init-hook``, flake8's
        ``--append-config``) are judged whatever the configuration."""
        option, what = _CONFIG_RUNNERS[name]
        options = {option, "--config"} if name == "flake8" else {option}
        switched = False
        for at, word in enumerate(rest):
            text = self._word_text(word, scope)
            if text is None:
                continue  # a computed word is not a configuration switched off
            key, joined, value_text = text.partition("=")
            following = value_text if joined else (rest[at + 1] if at + 1 < len(rest) else "")
            extra = _CONFIG_EXTRAS.get(name, {}).get(key)
            if extra == "code":
                return f"runs python -m {name} {key}: the Python code given there runs, code no scan read"
            if extra == "modules":
                modules = self._word_text(following, scope)
                for module in (modules or "").split(","):
                    problem = (
                        self._module_problem(module.strip(), False, scope)
                        if modules
                        else (f"runs python -m {name} {key} computed at run time")
                    )
                    if problem is not None:
                        return (
                            f"runs python -m {name} {key}, which imports what it names: {problem}"
                        )
                continue
            if option == "--isolated" and text == option:
                switched = True
                continue
            if extra == "file" or (key in options and (joined or at + 1 < len(rest))):
                problem = self._config_file_problem(name, following, scope, what, options)
                if problem is not None:
                    return problem
                switched |= extra != "file"
        if switched:
            return None
        return (
            f"runs python -m {name}, which {what} (the pull request's), code no scan read; "
            f"give {option}{'' if option == '--isolated' else '=/dev/null'} to read none"
        )

    def _config_file_problem(
        self, name: str, given: ast.expr | str, scope: _Scope, what: str, options: set[str]
    ) -> str | None:
        """A configuration file a tool is given: none (empty, ``/dev/null``, ``os.devnull``)
        or the machine's (under ``/etc/``, ``/usr/``) pass; any other may be the tree's."""
        if self._config_path_ok(given, scope):
            return None
        value = self._word_text(given, scope)
        where = "a file of the tree the pull request writes"
        shown = value
        if isinstance(given, ast.expr) and value is None:
            shown = ast.unparse(given)[:_SHOWN]
            if self._path_tail(given, scope, 0) is None:
                where = "computed at run time"
        return (
            f"runs python -m {name} with the configuration {shown}, {where}: it {what} "
            f"(code no scan read); give {sorted(options)[-1]}=/dev/null or a file under "
            f"{' or '.join(_SYSTEM_CONFIG)}"
        )

    def _config_path_ok(self, given: ast.expr | str, scope: _Scope) -> bool:
        """A configuration path that names no file of the tree: empty, ``/dev/null``,
        ``os.devnull``, or the machine's (under ``/etc/``, ``/usr/``, no ``..``)."""
        value = self._word_text(given, scope)
        if value in _NO_CONFIG or self._names_devnull(given, scope):
            return True
        return value is not None and (
            value.startswith(_SYSTEM_CONFIG) and ".." not in PurePosixPath(value).parts
        )

    def _names_devnull(self, word: ast.expr | str, scope: _Scope) -> bool:
        """``os.devnull`` (under any name the analysis follows)."""
        return isinstance(word, ast.expr) and "os.devnull" in _names(self.resolve(word, scope))

    def _cgi_problem(self, rest: list[ast.expr | str], scope: _Scope) -> str | None:
        """``python -m http.server`` serves files and runs none, except with ``--cgi`` (it
        runs the scripts under cgi-bin/ of the folder it serves); a computed word may be it."""
        for word in rest:
            text = self._word_text(word, scope)
            if text is None or text == "--cgi":
                shown = text or (ast.unparse(word)[:_SHOWN] if isinstance(word, ast.expr) else "")
                return f"runs python -m http.server with {shown}: with --cgi it runs the scripts under the served folder's cgi-bin/, code no scan read"
        return None

    def _preload_problem(self, name: str, rest: list[ast.expr | str], scope: _Scope) -> str | None:
        """dask's worker, scheduler and nanny import what ``--preload`` names in their process:
        a module (judged as a ``-m`` module), a ``.py`` file (as a script), the text of a script
        (a word with a space) or a URL (downloaded and run); ``dask spec`` imports the classes
        its spec names; ``dask`` with another command (``info``, ``config``) runs none."""
        command = _PRELOAD_RUNNERS[name]
        index = 0
        while index < len(rest):
            word = rest[index]
            text = self._word_text(word, scope)
            if text is None and isinstance(word, ast.expr):
                leading = _leading_str(word)
                if command is not None and leading and not leading.startswith("-"):
                    index += 1  # f"tcp://{host}:{port}": a computed argument, not an option
                    continue
                shown = ast.unparse(word)[:_SHOWN]
                return f"runs dask with {shown}, computed at run time: it may be --preload, which imports the code it names, code no scan may have read"
            if text is None:
                return "runs dask with a word computed at run time"
            option, _, value = text.partition("=")
            if command is None and not text.startswith("-"):
                command = text
                if command not in ("worker", "scheduler", "spec", "ssh"):
                    return None
            elif command == "spec":
                break
            elif option in _PRELOADS:
                given = value if "=" in text else (rest[index + 1] if index + 1 < len(rest) else "")
                problem = self._preloaded(given, scope)
                if problem is not None:
                    return f"runs dask {command} {option} {problem}"
                index += 1 if "=" in text else 2
                continue
            index += 1
        if command == "spec":
            return "runs dask spec, which imports the classes its --spec names (any module), code no scan may have read"
        return None

    def _preloaded(self, word: ast.expr | str, scope: _Scope) -> str | None:
        """Why what ``--preload`` names runs code no scan read; None when a scan read it."""
        text = self._word_text(word, scope)
        if text is None:
            shown = ast.unparse(word)[:_SHOWN] if isinstance(word, ast.expr) else ""
            return f"{shown}, computed at run time: code no scan may have read"
        if "://" in text or " " in text or "\n" in text:
            return f"{text[:_SHOWN]}: a URL it downloads or the text of a script, code no scan read"
        if "/" in text or text.endswith(".py"):
            problem = self._script_problem(word, scope)
            return None if problem is None else f"{text}: {problem}"
        problem = self._module_problem(text, False, scope)
        return None if problem is None else f"{text}: {problem}"

    def _discovers(self, rest: list[ast.expr | str], scope: _Scope) -> bool:
        """``python -m unittest`` with no test named, or ``discover``: it imports every
        ``test*.py`` under a folder."""
        index = 0
        while index < len(rest):
            text = self._word_text(rest[index], scope)
            if text is None:
                return False  # judged as the runner's computed argument
            if text == "-k":
                index += 2
                continue
            if not text.startswith("-"):
                return text == "discover"
            index += 1
        return True

    def _module_texts(self, module: ast.expr | str, scope: _Scope) -> list[str] | None:
        """The names a ``-m`` word can be: a literal, a name bound only to literals, or the
        variable of a loop over a literal list (``for m in ("ruff", "bandit")``)."""
        if isinstance(module, str):
            return [module]
        texts = self.module.texts(module, scope)
        if texts is not None or not isinstance(module, ast.Name):
            return texts
        defining = self.module.defining(module.id, scope)
        bound = defining.bindings.get(module.id, []) if defining is not None else []
        loops = [
            n
            for n in ast.walk(self.module.tree)
            if isinstance(n, ast.For)
            and isinstance(n.target, ast.Name)
            and n.target.id == module.id
            and self._scope_of(n) is defining
        ]
        if (
            len(loops) != 1
            or len(bound) != 1
            or not isinstance(loops[0].iter, ast.List | ast.Tuple)
        ):
            return None
        found = [_literal_str(e) for e in loops[0].iter.elts]
        return None if any(t is None for t in found) else [t for t in found if t is not None]

    def _program_problem(self, word: ast.expr | str, scope: _Scope) -> str | None:
        """Python at a path inside the tree (``data/bin/python3``, ``./python3``, the scanned
        file's folder joined with literal parts): a program file the pull request can commit."""
        texts = [word] if isinstance(word, str) else self.module.texts(word, scope)
        for text in texts or []:
            if "/" in text and not text.startswith(("/", "~")):
                return f"starts {text}, an interpreter at a path in the working folder: a program file the pull request can commit, which no scan read"
        if texts is None and isinstance(word, ast.expr):
            tail = self._path_tail(word, scope, 0)
            if tail is not None:
                shown = ast.unparse(word)[:_SHOWN]
                return f"starts {shown}, an interpreter in the project's tree: a program file the pull request can commit, which no scan read"
        return None

    def _target_problem(
        self,
        word: ast.expr | str,
        text: str,
        runner: str,
        scope: _Scope,
        after: list[ast.expr | str] | None = None,
    ) -> str | None:
        """A runner's argument: a path (``/`` or ``.py``) as a script, else a module name,
        itself judged as a runner with the words ``after`` it (``-m runpy pytest data``)."""
        if "/" in text or text.endswith(".py") or runner in _PATH_RUNNERS:
            return self._script_problem(word, scope)
        return self._module_problem(text, False, scope) or self._runner_problem(
            text, after or [], scope
        )

    def _imports_nothing(self, code: ast.expr | str, scope: _Scope) -> bool:
        """Literal ``-c`` code with no import in it (nor a name that imports)."""
        texts = [code] if isinstance(code, str) else self.module.texts(code, scope)
        for text in texts or []:
            try:
                tree = ast.parse(text)
            except SyntaxError:
                return False
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    return False
                name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
                if "import" in name:
                    return False
        return texts is not None

    def _cwd_ok(self, cwd: ast.expr | str, scope: _Scope) -> bool:
        """A working folder whose modules a scan reads: the root (``"."``), a literal folder
        holding a scanned module, or the scanned file's folder (or one above it)."""
        texts = [cwd] if isinstance(cwd, str) else self.module.texts(cwd, scope)
        if texts is None:
            return isinstance(cwd, ast.expr) and self._file_folder(cwd, scope)
        for text in texts:
            path = PurePosixPath(text or ".")
            if path.is_absolute() or ".." in path.parts:
                return False
            dotted = ".".join(path.parts)
            if dotted and not any(
                m == dotted or m.startswith(f"{dotted}.") for m in self.module.project.modules
            ):
                return False
        return True

    def _cwd_script_problem(
        self, script: ast.expr | str, scope: _Scope, cwd: ast.expr | str | None
    ) -> str | None:
        """A script given to Python, found in ``cwd`` when its path is relative."""
        texts = [script] if isinstance(script, str) else self.module.texts(script, scope)
        if cwd is None or texts is None:
            return self._script_problem(script, scope)
        folders = [cwd] if isinstance(cwd, str) else self.module.texts(cwd, scope)
        if folders is None:
            relative = [t for t in texts if not PurePosixPath(t).is_absolute()]
            if relative:
                shown = ast.unparse(cwd)[:_SHOWN] if isinstance(cwd, ast.expr) else cwd
                return f"runs Python on {relative[0]} in the working folder {shown}, computed at run time: a file this check cannot tell the scan read"
            return self._script_problem(script, scope)
        for folder in folders:
            for text in texts:
                problem = self._script_problem(str(PurePosixPath(folder or ".") / text), scope)
                if problem is not None:
                    return problem
        return None

    def _before_program(self, word: ast.expr | str, scope: _Scope) -> bool:
        """A word that may come before the program: a wrapper (``env``, ``nice``), its options
        and ``VAR=value`` settings, or ``os.spawnv``'s mode (``os.P_WAIT``)."""
        texts = [word] if isinstance(word, str) else self.module.texts(word, scope)
        if texts is None:
            names = _names(self.resolve(word, scope)) if isinstance(word, ast.expr) else set()
            return any(n.startswith("os.P_") for n in names)
        return all(
            t.rsplit("/", 1)[-1] in _WRAPPERS or t.startswith("-") or "=" in t or t.isdigit()
            for t in texts
        )

    def _module_problem(
        self,
        module: ast.expr | str,
        isolated: bool,
        scope: _Scope,
        rest: list[ast.expr | str] | None = None,
        depth: int = 0,
    ) -> str | None:
        """A ``-m`` module: a name computed at run time fails closed, with ``-I`` too (any
        installed module, and some run what follows them: ``runpy``, ``pip``, ``pytest``),
        unless it is a parameter every call of whose function, in any module scanned with it,
        passes a literal module judged with the words after it (``rest``)."""
        texts = self._module_texts(module, scope)
        if texts is None:
            shown = ast.unparse(module)[:_SHOWN] if isinstance(module, ast.expr) else ""
            parameter = self._parameter(module, scope) if isinstance(module, ast.expr) else None
            if parameter is not None:
                return self._module_parameter_problem(
                    *parameter, isolated=isolated, rest=rest, shown=shown, depth=depth
                )
            if isolated:
                return (
                    f"runs python -I -m with a module named at run time ({shown}): -I leaves "
                    f"every installed module, and some run whatever follows them (runpy, pip, "
                    f"pytest); name it as a literal"
                )
            return f"runs python -m with a module named at run time ({shown}), which no scan may have read"
        for text in texts:
            top = text.partition(".")[0]
            if top in self.module.project.outside and text not in self.module.project.modules:
                return f"runs python -m {text}, code in the project that no scan reads (outside [sast].paths)"
        return None

    def _module_parameter_problem(
        self,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
        defining: _Scope,
        name: str,
        *,
        isolated: bool,
        rest: list[ast.expr | str] | None,
        shown: str,
        depth: int,
    ) -> str | None:
        """A ``-m`` module that is a parameter (``gates/_tools.py``'s ``run_module(module,
        *args)``): each call, in this module or another scanned with it, must pass a literal
        module (or a parameter of its own caller, followed the same way), judged as a literal
        ``-m`` is with the words after it in the command line."""
        with self._follow_parameter(function, name, depth) as fresh:
            if not fresh:
                return None  # the function calls itself with its own parameter: adds nothing
            given = self._given_anywhere(function, defining, name)
            if given is None:
                return (
                    f"runs python -m {shown}, a parameter of {function.name}(), which is passed "
                    f"around, called with *args/**kwargs, named as a string or not called in the "
                    f"modules scanned: the module may be any installed one, and some run whatever "
                    f"follows them (runpy, pip, pytest)"
                )
            for checker, value, where in given:
                texts = checker._module_texts(value, where)
                if texts is None:
                    problem = checker._module_problem(value, isolated, where, [_UNREAD], depth + 1)
                else:
                    problem = _first(
                        checker._module_problem(t, isolated, where)
                        or self._runner_problem(t, rest or [], defining)
                        for t in texts
                    )
                if problem is not None:
                    return (
                        f"runs python -m {shown}, a parameter of {function.name}() given "
                        f"{ast.unparse(value)[:_SHOWN]} at {checker.module.path}:{value.lineno}: "
                        f"{problem}"
                    )
            return None

    def _given_anywhere(
        self, function: ast.FunctionDef | ast.AsyncFunctionDef, defining: _Scope, name: str
    ) -> list[tuple[_Checker, ast.expr, _Scope]] | None:
        """What every call of ``function`` passes for ``name``, in this module and in every
        module scanned with it that names the function (each checked by its own module's
        checker); None when a use is not a call this check reads, or there is no call."""
        local = self._arguments_for(function, defining, name, elsewhere=True)
        if local is None:
            return None
        found: list[tuple[_Checker, ast.expr, _Scope]] = [(self, v, w) for v, w in local]
        users = self._index().users.get(function.name, set()) - {id(self.module)}
        if users and (defining.parent is None or defining.parent.kind != "module"):
            return None  # a method named by another module: its receiver is not read
        modules = {id(m): m for ms in self.module.project.modules.values() for m in ms}
        for user in users:
            if user not in modules:
                return None
            more = self._other(modules[user])._foreign_arguments(function, defining, name, self)
            if more is None:
                return None
            found += more
        return found or None

    def _foreign_arguments(
        self,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
        defining: _Scope,
        name: str,
        owner: _Checker,
    ) -> list[tuple[_Checker, ast.expr, _Scope]] | None:
        """In this (another) module, what each call of ``owner``'s ``function`` (by its name,
        bare or as an attribute) passes for ``name``; None when the name is used otherwise
        (passed around, imported under another name, called with ``*args``/``**kwargs``)."""
        args = function.args
        positional = [a.arg for a in [*args.posonlyargs, *args.args]]
        position = positional.index(name) if name in positional else None
        by_keyword = name not in [a.arg for a in args.posonlyargs]
        found: list[tuple[_Checker, ast.expr, _Scope]] = []
        calls = self._foreign_calls(function.name, owner)
        if calls is None:
            return None
        for call in calls:
            given = (
                call.args[position]
                if position is not None and _before_any_star(call, position)
                else None
            )
            if given is not None:  # run_module("ruff", *args, **kw): *args and ** come after
                found.append((self, given, self._scope_of(call)))
                continue
            if any(isinstance(a, ast.Starred) for a in call.args) or any(
                k.arg is None for k in call.keywords
            ):
                return None
            keyword = next((k.value for k in call.keywords if k.arg == name), None)
            if keyword is not None and by_keyword:
                found.append((self, keyword, self._scope_of(call)))
            elif position is not None and position < len(call.args):
                found.append((self, call.args[position], self._scope_of(call)))
            else:
                default = _default(function, name)
                if default is None or defining.parent is None:
                    return None
                found.append((owner, default, defining.parent))
        return found

    def _foreign_calls(self, fname: str, owner: _Checker) -> list[ast.Call] | None:
        """In this (another) module, every call of ``owner``'s function ``fname`` (by its
        name, bare or as an attribute); None when the name is used otherwise (passed around,
        imported under another name). ``[]`` where it is not called here."""
        parents = self._tree_parents()
        calls: list[ast.Call] = []
        for node in ast.walk(self.module.tree):
            if isinstance(node, ast.alias):
                if node.asname not in (None, fname) and node.name.rpartition(".")[2] == fname:
                    return None  # from m import run as other: called under a name not read
                continue
            if not (
                (isinstance(node, ast.Name) and node.id == fname)
                or (isinstance(node, ast.Attribute) and node.attr == fname)
            ):
                continue
            if isinstance(node, ast.Attribute) and self._other_module(node.value, owner.module):
                continue  # subprocess.run is not the scanned module's run()
            call = parents.get(node)
            if not isinstance(call, ast.Call) or call.func is not node:
                return None
            calls.append(call)
        return calls

    @contextlib.contextmanager
    def _follow_parameter(
        self, function: ast.FunctionDef | ast.AsyncFunctionDef, name: str, depth: int
    ) -> Iterator[bool]:
        """While a parameter of ``function`` is followed to its calls: True the first time,
        False when it is followed already (the function calls itself with its own parameter:
        that adds nothing) or the chain is deeper than ``_MAX_DEPTH``."""
        key = (id(function), name)
        if key in self._following_params or depth > _MAX_DEPTH:
            yield False
            return
        self._following_params.add(key)
        try:
            yield True
        finally:
            self._following_params.discard(key)

    def _given_line_problem(
        self,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
        defining: _Scope,
        name: str,
        depth: int = 0,
    ) -> str | None:
        """A whole command line that is a parameter of the function running it (``def
        run(command): subprocess.run(command)``): each call's value, in this module or another
        scanned with it, is judged where it is written, as a command line (a parameter of the
        caller followed the same way). A function whose calls cannot be read is not judged."""
        with self._follow_parameter(function, name, depth) as fresh:
            if not fresh:
                return None  # followed already, or too deep
            for checker, value, where in self._given_anywhere(function, defining, name) or []:
                inner = checker._parameter(value, where)
                if inner is not None:
                    problem = checker._given_line_problem(*inner, depth + 1)
                else:
                    problem = _first(
                        checker._child_problem(w, where) for w in checker._words(value, where, 0)
                    )
                if problem is not None:
                    return (
                        f"runs the command line given to {function.name}() at "
                        f"{checker.module.path}:{value.lineno} ({ast.unparse(value)[:_SHOWN]}): "
                        f"{problem}"
                    )
            return None

    def _other_module(self, receiver: ast.expr, module: _Module) -> bool:
        """``receiver`` is known to be only modules other than ``module`` (``subprocess``)."""
        names = _names(self.resolve(receiver, self._scope_of(receiver)))
        return bool(names) and not any(
            n == module.name or n.startswith(f"{module.name}.") for n in names
        )

    def _vararg_line_problem(self, word: ast.expr, scope: _Scope) -> str | None:
        """A command line that is the ``*argv`` of the function running it (``def run(*argv):
        subprocess.run(argv)``, also ``list(argv)``): the words each call in the module passes
        there, read as a command line where they are written."""
        if (
            isinstance(word, ast.Call)
            and len(word.args) == 1
            and _names(self.resolve(word.func, scope)) & {"builtins.list", "builtins.tuple"}
        ):
            word = word.args[0]
        if not isinstance(word, ast.Name):
            return None
        defining = self.module.defining(word.id, scope)
        function = defining.node if defining is not None else None
        if (
            defining is None
            or defining.parent is None
            or not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            or function.args.vararg is None
            or function.args.vararg.arg != word.id
        ):
            return None
        method = defining.parent.kind == "class"
        decorators = {ast.unparse(d) for d in function.decorator_list}
        static = method and bool(decorators & {"staticmethod", "classmethod"})
        implicit = method and "staticmethod" not in decorators  # self or cls comes first
        fixed = len(function.args.posonlyargs) + len(function.args.args) - implicit
        calls: list[tuple[_Checker, ast.Call, int]] = []
        modules = {id(m): m for ms in self.module.project.modules.values() for m in ms}
        users = self._index().users.get(function.name, set()) - {id(self.module)}
        if method and isinstance(defining.parent.node, ast.ClassDef):
            # sast109: a method's calls, in this module and every module scanned with it, on
            # any receiver (it is not read: obj.run_all(...), Runner().run_all(...)); on the
            # class itself (Runner.run_all(obj, ...)) the instance comes first
            cls = defining.parent.node.name
            for checker in [self, *(self._other(modules[u]) for u in users & modules.keys())]:
                calls += [
                    (checker, c, 0 if static else s)
                    for c, s in checker._method_calls(function.name, cls)
                ]
        else:
            calls = [
                (self, c, 0)
                for c in self._calls_of(function.name, defining.parent, method=False) or []
            ]
        if not method and defining.parent.kind == "module":  # sast108: callers in other modules
            for user in users & modules.keys():
                other = self._other(modules[user])
                calls += [(other, c, 0) for c in other._foreign_calls(function.name, self) or []]
        for checker, call, shift in calls:
            where = checker._scope_of(call)
            line = ast.List(elts=call.args[fixed + shift :], ctx=ast.Load())
            for words in checker._words(line, where, 0):
                problem = checker._child_problem(words, where)
                if problem is not None:
                    at = "" if checker is self else f"{checker.module.path}:"
                    return (
                        f"runs the command line given to {function.name}(*{word.id}) at "
                        f"{at or 'line '}{call.lineno}: {problem}"
                    )
        return None

    def _method_calls(self, fname: str, cls: str) -> list[tuple[ast.Call, int]]:
        """In this module, every call of a method ``fname`` of a class named ``cls``, on any
        receiver but a module known to be another (``subprocess.run``), with how many
        arguments come first (1 on the class itself: ``Runner.run_all(obj, ...)``; a name
        that may be an instance or a subclass is read both ways)."""
        calls: list[tuple[ast.Call, int]] = []
        for node in ast.walk(self.module.tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == fname
            ):
                continue
            receiver = node.func.value
            names = _names(self.resolve(receiver, self._scope_of(receiver)))
            if names and not any(self._project_name(n) for n in names):
                continue  # subprocess.run, an installed module's function
            scope = self._scope_of(node)
            named = receiver.id if isinstance(receiver, ast.Name) else None
            named = receiver.attr if isinstance(receiver, ast.Attribute) else named
            if named == cls:
                calls.append((node, 1))
            elif isinstance(receiver, ast.Call) or named == scope.self_name:
                calls.append((node, 0))  # an instance: Runner().f(...), self.f(...)
            else:  # a name that may be an instance or a class (Sub.f(obj, ...)): both readings
                calls += [(node, 0), (node, 1)]
        return calls

    def _project_name(self, name: str) -> bool:
        """``name`` is a scanned module or something in one (``src.model_io.Runner``)."""
        parts = name.split(".")
        return any(
            ".".join(parts[:at]) in self.module.project.modules for at in range(1, len(parts) + 1)
        )

    def _chdirs(self) -> list[tuple[str, ast.expr | str]]:
        """Where any module scanned with this one moves the process's working folder
        (``os.chdir``, ``os.fchdir``, ``contextlib.chdir``, any ``.chdir(...)``), as
        ``(where, folder)``: a literal folder, or a name standing for one computed at run time;
        the scanned file's own folder (or above) is left out."""
        if self._chdir_list is None:
            self._chdir_list = []
            index = self._index()
            modules = {id(m): m for ms in self.module.project.modules.values() for m in ms}
            modules.setdefault(id(self.module), self.module)
            for key, module in modules.items():
                if key not in index.chdirs:
                    checker = self if module is self.module else self._other(module)
                    index.chdirs[key] = checker._own_chdirs()
                self._chdir_list += index.chdirs[key]
        return self._chdir_list

    def _is_chdir(self, func: ast.expr, scope: _Scope) -> bool:
        """``os.chdir`` under any name, or any ``.chdir``/``.fchdir`` attribute."""
        return (isinstance(func, ast.Attribute) and func.attr in _CHDIR_ATTRS) or bool(
            _names(self.resolve(func, scope)) & _CHDIRS
        )

    def _chdir_folder(self, node: ast.Call, scope: _Scope) -> tuple[bool, ast.expr | None]:
        """Whether ``node`` moves the working folder, and to what: a call of a ``chdir``, or
        one made ready to call (sast108): ``functools.partial(os.chdir, FOLDER)``,
        ``operator.methodcaller("chdir", FOLDER)`` (no folder given: computed at the call)."""
        if self._is_chdir(node.func, scope):
            return True, node.args[0] if node.args else None
        names = _names(self.resolve(node.func, scope))
        if (
            names & (_PARTIALS | {"types.MethodType"})
            and node.args
            and self._is_chdir(node.args[0], scope)
        ):  # types.MethodType(os.chdir, FOLDER) binds the folder as a partial does (sast110)
            return True, node.args[1] if len(node.args) > 1 else None
        if (
            "operator.methodcaller" in names
            and _literal_str(node.args[0] if node.args else None) in _CHDIR_ATTRS
        ):
            return True, node.args[1] if len(node.args) > 1 else None
        return False, None

    def _own_chdirs(self) -> list[tuple[str, ast.expr | str]]:
        found: list[tuple[str, ast.expr | str]] = []
        for node in ast.walk(self.module.tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            scope = self._scope_of(node)
            moves, folder = self._chdir_folder(node, scope)
            if not moves:
                continue
            where = f"{ast.unparse(func)[:_SHOWN]}(...) at {self.module.path}:{node.lineno}"
            texts = None if folder is None else self.module.texts(folder, scope)
            if texts is not None:
                found += [(where, t) for t in texts]
            elif folder is None or not self._cwd_ok(folder, scope):
                shown = "a folder computed at run time" if folder is None else ast.unparse(folder)
                found.append((where, ast.Name(id=f"<{shown[:_SHOWN]}>")))
        return found

    def _script_problem(self, script: ast.expr | str, scope: _Scope, depth: int = 0) -> str | None:
        """A script given to Python is fine when it is a scanned file: a literal path, or the
        scanned file's folder (or one above it) joined with literal parts; or a parameter of a
        function called only here, each time with such a file."""
        texts = [script] if isinstance(script, str) else self.module.texts(script, scope)
        if isinstance(script, ast.expr) and self._this_file(script, scope):
            return None  # [sys.executable, __file__]: the scanned file itself
        if texts is None and isinstance(script, ast.expr):
            tail = self._path_tail(script, scope, 0)
            if tail is not None and self._scanned("/".join(tail[1]), folder=True, origin=tail[0]):
                return None
        elif texts is not None and all(self._scanned(t, folder=False) for t in texts):
            return None
        shown = script if isinstance(script, str) else ast.unparse(script)[:_SHOWN]
        parameter = None if isinstance(script, str) else self._parameter(script, scope)
        if parameter is not None:
            return self._parameter_problem(*parameter, shown, depth)
        return (
            f"runs Python on {shown} (a file, module or option computed at run time, or a file "
            f"outside the scan): code this check cannot tell the scan read"
        )

    def _parameter(
        self, word: ast.expr, scope: _Scope
    ) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Scope, str] | None:
        """The function, its scope and the parameter ``word`` is (under ``str()``, ``Path()``
        ...), when the parameter is bound nowhere else in the function."""
        while (
            isinstance(word, ast.Call)
            and len(word.args) == 1
            and not word.keywords
            and _names(self.resolve(word.func, scope)) & _PATH_CALLS
        ):
            word = word.args[0]
        if not isinstance(word, ast.Name):
            return None
        defining = self.module.defining(word.id, scope)
        function = defining.node if defining is not None else None
        if defining is None or not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            return None
        args = function.args
        names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
        if word.id not in names or len(defining.bindings.get(word.id, [])) != 1:
            return None
        return function, defining, word.id

    def _parameter_problem(
        self,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
        defining: _Scope,
        name: str,
        shown: str,
        depth: int,
    ) -> str | None:
        """A parameter used as a script: every call of the function in this module must give it
        a scanned file; a function passed around, named by another scanned module, called with
        ``*args``/``**kwargs`` or not called here fails closed."""
        with self._follow_parameter(function, name, depth) as fresh:
            if not fresh:
                return None  # the function calls itself with its own parameter: adds nothing
            given = self._arguments_for(function, defining, name)
            if given is None:
                return (
                    f"runs Python on {shown}, a parameter of {function.name}(), which is passed "
                    f"around, called with *args/**kwargs, named by another module or not called "
                    f"here: this check cannot tell the script is a scanned file"
                )
            for value, where in given:
                problem = self._script_problem(value, where, depth + 1)
                if problem is not None:
                    return (
                        f"runs Python on {shown}, a parameter of {function.name}() given "
                        f"{ast.unparse(value)[:_SHOWN]} at line {value.lineno}: {problem}"
                    )
            return None

    def _arguments_for(
        self,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
        defining: _Scope,
        name: str,
        *,
        elsewhere: bool = False,
    ) -> list[tuple[ast.expr, _Scope]] | None:
        """What each call of ``function`` in this module passes for its parameter ``name`` (a
        default where none is passed), and where it is evaluated; None when a use of the
        function is not a call this check reads."""
        outer = defining.parent
        if outer is None or (not elsewhere and self._named_elsewhere(function.name)):
            return None  # elsewhere: the caller reads the other modules' calls
        plain = {"staticmethod", "classmethod"}
        if any(not (isinstance(d, ast.Name) and d.id in plain) for d in function.decorator_list):
            return None  # @click.command, @app.route ...: called by a framework, with its input
        if function.name.startswith("__") or function.name in self._index().strings:
            return None  # Cls(x) calls __init__; globals()["f"](x), getattr(m, "f")(x)
        args = function.args
        positional = [a.arg for a in [*args.posonlyargs, *args.args]]
        position = positional.index(name) if name in positional else None
        method = outer.kind == "class"
        static = any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in function.decorator_list
        )
        if method and not static and position is not None:
            position -= 1  # self
        by_keyword = name not in [a.arg for a in args.posonlyargs]
        calls = self._calls_of(function.name, outer, method=method)
        if calls is None and elsewhere:
            return None
        found: list[tuple[ast.expr, _Scope]] = []
        for call in calls or []:
            where = self._scope_of(call)
            if any(isinstance(a, ast.Starred) for a in call.args) or any(
                k.arg is None for k in call.keywords
            ):
                return None
            keyword = next((k.value for k in call.keywords if k.arg == name), None)
            if keyword is not None and by_keyword:
                found.append((keyword, where))
            elif position is not None and position < len(call.args):
                found.append((call.args[position], where))
            else:
                default = _default(function, name)
                if default is not None:
                    found.append((default, outer))
        return found if elsewhere else found or None

    def _calls_of(self, name: str, outer: _Scope, *, method: bool) -> list[ast.Call] | None:
        """Every call of the function ``name`` defined in ``outer`` (a method: on ``self`` or a
        new instance); None when it is used otherwise (passed around, rebound)."""
        parents = self._tree_parents()
        calls: list[ast.Call] = []
        for node in ast.walk(self.module.tree):
            if isinstance(node, ast.Name) and node.id == name:
                if self.module.defining(node.id, self._scope_of(node)) is not outer:
                    continue  # another function's name
                if method or not isinstance(node.ctx, ast.Load):
                    return None  # a method by its bare name in the class body, or rebound
            elif isinstance(node, ast.Attribute) and node.attr == name:
                if not method and self._other_module(node.value, self.module):
                    continue  # subprocess.run is not the module's own run()
                if not method or not self._own_receiver(node.value, outer):
                    return None
            else:
                continue
            call = parents.get(node)
            if not isinstance(call, ast.Call) or call.func is not node:
                return None
            calls.append(call)
        return calls

    def _own_receiver(self, receiver: ast.expr, owner: _Scope) -> bool:
        """``self.f(...)`` in a method of the class, or ``Cls(...).f(...)``: an instance of
        the class, so its first parameter is bound (``Cls.f(a, b)`` shifts every argument)."""
        cls = owner.node.name if isinstance(owner.node, ast.ClassDef) else None
        if isinstance(receiver, ast.Name):
            scope = self._scope_of(receiver)
            return receiver.id == scope.self_name and scope.owner is owner
        return (
            isinstance(receiver, ast.Call)
            and isinstance(receiver.func, ast.Name)
            and receiver.func.id == cls
            and self.module.defining(cls, self._scope_of(receiver)) is owner.parent
        )

    def _named_elsewhere(self, name: str) -> bool:
        """Another module scanned with this one names ``name`` (it may call the function)."""
        users = self._index().users.get(name, set())
        return bool(users - {id(self.module)})

    def _index(self) -> _NamesIndex:
        """The project's names index, with this module in it (code from a string is not)."""
        index = self.module.project.names_index()
        if id(self.module) not in index.modules:
            index.add(self.module)
        return index

    def _this_file(self, node: ast.expr, scope: _Scope) -> bool:
        """``__file__`` (never rebound), under ``str``/``os.fspath``/``Path``/``abspath``/
        ``realpath``/``.resolve()``."""
        while True:
            if isinstance(node, ast.Name):
                return node.id == "__file__" and self._bindings("__file__") == 0
            if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
                if not _names(self.resolve(node.func, scope)) & _PATH_CALLS:
                    return False
                node = node.args[0]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "resolve"
                and not node.args
            ):
                node = node.func.value
            else:
                return False

    def _scanned(self, text: str, *, folder: bool, origin: str = "") -> bool:
        """``text`` names a scanned module: relative to the root, or (``folder``) to the
        scanned file's (``origin``'s) folder or any folder above it."""
        path = PurePosixPath(text)
        if path.is_absolute() or ".." in path.parts or path.suffix != ".py":
            return False
        here = PurePosixPath(origin or self.module.path).parent
        bases = [here, *here.parents] if folder else [PurePosixPath()]
        for base in bases:
            dotted = ".".join((base / path).with_suffix("").parts)
            if any(m.name == dotted for m in self.module.project.modules.get(dotted, [])):
                return True
        return False

    def _path_tail(  # noqa: PLR0911 - one per kind of expression
        self, node: ast.expr, scope: _Scope, depth: int
    ) -> tuple[str, list[str]] | None:
        """The scanned file whose folder (or one above it) a path starts from, and the literal
        parts it adds: ``ROOT / "gates" / "compiled.py"`` -> (this file, ["gates",
        "compiled.py"]); ``REPO`` imported from another scanned module is that module's folder
        (the folder rule across modules); None for anything else."""
        if depth > _MAX_DEPTH:
            return None
        imported = self._imported(node, scope)
        if imported is not None:
            other, attr = imported
            return self._other(other)._path_tail(ast.Name(id=attr), other.top, depth + 1)
        self._follow_imports = False  # the folder must be this file's: the origin is known
        try:
            if self._file_folder(node, scope):
                return self.module.path, []
        finally:
            self._follow_imports = True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = _literal_str(node.right)
            left = self._path_tail(node.left, scope, depth + 1)
            return None if right is None or left is None else (left[0], [*left[1], right])
        if isinstance(node, ast.Call) and node.args and not node.keywords:
            funcs = _names(self.resolve(node.func, scope))
            rest = [_literal_str(a) for a in node.args[1:]]
            if funcs & _PATH_CALLS and len(node.args) == 1:
                return self._path_tail(node.args[0], scope, depth + 1)
            if funcs & _JOINS and all(r is not None for r in rest):
                first = self._path_tail(node.args[0], scope, depth + 1)
                return None if first is None else (first[0], [*first[1], *(r for r in rest if r)])
        if isinstance(node, ast.Name):
            defining = self.module.defining(node.id, scope)
            bound = defining.bindings.get(node.id, []) if defining else []
            if len(bound) == 1 and len(bound) == self._bindings(node.id):
                binding = bound[0]
                if binding.expr is not None and binding.scope is not None and not binding.path:
                    return self._path_tail(binding.expr, binding.scope, depth + 1)
        return None

    # --- PYTHON* variables for a child (SAST107) ----------------------------------------------

    def _judge_env_entry(
        self, node: ast.AST, key: ast.expr | str, value: ast.expr | None, scope: _Scope
    ) -> None:
        """``KEY = value`` set in any mapping (an ``env=`` dict, ``os.environ``): a ``PYTHON*``
        variable that makes a child read code no scan read."""
        keys = [key] if isinstance(key, str) else self._key_texts(key, scope)
        for name in keys or []:
            if (
                name == "PATH"
                and value is not None  # PATH += ...: added after
                and not self._search_path_ok(value, scope)
                and self._bare_python()
            ):
                why = (
                    f"sets PATH to {ast.unparse(value)[:_SHOWN]} where a bare python starts: a "
                    f"python in a folder put before the ones it had (an empty entry is the "
                    f"working folder) runs instead, a program no scan read"
                )
                self.report(node, "SAST107", "PATH", why)
                return
            if name in _COVERAGE_ENV or name == _COVERAGE_CONFIG_DATA:
                if self._judge_coverage_env(node, name, value, scope):
                    return
                continue
            if name.startswith("DASK_"):
                if self._judge_dask_env(node, name, value, scope):
                    return
                continue
            if name in PYTHON_ENV and (value is None or not self._env_value_ok(name, value, scope)):
                shown = "(changed in place)" if value is None else ast.unparse(value)[:_SHOWN]
                why = (
                    f"sets {name} to {shown} for a child: it {PYTHON_ENV[name]}, code no scan read"
                )
                self.report(node, "SAST107", name, why)
                return

    def _judge_coverage_env(
        self, node: ast.AST, name: str, value: ast.expr | None, scope: _Scope
    ) -> bool:
        """SAST107 (sast110): ``COVERAGE_RCFILE``/``COVERAGE_PROCESS_START`` naming a file the
        pull request may write (judged as a tool's configuration path: empty, ``/dev/null``,
        ``os.devnull`` or the machine's pass), ``COVERAGE_PROCESS_CONFIG`` set to anything.
        True when it was a finding."""
        if value is not None and name in _COVERAGE_ENV and self._config_path_ok(value, scope):
            return False
        shown = "(changed in place)" if value is None else ast.unparse(value)[:_SHOWN]
        if name == _COVERAGE_CONFIG_DATA:
            why = (
                f"sets {name} to {shown} for a child: coverage starts in every Python child "
                f"with that configuration (the .pth file it installs) and imports the plugins "
                f"it names, code no scan read"
            )
        else:
            text = None if value is None else self._word_text(value, scope)
            where = (
                "a file of the tree the pull request writes"
                if text is not None
                else "computed at run time"
            )
            why = (
                f"sets {name} to {shown}, {where}: it {_COVERAGE_ENV[name]}, code no scan "
                f"read; give /dev/null or a file under {' or '.join(_SYSTEM_CONFIG)}"
            )
        self.report(node, "SAST107", name, why)
        return True

    def _judge_dask_env(
        self, node: ast.AST, name: str, value: ast.expr | None, scope: _Scope
    ) -> bool:
        """SAST107 (sast111): dask's configuration given to a child through its environment:
        ``DASK_CONFIG``/``DASK_ROOT_CONFIG`` naming a file or folder the pull request may write
        (judged as a tool's configuration path), ``DASK_INTERNAL_INHERIT_CONFIG`` set to
        anything, and ``DASK_A__B__C`` setting one of ``_DASK_CODE_KEYS`` (or a mapping above
        one), its value read as dask reads it (a Python literal, else the text). True when it
        was a finding."""
        shown = "(changed in place)" if value is None else ast.unparse(value)[:_SHOWN]
        if name in _DASK_CONFIG_ENV:
            if value is not None and self._config_path_ok(value, scope):
                return False
            why = (
                f"sets {name} to {shown} for a child: dask reads the YAML files there at import "
                f"(distributed.worker.preload and the other settings that import code), files "
                f"the pull request may write; give a folder under {' or '.join(_SYSTEM_CONFIG)}"
            )
        elif name == _DASK_CONFIG_DATA:
            why = f"sets {name} to {shown} for a child: dask takes its whole configuration from it (preloads that import code too), not read here"
        else:
            key = name[5:].lower().replace("__", ".")
            text = None if value is None else self._word_text(value, scope)
            given: ast.expr | None = None
            if text is not None:
                given = ast.Constant(text)
                try:
                    parsed = ast.parse(text.strip(), mode="eval").body
                    ast.literal_eval(parsed)
                    given = parsed  # dask reads the value as a Python literal when it is one
                except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
                    pass
            problem = self._dask_setting_problem(key, given, scope)
            if problem is None:
                return False
            why = f"sets {name} for a child: {problem}"
        self.report(node, "SAST107", name, why)
        return True

    def _dask_setting_problem(
        self, key: str, value: ast.expr | None, scope: _Scope, depth: int = 0
    ) -> str | None:
        """Why dask's setting ``key`` = ``value`` imports code no scan read (None: it does
        not, or the key names none): ``value`` None is a value computed at run time."""
        key = key.replace("_", "-")
        if key in _DASK_CODE_KEYS:
            return self._dask_items_problem(key, value, scope)
        below = sorted(c for c in _DASK_CODE_KEYS if c.startswith(key + "."))
        if not below or depth > _MAX_DEPTH or isinstance(value, ast.Constant):
            return None  # no such key below it; a value that is no mapping sets none
        if not isinstance(value, ast.Dict):
            shown = "a value computed at run time" if value is None else ast.unparse(value)
            return f"{key} is given {shown[:_SHOWN]}, a mapping not read here: it may set {below[0]}, which imports what it names"
        for sub, item in zip(value.keys, value.values, strict=True):
            name = _literal_str(sub)
            problem = self._dask_setting_problem(
                f"{key}.{name}" if name is not None else key,
                item if name else None,
                scope,
                depth + 1,
            )
            if problem is not None:
                return problem
        return None

    def _dask_items_problem(self, key: str, value: ast.expr | None, scope: _Scope) -> str | None:
        """Each item of a setting in ``_DASK_CODE_KEYS``: a preload as ``--preload``'s, a
        module by name (``pkg.mod.func`` for the security loader), classes fail."""
        kind = _DASK_CODE_KEYS[key]
        if value is None:
            return f"{key} is computed at run time: dask imports what it names, code no scan may have read"
        items = list(value.elts) if isinstance(value, ast.List | ast.Tuple | ast.Set) else [value]
        for item in items:
            if isinstance(item, ast.Constant) and item.value is None:
                continue
            text = self._word_text(item, scope)
            if kind == "classes":
                problem: str | None = (
                    f"names classes dask imports ({ast.unparse(item)[:_SHOWN]}), not read here"
                )
            elif kind == "preload":
                problem = self._preloaded(item, scope)
            elif text is None:
                problem = f"{ast.unparse(item)[:_SHOWN]}, computed at run time"
            else:
                module = text.rpartition(".")[0] if key.endswith("loader") else text
                problem = self._module_problem(module, False, scope) if module else None
            if problem is not None:
                shown = problem.replace("runs python -m", "imports")
                return f"{key} {shown} (dask imports what it names at the start of each worker, scheduler, nanny or client)"
        return None

    def _judge_dask_set(self, node: ast.Call, names: set[str], scope: _Scope) -> None:
        """SAST104 (sast111): ``dask.config.set({"distributed.worker.preload": [...]})`` or
        ``dask.config.set(distributed__worker__preload=[...])``: the workers, schedulers and
        nannies started afterwards (in this process, or children given the configuration)
        import what it names. A mapping not written out fails closed."""
        if not names & _DASK_SETS:
            return
        pairs: list[tuple[str, ast.expr | None]] = []
        hidden: list[str] = []  # mappings not written out: any key may be in them
        for arg in node.args[:1]:
            mapping = self._dict_display(arg, scope)
            if mapping is None:
                hidden.append(ast.unparse(arg))
                continue
            for sub, item in zip(mapping.keys, mapping.values, strict=True):
                text = _literal_str(sub)
                if text is None:
                    hidden.append("**" + ast.unparse(item) if sub is None else ast.unparse(sub))
                else:
                    pairs.append((text, item))
        for keyword in node.keywords:
            if keyword.arg is None:
                hidden.append("**" + ast.unparse(keyword.value))
            else:
                pairs.append((keyword.arg.replace("__", "."), keyword.value))
        problems = [
            f"{shown[:_SHOWN]}, a mapping or key not read here, may set distributed.worker.preload or another setting that imports code, code no scan may have read; write the settings out"
            for shown in hidden
        ]
        problems += [self._dask_setting_problem(key, value, scope) or "" for key, value in pairs]
        problem = next((p for p in problems if p), None)
        if problem is not None:
            self.report(node, "SAST104", "dask.config.set", f"calls dask.config.set: {problem}")

    def _dict_display(self, value: ast.expr, scope: _Scope) -> ast.Dict | None:
        """A dict display, or a name bound once to one in its scope; else None."""
        if isinstance(value, ast.Dict):
            return value
        if isinstance(value, ast.Name):
            defining = self.module.defining(value.id, scope)
            bound = defining.bindings.get(value.id, []) if defining else []
            if len(bound) == 1 and isinstance(bound[0].expr, ast.Dict) and not bound[0].path:
                return bound[0].expr
        return None

    def _search_path_ok(self, value: ast.expr, scope: _Scope) -> bool:
        """A PATH whose every folder before the one it had (``os.environ["PATH"]``,
        ``env.get("PATH")``) is the interpreter's own (``os.path.dirname(sys.executable)``,
        ``sysconfig.get_path("scripts")``) or the system's (``/usr/...``, ``/bin``)."""
        parts: list[ast.expr] = []
        template = self._path_template(value, scope, parts, 0)
        if template is None:
            return False
        for entry in template.split(":"):
            pieces = _MARK.split(entry)
            if len(pieces) == 1:
                if not entry.startswith(_SYSTEM_FOLDERS):
                    return False  # a literal folder, or "" (the working folder)
                continue
            if len(pieces) != 3 or pieces[0] or pieces[2]:
                return False  # f"{ROOT}/bin": a folder named at run time
            part = parts[int(pieces[1])]
            if self._old_path(part, scope):
                return True  # what comes after the old PATH is searched after it
            if not self._own_folder(part, scope):
                return False
        return True

    def _path_template(  # noqa: PLR0911 - one per kind of expression
        self, node: ast.expr, scope: _Scope, parts: list[ast.expr], depth: int
    ) -> str | None:
        """A PATH value as text, each part computed at run time a mark (``\\x00i\\x00``)."""
        text = _literal_str(node)
        if text is not None:
            return text
        if depth > _MAX_DEPTH:
            return None
        if "os.pathsep" in _names(self.resolve(node, scope)):
            return ":"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self._path_template(node.left, scope, parts, depth + 1)
            right = self._path_template(node.right, scope, parts, depth + 1)
            return None if left is None or right is None else left + right
        if isinstance(node, ast.JoinedStr):
            found = ""
            for piece in node.values:
                inner = piece.value if isinstance(piece, ast.FormattedValue) else piece
                if isinstance(piece, ast.FormattedValue) and piece.format_spec is not None:
                    return None
                more = self._path_template(inner, scope, parts, depth + 1)
                if more is None:
                    return None
                found += more
            return found
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            joined = self._path_join(node, scope, parts, depth)
            if joined is not None:
                return joined
        if isinstance(node, ast.Name):
            defining = self.module.defining(node.id, scope)
            bound = defining.bindings.get(node.id, []) if defining else []
            one = bound[0] if len(bound) == 1 and not bound[0].path else None
            if one is not None and one.expr is not None and one.scope is not None:
                return self._path_template(one.expr, one.scope, parts, depth + 1)
        parts.append(node)
        return f"\x00{len(parts) - 1}\x00"

    def _path_join(
        self, node: ast.Call, scope: _Scope, parts: list[ast.expr], depth: int
    ) -> str | None:
        """``os.pathsep.join([...])`` (also of ``filter(None, [...])``) as text."""
        func = node.func
        if not isinstance(func, ast.Attribute) or func.attr != "join" or len(node.args) != 1:
            return None
        if self._path_template(func.value, scope, [], depth + 1) != ":":
            return None
        items = node.args[0]
        if (
            isinstance(items, ast.Call)
            and "builtins.filter" in _names(self.resolve(items.func, scope))
            and len(items.args) == 2
        ):
            items = items.args[1]
        if not isinstance(items, ast.List | ast.Tuple):
            return None
        texts = [self._path_template(e, scope, parts, depth + 1) for e in items.elts]
        return None if None in texts else ":".join(t for t in texts if t is not None)

    def _old_path(self, node: ast.expr, scope: _Scope) -> bool:
        """``os.environ["PATH"]``, ``env.get("PATH", "")``, ``os.getenv("PATH")``."""
        if isinstance(node, ast.Subscript):
            path = self.module.texts(node.slice, scope) == ["PATH"]
            return path and self._environ(node.value, scope, 0)
        if not isinstance(node, ast.Call) or not node.args:
            return False
        func = node.func
        reads = bool(_names(self.resolve(func, scope)) & _ENV_READS)
        reads |= (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and self._environ(func.value, scope, 0)
        )
        return reads and self.module.texts(node.args[0], scope) == ["PATH"]

    def _environ(self, node: ast.expr, scope: _Scope, depth: int) -> bool:
        """``os.environ``, or a name bound only to copies of it (``dict(os.environ)``,
        ``os.environ.copy()``, ``{**os.environ, ...}``): its PATH is what the process had
        unless written, and a write is judged where it is."""
        if "os.environ" in _names(self.resolve(node, scope)):
            return True
        if depth > _MAX_DEPTH or not isinstance(node, ast.Name):
            return False
        defining = self.module.defining(node.id, scope)
        bound = defining.bindings.get(node.id, []) if defining else []
        return bool(bound) and all(
            b.expr is not None
            and b.scope is not None
            and not b.path
            and self._environ_copy(b.expr, b.scope, depth + 1)
            for b in bound
        )

    def _environ_copy(self, node: ast.expr, scope: _Scope, depth: int) -> bool:
        if isinstance(node, ast.Dict):
            pairs = zip(node.keys, node.values, strict=True)
            return any(k is None and self._environ(v, scope, depth) for k, v in pairs)
        if not isinstance(node, ast.Call):
            return False
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "copy" and not node.args:
            return self._environ(func.value, scope, depth)
        return (
            "builtins.dict" in _names(self.resolve(func, scope))
            and bool(node.args)
            and self._environ(node.args[0], scope, depth)
        )

    def _own_folder(self, node: ast.expr, scope: _Scope) -> bool:
        """The running interpreter's own folder: ``os.path.dirname(sys.executable)``,
        ``Path(sys.executable).parent``, ``sysconfig.get_path("scripts")``."""
        if (
            isinstance(node, ast.Call)
            and len(node.args) == 1
            and not node.keywords
            and "builtins.str" in _names(self.resolve(node.func, scope))
        ):
            node = node.args[0]  # str(Path(sys.executable).parent)
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            inner = node.value
            if (
                isinstance(inner, ast.Call)
                and isinstance(inner.func, ast.Attribute)
                and inner.func.attr == "resolve"
                and not inner.args
            ):
                inner = inner.func.value
            return (
                isinstance(inner, ast.Call)
                and len(inner.args) == 1
                and "pathlib.Path" in _names(self.resolve(inner.func, scope))
                and bool(_names(self.resolve(inner.args[0], scope)) & _INTERPRETER_NAMES)
            )
        if not isinstance(node, ast.Call) or len(node.args) != 1 or node.keywords:
            return False
        funcs = _names(self.resolve(node.func, scope))
        if "os.path.dirname" in funcs:
            return bool(_names(self.resolve(node.args[0], scope)) & _INTERPRETER_NAMES)
        return "sysconfig.get_path" in funcs and self.module.texts(node.args[0], scope) == [
            "scripts"
        ]

    def _bare_python(self) -> bool:
        """A module scanned with this one names a bare ``python``/``python3`` (found by PATH)
        in a string that is not a docstring."""
        return self._index().bare_python

    def _env_value_ok(  # noqa: PLR0911 - one per variable
        self, name: str, value: ast.expr, scope: _Scope
    ) -> bool:
        texts = self.module.texts(value, scope)
        if name == "PYTHONPATH":
            return self._import_path_ok(value, scope, 0)
        if name == "PYTHONHOME":
            return bool(_names(self.resolve(value, scope)) & {"sys.prefix", "sys.base_prefix"})
        if texts is None:
            return False
        if name == "PYTHONSAFEPATH":
            return all(texts)
        if name == "PYTHONBREAKPOINT":
            return all(
                t in ("", "0") or t.partition(".")[0] not in self.module.project.outside
                for t in texts
            )
        if name == "PYTHONWARNINGS":
            categories = [f.split(":")[2] for t in texts for f in t.split(",") if f.count(":") >= 2]
            return all(
                "." not in c or c.partition(".")[0] not in self.module.project.outside
                for c in categories
            )
        return False

    def _import_path_ok(self, value: ast.expr, scope: _Scope, depth: int) -> bool:
        """``PYTHONPATH`` set to the scanned file's folder (or one above it), what it was
        already (``os.environ.get("PYTHONPATH", "")``), or those joined with ``os.pathsep``."""
        if depth > _MAX_DEPTH:
            return False
        if (
            self._file_folder(value, scope)
            or self._reads_pythonpath(value, scope)
            or (isinstance(value, ast.Constant) and value.value in ("", None))
        ):  # None: taken out of an env dict before it is used (nox)
            return True
        if isinstance(value, ast.Call) and len(value.args) == 1 and not value.keywords:
            func = value.func
            if isinstance(func, ast.Attribute) and func.attr == "join":
                separator = _literal_str(func.value)
                pathsep = "os.pathsep" in _names(self.resolve(func.value, scope))
                parts = value.args[0]
                if (separator in (":", ";") or pathsep) and isinstance(parts, ast.List | ast.Tuple):
                    return all(self._import_path_ok(p, scope, depth + 1) for p in parts.elts)
        if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
            return all(
                _literal_str(p) in (":", ";")
                or "os.pathsep" in _names(self.resolve(p, scope))
                or self._import_path_ok(p, scope, depth + 1)
                for p in (value.left, value.right)
            )
        if isinstance(value, ast.JoinedStr):
            return all(
                _literal_str(p) in (":", ";")
                or (
                    isinstance(p, ast.FormattedValue)
                    and (
                        "os.pathsep" in _names(self.resolve(p.value, scope))
                        or self._import_path_ok(p.value, scope, depth + 1)
                    )
                )
                for p in value.values
            )
        return False

    def _reads_pythonpath(self, value: ast.expr, scope: _Scope) -> bool:
        if isinstance(value, ast.Subscript):
            table = _names(self.resolve(value.value, scope))
            return "os.environ" in table and self.module.texts(value.slice, scope) == ["PYTHONPATH"]
        if isinstance(value, ast.Call) and value.args:
            funcs = _names(self.resolve(value.func, scope))
            return bool(funcs & _ENV_READS) and self.module.texts(value.args[0], scope) == [
                "PYTHONPATH"
            ]
        return False

    def _judge_env_dict(self, node: ast.AST, scope: _Scope) -> None:
        if not isinstance(node, ast.Dict):
            return
        read = self._read_as_settings(node)
        for key, value in zip(node.keys, node.values, strict=True):
            if key is not None:
                self._judge_env_entry(node, key, value, scope)
                if not read:
                    self._judge_debug_env(key, key, value, scope)

    def _judge_debug_env(
        self, node: ast.AST, key: ast.expr | str, value: ast.expr, scope: _Scope
    ) -> None:
        """SAST106 for Flask's and Werkzeug's variables (``FLASK_DEBUG``...) in any mapping, as
        the ``PYTHON*`` ones are read: ``env={"FLASK_DEBUG": "1"}``, ``{**os.environ, ...}``,
        ``dict(os.environ, FLASK_ENV="development")``, ``os.environ | {...}``."""
        keys = [key] if isinstance(key, str) else self._key_texts(key, scope)
        for name in keys or []:
            if name in _DEBUG_ENV and self._judge_value_of(
                node, name, value, scope, "in a mapping, such as a child's env"
            ):
                return

    def _read_as_settings(self, node: ast.Dict) -> bool:
        """A dict display handed straight to ``x.update(...)``/``.from_mapping(...)`` or
        ``x |= ...``, whose keys ``_judge_setting`` judges already (one finding, not two)."""
        parent = self.parents.get(node)
        if isinstance(parent, ast.keyword):
            parent = self.parents.get(parent)
        if isinstance(parent, ast.AugAssign):
            return isinstance(parent.op, ast.BitOr) and parent.value is node
        return (
            isinstance(parent, ast.Call)
            and isinstance(parent.func, ast.Attribute)
            and parent.func.attr in ("update", "from_mapping")
        )

    def _judge_env_call(self, node: ast.Call, names: set[str], scope: _Scope) -> None:
        """``dict(os.environ, PYTHONPATH=...)``, ``e.update(...)``, ``e.setdefault(k, v)``,
        ``os.putenv(k, v)``, ``e.__setitem__(k, v)``, ``operator.setitem(e, k, v)``; and a
        variable whose name is computed written into ``os.environ`` itself (it may be any)."""
        func = node.func
        method = func.attr if isinstance(func, ast.Attribute) else ""
        args = node.args
        receiver = (
            _names(self.resolve(func.value, scope)) if isinstance(func, ast.Attribute) else set()
        )
        environ = "os.environ" in receiver
        pairs: list[tuple[ast.expr, ast.expr]] = []
        if "operator.setitem" in names and len(args) == 3:
            pairs = [(args[1], args[2])]
            environ = "os.environ" in _names(self.resolve(args[0], scope))
        elif names & _PUTENV and len(args) == 2:
            pairs, environ = [(args[0], args[1])], True
        elif method in ("setdefault", "__setitem__") and len(args) == 2:
            pairs = [(args[0], args[1])]
        elif method in ("update", "__ior__") or "builtins.dict" in names:
            for keyword in node.keywords:
                if keyword.arg is not None:
                    self._judge_env_entry(node, keyword.arg, keyword.value, scope)
                    if method != "update":  # dict(os.environ, FLASK_DEBUG="1"); .update is read
                        self._judge_debug_env(keyword, keyword.arg, keyword.value, scope)
                elif environ and not isinstance(keyword.value, ast.Dict):
                    self._computed_env(node, keyword.value)
            for arg in args if environ and method else []:
                if not isinstance(arg, ast.Dict) and not (
                    isinstance(arg, ast.Call)
                    and "builtins.dict" in _names(self.resolve(arg.func, scope))
                ):
                    self._computed_env(node, arg)
            return
        for key, value in pairs:
            if environ and self._key_texts(key, scope) is None:
                self._computed_env(node, key)
            self._judge_env_entry(node, key, value, scope)

    def _key_texts(self, key: ast.expr, scope: _Scope) -> list[str] | None:
        """The names a key can be: a literal, a name bound to literals, or a loop's name whose
        every binding in the module is a ``for`` over literal names (``for name in ("A", "B")``)."""
        texts = self.module.texts(key, scope)
        if texts is not None or not isinstance(key, ast.Name):
            return texts
        defining = self.module.defining(key.id, scope)
        if defining is None:
            return None
        loops = [
            n
            for n in ast.walk(defining.node or self.module.tree)
            if isinstance(n, ast.For | ast.AsyncFor)
            and isinstance(n.target, ast.Name)
            and n.target.id == key.id
            and self._scope_of(n) is defining
        ]
        if not loops or len(loops) != len(defining.bindings.get(key.id, [])):
            return None
        found: list[str] = []
        for loop in loops:
            names = self._literal_names(loop.iter, defining)
            if names is None or None in names:
                return None
            found += [n for n in names if n is not None]
        return found

    def _computed_env(self, node: ast.AST, what: ast.expr) -> None:
        why = (
            f"sets environment variables named at run time ({ast.unparse(what)[:_SHOWN]}): one "
            f"may be PYTHONPATH or another that makes a child read code no scan read; write the "
            f"names out"
        )
        self.report(node, "SAST107", "os.environ", why)

    def _judge_env_store(self, target: ast.expr, value: ast.expr | None, scope: _Scope) -> None:
        """``e["PYTHONPATH"] = ...`` on any mapping; a computed name in ``os.environ``."""
        if not isinstance(target, ast.Subscript):
            return
        if self._key_texts(target.slice, scope) is None:
            if "os.environ" in _names(self.resolve(target.value, scope)):
                self._computed_env(target, target.slice)
            return
        self._judge_env_entry(target, target.slice, value, scope)

    # --- the path and import machinery patched (SAST102) --------------------------------------

    def _patch(self, node: ast.AST, name: str, how: str) -> None:
        why = (
            f"patches {name} ({how}), the standard library's path or import machinery: a later "
            f"import, or a path the rules here read as a scanned file's, can then reach code no "
            f"scan read"
        )
        self.report(node, "SAST102", name, why)

    def _judge_machinery_call(self, node: ast.Call, names: set[str], scope: _Scope) -> None:
        """``setattr(os.path, ...)``, ``os.path.__setattr__(...)``, ``sys.meta_path.insert``,
        ``sys.path_hooks.append``, ``sys.path_importer_cache.update``, ``vars(os.path).update``."""
        func = node.func
        for name in sorted(names):
            table, _, method = name.rpartition(".")
            if table in _IMPORT_TABLES and method in _TABLE_WRITES:
                self._patch(node, table, f".{method}()")
                return
        if names & _SETATTR and len(node.args) == 3:
            owner = node.args[0]
        elif isinstance(func, ast.Attribute) and func.attr == "__setattr__":
            owner = func.value
        elif isinstance(func, ast.Attribute) and func.attr == "update":
            if not self._namespace_of(func.value, scope):
                return
            owner = self._namespace_owner(func.value)
        else:
            return
        objects = _names(self.resolve(owner, scope)) if self._module_chain(owner, scope) else set()
        patched = sorted(n for n in objects if _machinery(n))
        # A machinery name that is one attribute of its module (``setattr(_io, "open_code",
        # f)``), the attribute named literally.
        named = _literal_str(node.args[-2]) if len(node.args) >= 2 else None
        patched += sorted(f"{o}.{named}" for o in objects if named and _machinery(f"{o}.{named}"))
        if patched:
            self._patch(node, patched[0], "an attribute set at run time")

    def _judge_unbound_write(self, node: ast.Call, names: set[str], scope: _Scope) -> None:
        """``list.insert(sys.meta_path, 0, F())``, ``dict.update(sys.path_importer_cache, m)``,
        ``operator.setitem(sys.path_importer_cache, k, v)``, ``type(sys.meta_path).insert(...)``,
        and the same on ``sys.path``: an import table or ``sys.path`` written through a function
        that takes it as its first argument (red team 14; each passed the gate before)."""
        if not node.args:
            return
        func = node.func
        by_type = (
            isinstance(func, ast.Attribute)
            and func.attr in _TABLE_WRITES
            and (
                (
                    isinstance(func.value, ast.Call)
                    and "builtins.type" in self._func_names(func.value, scope)
                )
                or (isinstance(func.value, ast.Attribute) and func.value.attr == "__class__")
            )
        )
        if not (names & _UNBOUND_WRITES or by_type):
            return
        written = _names(self.resolve(node.args[0], scope))
        tables = sorted(written & _IMPORT_TABLES)
        how = f"{ast.unparse(func)[:_SHOWN]}() with it as the first argument"
        if tables:
            self._patch(node, tables[0], how)
        elif "sys.path" in written:
            self.report(node, "SAST102", "sys.path", _SYS_PATH_WHY)

    def _func_names(self, call: ast.Call, scope: _Scope) -> set[str]:
        return _names(self.resolve(call.func, scope))

    def _judge_machinery_store(
        self, target: ast.expr, node: ast.Assign | ast.AugAssign | ast.AnnAssign, scope: _Scope
    ) -> None:
        """``os.path.join = f``, ``builtins.__import__ = f``, ``sys.meta_path = [...]``,
        ``sys.path_importer_cache[k] = v``, ``vars(os.path)["join"] = f``."""
        if isinstance(target, ast.Attribute):
            # The object written to, reached through import names only (``os.path``,
            # ``importlib.machinery.PathFinder``): ``self.x = ...`` in a subclass of a machinery
            # class, or an instance of one, changes that object alone.
            owner = target.value
            objects = (
                _names(self.resolve(owner, scope)) if self._module_chain(owner, scope) else set()
            )
            if isinstance(owner, ast.Name) and owner.id == "__builtins__":
                objects.add("builtins")
            patched = sorted(
                f"{o}.{target.attr}" for o in objects if _machinery(f"{o}.{target.attr}")
            )
            if patched:
                self._patch(target, patched[0], "assigned")
        elif isinstance(target, ast.Subscript):
            base = target.value
            tables = _names(self.resolve(base, scope))
            if tables & _IMPORT_TABLES:
                self._patch(target, min(tables & _IMPORT_TABLES), "an item set")
            elif self._namespace_of(base, scope):
                owner = self._namespace_owner(base)
                objects = (
                    _names(self.resolve(owner, scope))
                    if self._module_chain(owner, scope)
                    else set()
                )
                patched = sorted(n for n in objects if _machinery(n))
                if patched:
                    self._patch(target, patched[0], "its __dict__ written")

    def _module_chain(self, node: ast.expr, scope: _Scope, depth: int = 0) -> bool:
        """``os.path``, ``importlib.machinery.PathFinder``, ``p`` with ``p = os.path``: names
        whose every binding is an import or such a chain (not ``self``, not an instance)."""
        while isinstance(node, ast.Attribute):
            node = node.value
        if not isinstance(node, ast.Name) or depth > _MAX_DEPTH:
            return False
        defining = self.module.defining(node.id, scope)
        bound = defining.bindings.get(node.id, []) if defining else []
        return bool(bound) and all(
            (b.expr is None and b.value is not None)
            or (
                b.expr is not None
                and b.scope is not None
                and not b.path
                and isinstance(b.expr, ast.Name | ast.Attribute)
                and self._module_chain(b.expr, b.scope, depth + 1)
            )
            for b in bound
        )

    @staticmethod
    def _namespace_owner(namespace: ast.expr) -> ast.expr:
        """``x`` of ``x.__dict__`` or ``vars(x)`` (``_namespace_of``)."""
        if isinstance(namespace, ast.Attribute):
            return namespace.value
        return namespace.args[0] if isinstance(namespace, ast.Call) else namespace

    def nested(self, text: str, mode: str, at: ast.AST, scope: _Scope, where: str) -> None:
        """Check code held in a string literal as if it were written where the string is."""
        try:
            tree = ast.parse(text, mode=mode)
        except (SyntaxError, ValueError):
            return  # Python would refuse it too
        module = self.module
        inner = _Module(
            tree,
            path=module.path,
            name=module.name,
            package=False,
            project=module.project,
            parent=scope,
        )
        checker = _Checker(inner, at=self.at or at, prefix=f"{self.prefix}{where}: ")
        found = checker.check()
        if found:
            self.reported.add(at)
        self.found.extend(found)

    def _judge_arguments(self, node: ast.Call, funcs: _Values, scope: _Scope) -> None:
        """A conditional loader called (directly, through a partial or a methodcaller)."""
        for func in funcs:
            calls: list[tuple[str, list[ast.Call]]] = []
            if isinstance(func, _Ref) and func.name in CONDITIONAL:
                calls.append((func.name, [node]))
            elif isinstance(func, _Partial):
                calls += [
                    (n, [func.call, node])
                    for n in sorted(_names(func.targets) & CONDITIONAL.keys())
                ]
            elif isinstance(func, _MethodCaller) and node.args:
                for name in sorted(
                    _names(self.module.attribute(self.resolve(node.args[0], scope), func.name))
                ):
                    loader = _loader(name)
                    if loader is not None:
                        why = f"calls {name}() through operator.methodcaller ({loader[1]})"
                        self.report(node, loader[0], name, why)
                        return
                    if name in CONDITIONAL:
                        calls.append((name, [func.call]))
            wrapped = isinstance(func, _Partial | _MethodCaller)
            for name, parts in calls:
                reason = self._unsafe_arguments(name, self._arguments(parts, wrapped, scope), scope)
                if reason is not None:
                    self.report(node, CONDITIONAL[name][0], name, f"calls {name}() with {reason}")
                    return

    def _arguments(self, calls: list[ast.Call], wrapped: bool, scope: _Scope) -> _Args:
        args = _Args()
        for index, call in enumerate(calls):
            # partial(f, a)(b), methodcaller("m", a): the wrapper's first argument is not f's.
            for arg in call.args[1:] if wrapped and index == 0 else call.args:
                if isinstance(arg, ast.Starred):
                    args.starred = True
                elif not args.starred:
                    args.positional.append(arg)
            for keyword in call.keywords:
                if keyword.arg is not None:
                    args.keywords[keyword.arg] = keyword.value
                elif not self._expand_keywords(keyword.value, args, scope):
                    args.unknown_keywords = True
        return args

    def _expand_keywords(self, mapping: ast.expr, args: _Args, scope: _Scope) -> bool:
        """The keywords a ``**mapping`` passes, when ``_mapping_keys`` can read them all."""
        keys = self._mapping_keys(mapping, scope)
        if keys is None:
            return False
        for key, (value, where) in keys.items():
            args.keywords[key] = value
            args.scopes[key] = where
        return True

    def _mapping_keys(self, node: ast.expr, scope: _Scope, depth: int = 0) -> _Keys | None:  # noqa: PLR0911 - one per kind
        """Every key a ``**mapping`` can pass, with its value and the scope that value is in.

        Read: a dict display (``{"k": v, **inner}``; a key may be a name bound only to string
        literals), ``dict(k=v)``/``dict(inner, k=v)``/``dict([("k", v)])``, ``a | b``, a
        conditional or ``or`` of those, and a name bound only to them whose every later write
        is read too (``d["k"] = v``, ``d.update(...)``, ``d.setdefault("k", v)``). None when a
        key cannot be read: computed, a comprehension, a parameter, an attribute, a call's
        result, a dict handed to code that may add to it, or one key given two values.
        """
        if depth > _MAX_DEPTH:
            return None
        if isinstance(node, ast.Dict):
            found: _Keys = {}
            for key, value in zip(node.keys, node.values, strict=True):
                inner = (
                    self._mapping_keys(value, scope, depth + 1)
                    if key is None
                    else self._literal_keys(key, value, scope)
                )
                if inner is None or not _merge(found, inner):
                    return None
            return found
        parts = _mapping_operands(node)
        if parts is None:
            if isinstance(node, ast.Call):
                return self._dict_call_keys(node, scope, depth)
            if isinstance(node, ast.Name):
                return self._name_keys(node, scope, depth)
            return None
        merged: _Keys = {}
        for part in parts:
            inner = self._mapping_keys(part, scope, depth + 1)
            if inner is None or not _merge(merged, inner):
                return None
        return merged

    def _literal_keys(self, key: ast.expr, value: ast.expr, scope: _Scope) -> _Keys | None:
        texts = self.module.texts(key, scope)
        return None if texts is None else dict.fromkeys(texts, (value, scope))

    def _dict_call_keys(self, node: ast.Call, scope: _Scope, depth: int) -> _Keys | None:
        """``dict(k=v)``, ``dict(mapping, k=v)``, ``dict([("k", v), ...])``."""
        if "builtins.dict" not in _names(self.resolve(node.func, scope)) or len(node.args) > 1:
            return None
        found: _Keys = {}
        for arg in node.args:
            if isinstance(arg, ast.List | ast.Tuple):
                for pair in arg.elts:
                    if not (isinstance(pair, ast.Tuple | ast.List) and len(pair.elts) == 2):
                        return None
                    inner = self._literal_keys(pair.elts[0], pair.elts[1], scope)
                    if inner is None or not _merge(found, inner):
                        return None
                continue
            inner = self._mapping_keys(arg, scope, depth + 1)
            if inner is None or not _merge(found, inner):
                return None
        for keyword in node.keywords:
            inner = (
                self._mapping_keys(keyword.value, scope, depth + 1)
                if keyword.arg is None
                else {keyword.arg: (keyword.value, scope)}
            )
            if inner is None or not _merge(found, inner):
                return None
        return found

    def _name_keys(self, node: ast.Name, scope: _Scope, depth: int) -> _Keys | None:
        """A name bound only to readable mappings, with every key written into it later."""
        defining = self.module.defining(node.id, scope)
        # Only a function's own names: a module's or a class's dict can be changed from another
        # module (``m.OPTIONS["verify"] = False``), and a scope that reaches its names by
        # ``locals()``/``globals()``/``exec`` can change it unseen.
        if defining is None or defining.kind != "function" or defining.node is None:
            return None
        if self._namespace_used(defining.node):
            return None
        found: _Keys = {}
        for binding in defining.bindings[node.id]:
            if binding.expr is None or binding.scope is None or binding.path:
                return None
            inner = self._mapping_keys(binding.expr, binding.scope, depth + 1)
            if inner is None or not _merge(found, inner):
                return None
        for use in ast.walk(defining.node):
            if isinstance(use, ast.Name) and use.id == node.id and isinstance(use.ctx, ast.Load):
                written = self._written_keys(use, depth)
                if written is None or not _merge(found, written):
                    return None
        return found

    def _namespace_used(self, node: ast.AST) -> bool:
        """A call inside ``node`` of something that reaches a scope's names by name."""
        return any(
            isinstance(call, ast.Call)
            and _names(self.resolve(call.func, self._scope_of(call))) & _NAMESPACE_CALLS
            for call in ast.walk(node)
        )

    def _written_keys(self, use: ast.Name, depth: int) -> _Keys | None:  # noqa: PLR0911 - one per use
        """The keys one use of a dict's name adds to it ({} for a read), None when unknown.

        Flow-insensitive: a write anywhere in the scope (a nested function's included) counts,
        before or after the call; any use but the few below may add keys unseen.
        """
        parents = self._tree_parents()
        parent = parents.get(use)
        where = self._scope_of(use)
        if isinstance(parent, ast.keyword) and parent.arg is None:
            return {}  # **d: passed on, not changed
        if isinstance(parent, ast.Dict) and any(
            k is None and v is use for k, v in zip(parent.keys, parent.values, strict=True)
        ):
            return {}  # {**d}: a copy
        if isinstance(parent, ast.Compare | ast.For | ast.comprehension):
            return {}  # "k" in d, for k in d
        if isinstance(parent, ast.Subscript) and parent.value is use:
            statement = parents.get(parent)
            if not isinstance(parent.ctx, ast.Store):
                return {}  # d["k"], del d["k"]
            if isinstance(statement, ast.Assign) and parent in statement.targets:
                return self._literal_keys(parent.slice, statement.value, where)
            return None
        if not isinstance(parent, ast.Attribute) or parent.value is not use:
            return None
        call = parents.get(parent)
        if not isinstance(call, ast.Call) or call.func is not parent:
            return None
        if parent.attr in _DICT_READS:
            return {}
        if parent.attr == "setdefault" and len(call.args) == 2 and not call.keywords:
            return self._literal_keys(call.args[0], call.args[1], where)
        if parent.attr == "update" and len(call.args) <= 1:
            update = ast.Call(
                func=ast.Name("dict", ast.Load()), args=call.args, keywords=call.keywords
            )
            return self._dict_call_keys(update, where, depth + 1)
        return None

    def _tree_parents(self) -> dict[ast.AST, ast.AST]:
        if self._parents_of is None:
            tree = self.module.tree
            self._parents_of = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        return self._parents_of

    def _scope_of(self, node: ast.AST) -> _Scope:
        """The innermost scope a node is evaluated in."""
        parents = self._tree_parents()
        child, current = node, parents.get(node)
        while current is not None:
            inner = self.module.scopes.get(current)
            if inner is not None and self._inside(current, child):
                return inner
            child, current = current, parents.get(current)
        return self.module.top

    def _judge_keywords(self, node: ast.Call, funcs: _Values, scope: _Scope) -> None:
        """SAST106: a keyword bandit reads by name reaching a call where bandit cannot read it.

        bandit judges ``verify=``, ``debug=``, ``autoescape=`` ... only written out at a call
        it names by its imports (``requests.get(url, verify=False)``). Here the call is named by
        everything the binding analysis resolves it to (aliases, ``getattr``, partials), and a
        keyword is hidden when it comes through ``**mapping``, is given to ``functools.partial``,
        or is written out at a call bandit names otherwise (``get = requests.get``). The value
        does not matter: written out, bandit judges it (as written: ``_judge_written_value``).
        A ``**mapping`` this check cannot read is refused where bandit reads keywords of that
        very function.
        """
        wrapped = any(isinstance(f, _Partial | _MethodCaller) for f in funcs)
        if not wrapped and all(
            k.arg is not None and k.arg not in BANDIT_KEYWORDS for k in node.keywords
        ):
            return  # no keyword bandit reads, no **mapping, no wrapper: nothing hidden
        names = _names(funcs)
        written = _dotted(node.func)
        callees = names | {written}
        seen = self._bandit_names(node.func, scope)
        if names & _PARTIALS and node.args:  # partial(f, k=v): bandit reads k= on partial
            target = node.args[0]
            callees = _names(self.resolve(target, scope)) | {_dotted(target)}
            seen = set()
        for func in funcs:
            if isinstance(func, _Partial):
                callees |= _names(func.targets)
            elif isinstance(func, _MethodCaller) and self._judge_methodcaller(node, func, scope):
                return
        callees.discard("")
        how = f"written out under the name {min(seen - {''}, default=ast.unparse(node.func)[:_SHOWN])}"
        how = "given to functools.partial" if names & _PARTIALS else how
        for keyword in node.keywords:
            if keyword.arg is not None:
                if self._hidden_keyword(
                    node, keyword.arg, callees, seen, how, written=True
                ) or self._judge_written_value(node, keyword, callees, scope):
                    return
                continue
            shown = ast.unparse(keyword.value)[:_SHOWN]
            keys = self._mapping_keys(keyword.value, scope)
            if keys is None:
                read = sorted(
                    (key, callee, test)
                    for key, entries in BANDIT_KEYWORDS.items()
                    for patterns, test in entries
                    if patterns != ("*",)
                    for callee in callees
                    if _matches(callee, patterns)
                )
                if read:
                    key, callee, test = read[0]
                    keys_read = ", ".join(sorted({f"{k}=" for k, _, _ in read}))
                    why = (
                        f"passes keyword arguments from **{shown}, which this check cannot read, "
                        f"to {callee}(), where bandit reads {keys_read} only written out "
                        f"({test}); write them out"
                    )
                    self.report(node, "SAST106", callee, why)
                    return
                continue
            for key, (value, where) in sorted(keys.items(), key=lambda item: item[0]):
                # method="GET" at any call: bandit's B502 looks for an SSL/TLS protocol there
                protocol = self._protocol(value, where)
                how = f"through **{shown}"
                if self._hidden_keyword(
                    node, key, callees, set(), how, written=False, any_call=protocol
                ):
                    return

    def _judge_setting(self, node: ast.AST, scope: _Scope) -> None:
        """SAST106 for a setting bandit never reads: ``session.verify = False``, ``setattr(s,
        "verify", False)``, ``kwargs["verify"] = False``, ``app.config.update(DEBUG=True)``,
        ``class App(Flask): debug = True`` (``SETTINGS``). Any object: the name of the setting
        and its insecure value are the finding, wherever the object came from."""
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            parent = self.parents.get(node)
            bare: Collection[str] = ()  # the plain names that are settings here
            if isinstance(parent, ast.ClassDef):
                bare = _ALL_SETTINGS
            elif parent is self.module.tree and self._settings_module():
                bare = ("DEBUG",)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for place, value in _pairs(target, node.value):
                    self._judge_set(place, value, scope, bare=bare)
        elif isinstance(node, ast.AugAssign):
            if isinstance(node.op, ast.BitOr):  # app.config |= {"DEBUG": True}
                for name, (value, where) in (self._mapping_keys(node.value, scope) or {}).items():
                    if self._judge_value_of(node, name, value, where, ast.unparse(node.target)):
                        return
            key = self._setting_key(node.target, scope, bare=())
            if key is not None:
                why = (
                    f"changes {key} in place ({ast.unparse(node)[:_SHOWN]}), which this check "
                    f"cannot judge and {self._unread_by(key)}; assign it a constant"
                )
                self.report(node.target, "SAST106", key, why)
        elif isinstance(node, ast.Call):
            self._judge_setting_call(node, scope)

    def _judge_setting_call(self, node: ast.Call, scope: _Scope) -> None:
        """``setattr(x, "verify", False)``, ``x.__setattr__(...)``, ``x.setdefault("verify",
        False)``, ``x.update(verify=False)`` / ``x.update({"verify": False})``, and Flask's
        ``config.from_mapping`` alike."""
        func = node.func
        names = _names(self.resolve(func, scope))
        method = func.attr if isinstance(func, ast.Attribute) else ""
        args = node.args
        setters = {*_SETATTR, "operator.setitem"}
        if names & setters and len(args) == 3:
            pairs = [(args[1], args[2])]
        elif len(args) == 2 and (
            names & _PUTENV or method in ("__setattr__", "__setitem__", "setdefault")
        ):
            pairs = [(args[0], args[1])]
        elif method in ("from_object", "from_pyfile", "configure"):
            self._judge_config_call(node, method, scope)
            return
        elif method in ("update", "from_mapping"):
            entries = [e for arg in args for e in self._entries(arg, scope)]
            for keyword in node.keywords:
                if keyword.arg is None:
                    entries += self._entries(keyword.value, scope)
                else:
                    entries.append((keyword.arg, keyword.value, scope))
            receiver = func.value if isinstance(func, ast.Attribute) else func
            self._judge_entries(
                node, entries, ast.unparse(func), self._namespace_of(receiver, scope)
            )
            return
        else:
            return
        for name, value in pairs:
            texts = self.module.texts(name, scope)
            attribute = method == "__setattr__" or names & _SETATTR
            if texts is None and attribute:
                self._judge_computed_name(node, name, value, scope)
                continue
            for key in texts or ():
                if self._judge_value_of(node, key, value, scope, ast.unparse(func)):
                    return

    def _judge_computed_name(
        self, node: ast.AST, name: ast.expr, value: ast.expr, scope: _Scope
    ) -> None:
        """``setattr(s, name, False)`` with a computed ``name``: it may be any setting, and a
        literal ``True``/``False``/``0``/``1`` is what switches one off (verify, check_hostname,
        autoescape) or on (debug): fail closed. A name and value taken from a mapping by a loop
        (``for k, v in opts.items(): setattr(s, k, v)``, ``for k in opts: setattr(s, k,
        opts[k])``) are judged pair by pair as far as the mapping can be read (``_entries``);
        a setting among its keys with a value among its values that could switch it, but
        not known to go together, is a finding too. (A mapping key that is computed is not
        judged: ``d[k] = False`` is everywhere; see the module's "Not covered".)"""
        leading = _leading_str(name)
        if not any(setting.startswith(leading) for setting in _ALL_SETTINGS):
            return  # f"hide_{axis}": no setting starts so
        looped = self._loop_entries(name, value, scope)
        if looped is not None:
            entries, paired = looped
            where = f"setattr in a loop over {ast.unparse(entries[1])[:_SHOWN]}"
            known = all(k is not None for k, _, _ in entries[0])
            if paired:
                self._judge_entries(node, entries[0], where, attribute=True)
                if known or node in self.reported:
                    return
            elif self._judge_unplaced(node, name, value, scope, entries[0], where=where) or (
                known and entries[0]
            ):
                return  # a finding, or every name is known and none is a setting
        flags = [c for c in self._constants(value, scope) if type(c) in (bool, int) and c in (0, 1)]
        if flags:
            why = (
                f"sets an attribute named by {ast.unparse(name)[:_SHOWN]} (which this check "
                f"cannot read) to {ast.unparse(value)[:_SHOWN]}: if it is verify, "
                f"check_hostname, verify_mode, autoescape or debug, TLS verification or "
                f"escaping is off or debug is on, and bandit has no test that reads it; "
                f"write the name out"
            )
            self.report(node, "SAST106", "setattr", why)

    def _judge_unplaced(
        self,
        node: ast.AST,
        name: ast.expr,
        value: ast.expr,
        scope: _Scope,
        entries: list[_Entry],
        *,
        where: str,
    ) -> bool:
        """A setting among the names a loop gives ``setattr``, and a value that switches it
        among the values, not known to go together: fail closed. True when it was a finding."""
        keys = {k for k, _, _ in entries if k in _ALL_SETTINGS}
        for key in sorted(keys):
            if self._insecure(key, value, scope) or any(
                v is not None and self._insecure(key, v, w) for _, v, w in entries
            ):
                why = (
                    f"sets attributes named by {ast.unparse(name)[:_SHOWN]} ({where}), "
                    f"among them {key}, to values among which one switches it "
                    f"({self._unread_by(key)}), and this check cannot tell which goes "
                    f"with which; write {key} out"
                )
                self.report(node, "SAST106", key, why)
                return True
        return False

    def _judge_set(
        self, place: ast.expr, value: ast.expr, scope: _Scope, *, bare: Collection[str]
    ) -> None:
        key = self._setting_key(place, scope, bare=bare)
        if key is not None:
            self._judge_value_of(place, key, value, scope, ast.unparse(place))
        elif isinstance(place, ast.Subscript) and "DJANGO_SETTINGS_MODULE" in (
            self.module.texts(place.slice, scope) or []
        ):  # os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.devconf"
            self._judge_settings_source(place, value, scope, ast.unparse(place))
        elif (
            isinstance(place, ast.Subscript)
            and self.module.texts(place.slice, scope) is None
            and self._namespace_of(place.value, scope)
        ):  # s.__dict__[k] = v, vars(s)[k] = v: setattr by another name
            self._judge_computed_name(place, place.slice, value, scope)

    def _judge_config_call(self, node: ast.Call, method: str, scope: _Scope) -> None:
        """Flask's ``config.from_object(...)``/``from_pyfile(...)``, Django's
        ``settings.configure(DEBUG=True)``."""
        args, where = node.args, ast.unparse(node.func)
        if method == "from_object" and len(args) == 1:
            self._judge_settings_source(node, args[0], scope, where)
        elif method == "from_pyfile" and args:
            self._judge_pyfile(node, args[0], scope)
        elif method == "configure" and not args:
            for keyword in node.keywords:
                if keyword.arg == "DEBUG":
                    self._judge_value_of(node, "DEBUG", keyword.value, scope, where)

    def _judge_settings_source(
        self, node: ast.AST, source: ast.expr, scope: _Scope, where: str
    ) -> bool:
        """A settings module named where it is read (``app.config.from_object("conf.dev")``
        or given the module, ``os.environ["DJANGO_SETTINGS_MODULE"] = "conf.dev"``), under
        any name: its module-level ``DEBUG`` is judged as a settings module's is (a class
        given to ``from_object`` is judged at its own body). A module the project holds
        outside the scan is SAST102. True when it was a finding."""
        texts = self.module.texts(source, scope) or []
        names = {t.replace(":", ".") for t in texts} | {
            v.name for v in self.resolve(source, scope) if isinstance(v, _Ref)
        }
        for name in sorted(names):
            if self._unread(name, node):
                return True
            for other in self.module.project.modules.get(name, []):
                if "DEBUG" not in other.top.bindings:
                    continue
                values = self._constants(ast.Name("DEBUG", ast.Load()), other.top, 1, other)
                if any(type(c) in (bool, int) and c == 1 for c in values):
                    why = (
                        f"reads DEBUG = True from {other.path} ({where[:_SHOWN]}), a settings "
                        f"module under another name: debug mode (the debugger runs code sent "
                        f"to it), where bandit's B201 does not read it; set DEBUG = False there"
                    )
                    self.report(node, "SAST106", "DEBUG", why)
                    return True
        return False

    def _judge_pyfile(self, node: ast.Call, source: ast.expr, scope: _Scope) -> None:
        """Flask's ``config.from_pyfile`` runs a file as Python: a ``.py`` module scanned
        together is judged as a settings module; any other file (``settings.cfg``, a computed
        name) is code no scan reads, SAST104."""
        texts = self.module.texts(source, scope)
        modules = [
            t.removesuffix(".py").removeprefix("./").replace("/", ".")
            for t in texts or ()
            if t.endswith(".py")
        ]
        if texts and len(modules) == len(texts):
            found = [m for m in modules if m in self.module.project.modules]
            if len(found) == len(modules):
                for module in modules:
                    if self._judge_settings_source(
                        node, ast.Constant(module), scope, ast.unparse(node.func)
                    ):
                        return
                return
        shown = ast.unparse(source)[:_SHOWN]
        why = (
            f"runs {shown} as Python code (config.from_pyfile executes it), code no scan "
            f"reads; keep settings in a .py module under [sast].paths and read it with "
            f"from_object"
        )
        self.report(node, "SAST104", "from_pyfile", why)

    def _namespace_of(self, node: ast.expr, scope: _Scope) -> bool:
        """An object's attributes as a dict: ``x.__dict__``, ``vars(x)``."""
        if isinstance(node, ast.Attribute):
            return node.attr == "__dict__"
        return (
            isinstance(node, ast.Call)
            and len(node.args) == 1
            and "builtins.vars" in _names(self.resolve(node.func, scope))
        )

    def _judge_entries(
        self, node: ast.AST, entries: list[_Entry], where: str, attribute: bool
    ) -> None:
        """Judge each key a mapping can hold with its value; a computed key given a flag
        (``True``/``False``/``0``/``1``) set as an attribute fails closed, as a computed
        ``setattr`` name does."""
        for key, value, scope in entries:
            if key is not None and value is not None:
                if self._judge_value_of(node, key, value, scope, where):
                    return
            elif key is None and value is not None and attribute:
                flags = [
                    c
                    for c in self._constants(value, scope)
                    if type(c) in (bool, int) and c in (0, 1)
                ]
                if flags:
                    why = (
                        f"sets attributes named by keys this check cannot read ({where[:_SHOWN]}) "
                        f"to {ast.unparse(value)[:_SHOWN]}: if one is verify, check_hostname, "
                        f"verify_mode, autoescape or debug, TLS verification or escaping is off "
                        f"or debug is on, and bandit has no test that reads it; write the name out"
                    )
                    self.report(node, "SAST106", "setattr", why)
                    return

    def _entries(self, node: ast.expr, scope: _Scope, depth: int = 0) -> list[_Entry]:
        """What a mapping can hold, for judging settings (not the keywords of a call: that is
        ``_mapping_keys``, which refuses what it cannot read whole): each key (None when
        computed) with its value (None when unknown) and the value's scope. Read: a dict
        display, ``dict(...)``, a comprehension (over literal names: its keys), ``a | b``, a
        conditional, ``.copy()``, and a name with every binding of it and every key written
        into it in its scope (``d["k"] = v``, ``d.update(...)``, ``d.setdefault("k", v)``),
        in any scope: flow-insensitive. Anything else is one entry of unknown key and value."""
        unknown: list[_Entry] = [(None, None, scope)]
        if isinstance(node, ast.Dict):
            found: list[_Entry] = []
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    found += self._entries(value, scope, depth + 1)
                else:
                    found += self._keyed(key, value, scope)
            return found
        if isinstance(node, ast.DictComp):
            return self._comprehension_entries(node, scope)
        parts = _mapping_operands(node)
        if parts is None:
            if isinstance(node, ast.Call):
                return self._call_entries(node, scope, depth)
            if isinstance(node, ast.Name):
                return self._name_entries(node, scope, depth)
            return unknown
        return [e for part in parts for e in self._entries(part, scope, depth + 1)]

    def _keyed(self, key: ast.expr, value: ast.expr, scope: _Scope) -> list[_Entry]:
        texts = self.module.texts(key, scope)
        return [(t, value, scope) for t in texts] if texts is not None else [(None, value, scope)]

    def _call_entries(self, node: ast.Call, scope: _Scope, depth: int) -> list[_Entry]:
        """``dict(k=v)``, ``dict(mapping)``, ``dict([("k", v)])``, ``mapping.copy()``."""
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "copy" and not node.args:
            return self._entries(func.value, scope, depth + 1)
        if "builtins.dict" not in _names(self.resolve(func, scope)):
            return [(None, None, scope)]
        found: list[_Entry] = []
        for arg in node.args:
            if isinstance(arg, ast.List | ast.Tuple):
                for pair in arg.elts:
                    if isinstance(pair, ast.Tuple | ast.List) and len(pair.elts) == 2:
                        found += self._keyed(pair.elts[0], pair.elts[1], scope)
                    else:
                        found.append((None, None, scope))
            else:
                found += self._entries(arg, scope, depth + 1)
        for keyword in node.keywords:
            if keyword.arg is None:
                found += self._entries(keyword.value, scope, depth + 1)
            else:
                found.append((keyword.arg, keyword.value, scope))
        return found

    def _comprehension_entries(self, node: ast.DictComp, scope: _Scope) -> list[_Entry]:
        """``{k: False for k in ("verify", "trust_env")}``: a key that is the target of a loop
        over literal strings is each of them; any other key is computed."""
        inner = self.module.scopes.get(node, scope)
        keys: list[str | None] = [None]
        generator = node.generators[0]
        if (
            len(node.generators) == 1
            and isinstance(node.key, ast.Name)
            and isinstance(generator.target, ast.Name)
            and generator.target.id == node.key.id
            and isinstance(generator.iter, ast.List | ast.Tuple | ast.Set)
        ):
            each = [self.module.texts(e, scope) for e in generator.iter.elts]
            if all(t is not None for t in each):
                keys = [k for t in each for k in t or ()]
        else:
            texts = self.module.texts(node.key, inner)
            keys = list(texts) if texts is not None else [None]
        return [(k, node.value, inner) for k in keys]

    def _name_entries(self, node: ast.Name, scope: _Scope, depth: int) -> list[_Entry]:
        """Every binding of the name and every key written into it, once per name (no depth
        limit: ``d1 = {**d0}`` ... ``d30 = {**d29}`` is read through; a name met again while
        it is being read adds nothing, and one chain too long to follow is Python's
        RecursionError, SAST100)."""
        defining = self.module.defining(node.id, scope)
        if defining is None:
            return [(None, None, scope)]
        key = (id(defining), node.id)
        if key in self._entries_of:
            return self._entries_of[key]
        if key in self._reading:
            self._cut_entries += 1
            return []  # d = {**d, "k": v}: the cycle adds nothing new
        self._reading.add(key)
        cuts = self._cut_entries
        try:
            found = self._read_name_entries(node, defining, depth)
        finally:
            self._reading.discard(key)
        unique = list({(k, id(v), id(w)): (k, v, w) for k, v, w in found}.values())
        if cuts == self._cut_entries:  # not cut short by a cycle: final
            self._entries_of[key] = unique
        return unique

    def _read_name_entries(self, node: ast.Name, defining: _Scope, depth: int) -> list[_Entry]:
        found: list[_Entry] = []
        for binding in defining.bindings[node.id]:
            if binding.expr is None or binding.scope is None or binding.path:
                found.append((None, None, defining))
            else:
                found += self._entries(binding.expr, binding.scope, depth + 1)
        for use in ast.walk(defining.node or self.module.tree):
            if not (isinstance(use, ast.Name) and use.id == node.id):
                continue
            where = self._scope_of(use)
            if self.module.defining(node.id, where) is not defining:
                continue
            found += self._written_entries(use, where, depth)
        return found

    def _written_entries(self, use: ast.Name, scope: _Scope, depth: int) -> list[_Entry]:
        """The entries one use of a dict's name writes into it: ``d["k"] = v``,
        ``d.update(...)``, ``d.setdefault("k", v)``."""
        parents = self._tree_parents()
        parent = parents.get(use)
        if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store):
            statement = parents.get(parent)
            if isinstance(statement, ast.Assign):
                return self._keyed(parent.slice, statement.value, scope)
            return [(None, None, scope)]
        call = parents.get(parent) if isinstance(parent, ast.Attribute) else None
        if not (
            isinstance(call, ast.Call) and isinstance(parent, ast.Attribute) and call.func is parent
        ):
            return []
        if parent.attr == "setdefault" and len(call.args) == 2:
            return self._keyed(call.args[0], call.args[1], scope)
        if parent.attr == "update":
            update = ast.Call(
                func=ast.Name("dict", ast.Load()), args=call.args, keywords=call.keywords
            )
            return self._call_entries(update, scope, depth + 1)
        return []

    def _loop_entries(
        self, name: ast.expr, value: ast.expr, scope: _Scope
    ) -> tuple[tuple[list[_Entry], ast.expr], bool] | None:
        """The entries of the mapping a loop takes ``name`` (and ``value``) from, the mapping,
        and whether name and value go together (``for k, v in m.items()``, ``m[k]``,
        ``m.get(k)``); None when ``name`` is not a loop variable over a mapping read here."""
        if not isinstance(name, ast.Name):
            return None
        defining = self.module.defining(name.id, scope)
        if defining is None:
            return None
        # Every loop binding the name (flow-insensitive: it is any key of any of them).
        read: list[tuple[list[_Entry], ast.expr | None, bool]] = []
        for loop in ast.walk(defining.node or self.module.tree):
            if isinstance(loop, ast.For | ast.AsyncFor | ast.comprehension):
                one = self._one_loop(loop, name, value, defining)
                if one is not None:
                    read.append(one)
        if not read:
            return None
        entries = [e for r in read for e in r[0]]
        if len(defining.bindings.get(name.id, [])) > len(read):  # k = ... elsewhere too
            entries.append((None, None, defining))
        source = next((r[1] for r in read if r[1] is not None), name)
        paired = len(read) == 1 and read[0][2] and len(defining.bindings[name.id]) == 1
        return (entries, source), paired

    def _one_loop(
        self,
        loop: ast.For | ast.AsyncFor | ast.comprehension,
        name: ast.Name,
        value: ast.expr,
        defining: _Scope,
    ) -> tuple[list[_Entry], ast.expr | None, bool] | None:
        """What one loop binds ``name`` to (entries, the mapping, whether ``value`` goes with
        it); None when the loop does not bind it in ``defining``."""
        target = loop.target
        elts = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
        index = next(
            (i for i, e in enumerate(elts) if isinstance(e, ast.Name) and e.id == name.id),
            None,
        )
        if (
            index is None
            or self.module.defining(name.id, self._scope_of(elts[index])) is not defining
        ):
            return None
        it, where = loop.iter, self._scope_of(loop.iter)
        source = _iterated(it, len(elts), index)
        if source is None:
            return [(None, None, where)], None, False
        mapping: ast.expr = source
        if isinstance(source, ast.List | ast.Tuple) and len(elts) == 2:
            mapping = ast.Call(func=ast.Name("dict", ast.Load()), args=[source], keywords=[])
        names = self._literal_names(mapping, where) if len(elts) == 1 else None
        entries: list[_Entry] = (
            [(n, None, where) for n in names]
            if names is not None
            else self._entries(mapping, where)
        )
        partner = elts[1] if len(elts) == 2 else None
        rebound = isinstance(value, ast.Name) and len(defining.bindings.get(value.id, [])) > 1
        paired = (
            isinstance(partner, ast.Name)
            and isinstance(value, ast.Name)
            and partner.id == value.id
            and not rebound  # value = 0 in the loop: not the mapping's value
        ) or self._lookup_of(value, source, name)
        return entries, source, paired

    def _literal_names(
        self, node: ast.expr, scope: _Scope, depth: int = 0
    ) -> list[str | None] | None:
        """The strings a loop over a literal list/tuple/set (or a name bound only to such)
        takes (None for a computed element); None when it is not one."""
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            found: list[str | None] = []
            for element in node.elts:
                texts = self.module.texts(element, scope)
                found += texts if texts is not None else [None]
            return found
        defining = self.module.defining(node.id, scope) if isinstance(node, ast.Name) else None
        if defining is None or depth > _MAX_DEPTH or not isinstance(node, ast.Name):
            return None
        found = []
        for binding in defining.bindings[node.id]:
            if binding.expr is None or binding.scope is None or binding.path:
                return None
            inner = self._literal_names(binding.expr, binding.scope, depth + 1)
            if inner is None:
                return None
            found += inner
        return found

    @staticmethod
    def _lookup_of(value: ast.expr, mapping: ast.expr, key: ast.Name) -> bool:
        """``mapping[key]`` or ``mapping.get(key)``."""
        if isinstance(value, ast.Subscript):
            base, index = value.value, value.slice
        elif (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr == "get"
            and value.args
        ):
            base, index = value.func.value, value.args[0]
        else:
            return False
        same = ast.dump(base) == ast.dump(mapping)
        return same and isinstance(index, ast.Name) and index.id == key.id

    def _setting_key(self, place: ast.expr, scope: _Scope, *, bare: Collection[str]) -> str | None:
        """The setting a store target names: ``x.verify``, ``x["verify"]``, a class body's
        ``verify`` or a settings module's ``DEBUG`` (a name in ``bare``); None for anything else."""
        keys: list[str] = []
        if isinstance(place, ast.Attribute):
            keys = [place.attr]
        elif isinstance(place, ast.Subscript):
            keys = self.module.texts(place.slice, scope) or []
        elif isinstance(place, ast.Name) and place.id in bare:
            keys = [place.id]
        return next((k for k in keys if k in _ALL_SETTINGS), None)

    def _settings_module(self) -> bool:
        """A module read as settings (``_SETTINGS_NAMES``): named ``*settings*`` at any level
        of its dotted name, or binding ``SECRET_KEY``/``ALLOWED_HOSTS`` at module level."""
        top = self.module.top
        if top.kind != "module":
            return False
        named = any("settings" in part.lower() for part in self.module.name.split("."))
        return named or bool(_SETTINGS_NAMES & top.bindings.keys())

    @staticmethod
    def _test_of(key: str) -> str:
        keyword = SETTINGS[key][0]
        return BANDIT_KEYWORDS[keyword][0][1]

    def _unread_by(self, key: str) -> str:
        if key in UNREAD_SETTINGS:
            return "bandit has no test for it"
        return f"bandit's {self._test_of(key)} does not read it"

    def _judge_value_of(
        self, node: ast.AST, key: str, value: ast.expr, scope: _Scope, where: str
    ) -> bool:
        """Report ``key`` set to an insecure value at ``node``; True when it was."""
        if key == "DJANGO_SETTINGS_MODULE":
            return self._judge_settings_source(node, value, scope, where)
        if key not in _ALL_SETTINGS or not self._insecure(key, value, scope):
            return False
        shown = ast.unparse(value)[:_SHOWN]
        if key in UNREAD_SETTINGS:
            meaning = UNREAD_SETTINGS[key][1]
            why = f"sets {key} to {shown} ({where[:_SHOWN]}): {meaning}; bandit has no test for it"
            self.report(node, "SAST106", key, why)
            return True
        why = (
            f"sets {key} to {shown} ({where[:_SHOWN]}), where bandit's {self._test_of(key)} does "
            f"not read it (bandit reads {SETTINGS[key][0]}= only written out at a call it names)"
        )
        self.report(node, "SAST106", key, why)
        return True

    def _insecure(self, key: str, value: ast.expr, scope: _Scope) -> bool:
        """``value`` can be what bandit flags for the setting ``key``: ``False``/``0`` for
        verify and autoescape, ``True``/``1`` for debug (as a literal, ``not`` one, a name
        bound to one, a branch of a conditional), a protocol bandit's B502 lists."""
        insecure = UNREAD_SETTINGS[key][0] if key in UNREAD_SETTINGS else SETTINGS[key][1]
        if insecure == "tar_filter":
            none = isinstance(value, ast.Constant) and value.value is None  # the default
            return not none and not self._safe_tar_filter(value, scope)
        if insecure in ("protocol", "cert_none"):
            names = _names(self.resolve(value, scope)) | {_dotted(value)}
            if insecure == "protocol":
                return any(n.rpartition(".")[2] in BANDIT_BAD_PROTOCOLS for n in names)
            if any(n.rpartition(".")[2] == "CERT_NONE" for n in names):
                return True
            insecure = "off"  # ssl.CERT_NONE is 0
        if insecure in ("debug_text", "development", "pin_off"):
            texts = [
                c.decode("utf-8", "replace") if isinstance(c, bytes) else c
                for c in self._constants(value, scope)
            ]
            strings = [c for c in texts if isinstance(c, str)]
            if insecure == "debug_text":
                return any(s.lower() not in _FLASK_FALSE for s in strings)
            return (insecure == "development" and "development" in strings) or (
                insecure == "pin_off" and "off" in strings
            )
        return any(
            type(c) in (bool, int) and c == (insecure == "on")
            for c in self._constants(value, scope)
        )

    def _safe_tar_filter(self, value: ast.expr, scope: _Scope) -> bool:
        """``"data"``/``"tar"`` (or a name bound only to them), ``tarfile.data_filter``/
        ``tar_filter`` under any name, also wrapped in ``staticmethod``: nothing else."""
        texts = self.module.texts(value, scope)
        if texts is not None:
            return bool(texts) and set(texts) <= _SAFE_TAR_FILTERS
        if (
            isinstance(value, ast.Call)
            and len(value.args) == 1
            and not value.keywords
            and "builtins.staticmethod" in _names(self.resolve(value.func, scope))
        ):
            value = value.args[0]
        names = _names(self.resolve(value, scope))
        if names:
            return names <= _SAFE_TAR_FILTER_FUNCS
        return self._wraps_safe_filter(value, scope)

    def _wraps_safe_filter(self, value: ast.expr, scope: _Scope) -> bool:
        """A function of this scope whose every ``return`` gives back what
        ``tarfile.data_filter``/``tar_filter`` made (distlib's wrapper, which turns their
        error into another); a function or lambda returning anything else is not safe."""
        if not isinstance(value, ast.Name):
            return False
        defining = self.module.defining(value.id, scope)
        if defining is None or len(defining.bindings[value.id]) != 1:
            return False
        owner = self.module.tree if defining.kind == "module" else defining.node
        body = owner.body if isinstance(owner, ast.Module | ast.FunctionDef) else []
        functions = [
            f for f in _own_nodes(body) if isinstance(f, ast.FunctionDef) and f.name == value.id
        ]
        if len(functions) != 1:
            return False
        inner = self.module.scopes.get(functions[0], scope)
        returns = [r for r in _own_nodes(functions[0].body) if isinstance(r, ast.Return)]
        return bool(returns) and all(
            isinstance(r.value, ast.Call)
            and _names(self.resolve(r.value.func, inner))
            and _names(self.resolve(r.value.func, inner)) <= _SAFE_TAR_FILTER_FUNCS
            for r in returns
        )

    def _judge_extraction(self, node: ast.Call, names: set[str], scope: _Scope) -> None:
        """SAST106 for an archive extraction bandit's B202 does not read, without a filter that
        keeps members inside the folder (Python < 3.14 trusts the archive's paths and links by
        default): ``extractall`` in a module without ``import tarfile``, or under another name
        (``ex = tar.extractall``, ``getattr``), ``TarFile.extract`` (B202 reads only
        extractall) and ``shutil.unpack_archive``. A receiver known to be a zip is left alone
        (``zipfile`` keeps members inside the folder)."""
        method, receiver, extra = self._extract_method(node, scope)
        unpack = "shutil.unpack_archive" in names
        if method is None and not unpack:
            return
        calls = [node, *extra]
        filters = [k.value for c in calls for k in c.keywords if k.arg == "filter"]
        if any(k.arg is None for c in calls for k in c.keywords):
            args = _Args()
            for call in calls:
                for keyword in call.keywords:
                    if keyword.arg is None and self._expand_keywords(keyword.value, args, scope):
                        filters += [args.keywords["filter"]] if "filter" in args.keywords else []
        if filters and all(self._safe_tar_filter(f, scope) for f in filters):
            return
        kind: str | None = None
        if unpack:
            shown = "shutil.unpack_archive"
            formats = [k.value for k in node.keywords if k.arg == "format"] + node.args[2:3]
            if any(self.module.texts(f, scope) == ["zip"] for f in formats):
                return
        else:
            kind = self._archive_kind(receiver, scope) if receiver is not None else None
            if kind == "zip" or (kind is None and method == "extract"):
                return  # a zip, or an .extract() of something not known to be a tar
            if kind is None and isinstance(receiver, ast.Attribute) and receiver.attr == "str":
                return  # pandas' series.str.extractall(pattern): a regular expression
            if method == "extractall" and self._b202_reads(node):
                return  # bandit's B202 judges it
            shown = f"{ast.unparse(receiver)[:_SHOWN] if receiver is not None else '?'}.{method}"
        written = ", ".join(f"filter={ast.unparse(f)[:_SHOWN]}" for f in filters) or "no filter="
        zip_hint = "" if unpack or kind == "tar" else " (a zip: annotate it zipfile.ZipFile)"
        why = (
            f"extracts an archive ({shown}) with {written}, where bandit's B202 does not read it: "
            f"a member can write outside the folder (Python < 3.14 trusts the archive's paths "
            f'and links); pass filter="data"{zip_hint}'
        )
        self.report(node, "SAST106", shown, why)

    def _b202_reads(self, node: ast.Call) -> bool:
        """bandit's B202: a call whose written name contains ``extractall`` in a module that
        holds ``import tarfile`` (an ``import`` statement, ``from tarfile import`` is not one)
        met before the call."""
        if "extractall" not in _dotted(node.func).rpartition(".")[2]:
            return False
        return any(
            isinstance(imp, ast.Import)
            and imp.lineno <= node.lineno
            and any(a.name == "tarfile" for a in imp.names)
            for imp in ast.walk(self.module.tree)
        )

    def _extract_method(
        self, node: ast.Call, scope: _Scope, depth: int = 0
    ) -> tuple[str | None, ast.expr | None, list[ast.Call]]:
        """(``extractall``/``extract``, the archive it is called on, calls of partials that
        add keywords) when ``node`` calls one: ``x.extractall(...)``, ``getattr(x,
        "extractall")(...)``, a name bound to either, ``functools.partial`` of either,
        ``tarfile.TarFile.extractall(x, ...)``."""
        func = node.func
        extra: list[ast.Call] = []
        for _ in range(_MAX_DEPTH):
            if isinstance(func, ast.Name):
                defining = self.module.defining(func.id, scope)
                bindings = defining.bindings[func.id] if defining else []
                if len(bindings) != 1 or bindings[0].expr is None or bindings[0].path:
                    break
                func, scope = bindings[0].expr, bindings[0].scope or scope
            elif (
                isinstance(func, ast.Call)
                and func.args
                and _names(self.resolve(func.func, scope)) & _PARTIALS
            ):
                extra.append(func)
                func = func.args[0]
            else:
                break
        if isinstance(func, ast.Attribute) and func.attr in _EXTRACTS:
            names = _names(self.resolve(func.value, scope))
            if any(n.startswith("tarfile.") and n[8:9].isupper() for n in names):
                # tarfile.TarFile.extractall(tar, ...): the archive is the first argument
                return func.attr, node.args[0] if node.args else func.value, extra
            return func.attr, func.value, extra
        if (
            isinstance(func, ast.Call)
            and len(func.args) >= 2
            and "builtins.getattr" in _names(self.resolve(func.func, scope))
        ):
            texts = self.module.texts(func.args[1], scope) or []
            method = next((t for t in texts if t in _EXTRACTS), None)
            if method is not None:
                return method, func.args[0], extra
        return None, None, extra

    def _archive_kind(self, node: ast.expr, scope: _Scope, depth: int = 0) -> str | None:
        """``"tar"``/``"zip"`` when ``node`` is known to be a tarfile/zipfile archive (made by
        one of their functions or classes, directly, through a name, a ``with`` or a
        parameter's annotation; a zip only when every binding of the name is one); None when
        unknown."""
        if isinstance(node, ast.Call):
            node = node.func
        for name in _names(self.resolve(node, scope)):
            top = name.partition(".")[0]
            if top in ("tarfile", "zipfile"):
                return top[:3]
        if depth > _MAX_DEPTH or not isinstance(node, ast.Name):
            return None
        defining = self.module.defining(node.id, scope)
        if defining is None:
            return None
        sources = [
            (b.expr, b.scope)
            for b in defining.bindings[node.id]
            if b.expr is not None and b.scope is not None and not b.path
        ]
        for sub in ast.walk(defining.node or self.module.tree):
            if isinstance(sub, ast.withitem) and isinstance(sub.optional_vars, ast.Name):
                if sub.optional_vars.id == node.id:
                    sources.append((sub.context_expr, self._scope_of(sub.context_expr)))
            elif isinstance(sub, ast.arg) and sub.arg == node.id and sub.annotation is not None:
                sources.append((sub.annotation, defining.parent or scope))
        # A tar by any source is a tar; a zip only when every source is one.
        kinds = {self._archive_kind(expr, where, depth + 1) for expr, where in sources}
        return "tar" if "tar" in kinds else "zip" if kinds == {"zip"} else None

    def _judge_written_value(
        self, node: ast.Call, keyword: ast.keyword, callees: set[str], scope: _Scope
    ) -> bool:
        """bandit compares a keyword written out at a call it names by how the value is
        written (its B501 ``verify=`` the literal ``False``, its B201 ``debug=`` the literal
        ``True``, its B502 a protocol by its own name): ``verify=INSECURE`` with
        ``INSECURE = False``, ``verify=0``, ``debug=1``, ``ssl_version=OLD`` passed it. (Its
        B701 flags every ``autoescape=`` but ``True``: nothing hides there.)"""
        key, value = keyword.arg, keyword.value
        if key not in ("verify", "debug", "ssl_version", "method"):
            return False
        if not any(_matches(c, p) for c in callees for p, _ in BANDIT_KEYWORDS[key]):
            return False
        if isinstance(value, ast.Attribute | ast.Name):
            read: object = value.attr if isinstance(value, ast.Attribute) else value.id
        else:
            read = value.value if isinstance(value, ast.Constant) else None
        flagged = {"verify": read is False, "debug": read is True}
        if flagged.get(key, read in BANDIT_BAD_PROTOCOLS) or not self._insecure(key, value, scope):
            return False
        test = self._test_of(key)
        why = (
            f"passes {key}={ast.unparse(value)[:_SHOWN]}, which can be what bandit's {test} "
            f"flags, but {test} compares the value as written; write the literal out"
        )
        self.report(node, "SAST106", min(callees), why)
        return True

    def _constants(
        self, node: ast.expr, scope: _Scope, depth: int = 0, module: _Module | None = None
    ) -> list[object]:
        """The constants ``node`` can be, as far as they are known here: a literal, ``not``
        one, either branch of a conditional or an ``and``/``or``, a name bound to those
        (bindings to anything else add nothing), and a module-level name of another module
        scanned together, imported (``from .conf import VERIFY``) or read as an attribute of
        it (``conf.VERIFY``). Names bound to names further than ``_MAX_DEPTH`` deep could be
        anything: every value a setting is judged by (fail closed)."""
        module = module or self.module
        if depth > _MAX_DEPTH:
            return list(_ANY_CONSTANT)
        if isinstance(node, ast.Constant):
            return [node.value]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return [not c for c in self._constants(node.operand, scope, depth + 1, module)]
        parts = (
            [node.body, node.orelse]
            if isinstance(node, ast.IfExp)
            else node.values
            if isinstance(node, ast.BoolOp)
            else []
        )
        found = [c for part in parts for c in self._constants(part, scope, depth + 1, module)]
        if isinstance(node, ast.Attribute):
            for name in _names(module.resolve(node.value, scope)):
                found += self._imported_constants(f"{name}.{node.attr}", depth + 1)
        defining = module.defining(node.id, scope) if isinstance(node, ast.Name) else None
        key = (id(defining), node.id) if isinstance(node, ast.Name) else None
        if key in self._following:
            return found  # x = DEFAULT if x is None else x: the cycle adds nothing
        if defining is not None and isinstance(node, ast.Name) and key is not None:
            self._following.add(key)
            try:
                found += self._name_constants(node, defining, scope, depth, module)
            finally:
                self._following.discard(key)
        return found

    def _name_constants(
        self, node: ast.Name, defining: _Scope, scope: _Scope, depth: int, module: _Module
    ) -> list[object]:
        found: list[object] = []
        for binding in defining.bindings[node.id]:
            if binding.expr is not None and binding.scope is not None and not binding.path:
                found += self._constants(binding.expr, binding.scope, depth + 1, module)
            for value in binding.value or ():  # from .conf import VERIFY
                if isinstance(value, _Ref):
                    found += self._imported_constants(value.name, depth + 1)
        default = _default(defining.node, node.id)  # def fetch(url, verify=False)
        if default is not None:
            found += self._constants(default, defining.parent or scope, depth + 1, module)
        return found

    def _imported_constants(self, name: str, depth: int) -> list[object]:
        """``pkg.conf.VERIFY``: the constants a scanned module ``pkg.conf`` binds it to."""
        owner, _, attr = name.rpartition(".")
        found: list[object] = []
        for other in self.module.project.modules.get(owner, []):
            if attr in other.top.bindings:
                found += self._constants(ast.Name(attr), other.top, depth, other)
        return found

    def _judge_host_key_policy(self, node: ast.Call, funcs: _Values, scope: _Scope) -> None:
        """SAST106 for bandit's B507, which reads paramiko's host key policy only as the first
        positional argument spelled ``AutoAddPolicy``/``WarningPolicy`` (``paramiko.X()``,
        ``X``): given as ``policy=``, through ``*args``/``**mapping``, or a policy under
        another name (``trust = paramiko.AutoAddPolicy()``), bandit sees nothing."""
        called = _names(funcs) | {_dotted(node.func)}
        if not any(n.endswith(".set_missing_host_key_policy") for n in called):
            return
        first = node.args[0] if node.args else None
        if first is None or isinstance(first, ast.Starred):
            given: list[ast.AST] = [k for k in node.keywords if k.arg in (None, "policy")]
            given += [first] if first is not None else []
            if given:
                shown = ast.unparse(given[0])[:_SHOWN]
                why = (
                    f"passes the host key policy as {shown}, where bandit's B507 reads only "
                    "the first positional argument; pass it positionally"
                )
                self.report(node, "SAST106", "set_missing_host_key_policy", why)
            return
        spelled = first.func if isinstance(first, ast.Call) else first
        written = spelled.attr if isinstance(spelled, ast.Attribute) else _dotted(spelled)
        trusting = {
            n
            for n in _names(self.resolve(first, scope)) | _names(self.resolve(spelled, scope))
            if n.startswith("paramiko.") and n.endswith(("AutoAddPolicy", "WarningPolicy"))
        }
        if trusting and written not in ("AutoAddPolicy", "WarningPolicy"):
            why = (
                f"sets the host key policy to {min(trusting)} under the name {written or '?'}, "
                "where bandit's B507 does not read it"
            )
            self.report(node, "SAST106", "set_missing_host_key_policy", why)

    def _protocol(self, value: ast.expr, scope: _Scope) -> bool:
        """An SSL/TLS protocol constant (``ssl.PROTOCOL_SSLv2``, ``SSL.TLSv1_METHOD``), by any
        name the value resolves to: what bandit's B502 compares ``method=``/``ssl_version=`` to."""
        names = _names(self.resolve(value, scope)) | {_dotted(value)}
        return any(re.search(r"SSL|TLS", n.rpartition(".")[2], re.IGNORECASE) for n in names)

    def _judge_methodcaller(self, node: ast.Call, func: _MethodCaller, scope: _Scope) -> bool:
        """``methodcaller("get", url, verify=False)(requests)``: the keywords went to
        ``operator.methodcaller``, the call is of ``requests.get``."""
        if not node.args:
            return False
        target = _names(self.module.attribute(self.resolve(node.args[0], scope), func.name))
        how = f"through operator.methodcaller({func.name!r})"
        return any(
            keyword.arg is not None
            and self._hidden_keyword(
                node,
                keyword.arg,
                target,
                set(),
                how,
                written=False,
                any_call=self._protocol(keyword.value, scope),
            )
            for keyword in func.call.keywords
        )

    def _hidden_keyword(
        self,
        node: ast.Call,
        key: str,
        callees: set[str],
        seen: set[str],
        how: str,
        *,
        written: bool,
        any_call: bool = True,
    ) -> bool:
        """Report ``key=`` reaching one of ``callees`` where bandit does not read it
        (``any_call``: whether the keys bandit reads at any call count, by their value)."""
        for patterns, test in BANDIT_KEYWORDS.get(key, ()):
            if patterns == ("*",):
                hit = sorted(callees)[:1] or ["the call"]
                # bandit reads it at any call it is written out at
                hidden = not written and any_call
            else:
                hit = sorted(c for c in callees if _matches(c, patterns))
                hidden = bool(hit) and not (written and any(_matches(c, patterns) for c in seen))
            if hit and hidden:
                why = (
                    f"passes {key}= to {hit[0]}() {how}, where bandit's {test} does not read it; "
                    f"write {key}= out at the call, by the name {hit[0]} is imported as"
                )
                self.report(node, "SAST106", hit[0], why)
                return True
        return False

    def _unsafe_arguments(self, name: str, args: _Args, scope: _Scope) -> str | None:
        """Why this call of a conditional loader is unsafe, or None when it is safe."""
        _, parameter, position = CONDITIONAL[name]
        value = args.get(parameter, position)
        if value is _UNKNOWN:
            return f"{parameter} possibly set by *args/**kwargs"
        expr = value if isinstance(value, ast.expr) else None
        shown = f"{parameter}={ast.unparse(expr)[:_SHOWN]}" if expr else f"no {parameter}"
        where = args.scopes.get(parameter, scope)
        if parameter == "allow_pickle":
            safe = expr is None or _falsy_literal(expr)
        elif parameter == "weights_only":
            safe = isinstance(expr, ast.Constant) and expr.value is True
        elif parameter == "Loader":
            loaders = self.resolve(expr, where) if expr else _NOTHING
            safe = bool(loaders) and all(
                isinstance(v, _Ref) and v.name in SAFE_YAML_LOADERS for v in loaders
            )
        elif parameter == "trusted":
            safe = expr is None or _literal_strings(expr) is not None or _falsy_literal(expr)
            if expr is not None:
                shown = f"a computed trusted= list ({ast.unparse(expr)[:_SHOWN]}): it trusts what the file asks for"
        elif expr is None:  # ruamel's typ
            safe = True
        else:
            one = _literal_str(expr)
            types = [one] if one is not None else (_literal_strings(expr) or [])
            safe = bool(types) and set(types) <= SAFE_RUAMEL_TYPES
        return None if safe else shown

    def _judge_memory(self, node: ast.Call, names: set[str]) -> None:
        """scikit-learn's ``memory=`` caches fitted steps with joblib and loads them back."""
        sklearn = any(n.startswith("sklearn.") for n in names)
        setter = isinstance(node.func, ast.Attribute) and node.func.attr == "set_params"
        for keyword in node.keywords if sklearn or setter else ():
            value = keyword.value
            if keyword.arg == "memory" and not (
                isinstance(value, ast.Constant) and value.value is None
            ):
                shown = ast.unparse(value)[:_SHOWN]
                why = f"caches fitted steps with joblib.Memory (memory={shown}: a cache hit unpickles)"
                self.report(node, "SAST101", "memory", why)


# --- the modules scanned together -------------------------------------------------------------


@dataclass
class _NamesIndex:
    """What SAST107 asks of every module scanned together (built once per scan)."""

    users: dict[str, set[int]] = field(default_factory=dict)  # name -> ids of modules using it
    strings: set[str] = field(default_factory=set)  # identifiers written as strings (lookups)
    modules: set[int] = field(default_factory=set)
    set_attributes: set[str] = field(default_factory=set)  # m.X = ..., setattr(m, "X", ...)
    computed_setattr: bool = False  # setattr(m, name, ...) with a computed name
    bare_python: bool = False
    # module id -> where it moves the process's working folder (os.chdir ...), once read
    chdirs: dict[int, list[tuple[str, ast.expr | str]]] = field(default_factory=dict)

    def add(self, module: _Module) -> None:
        self.modules.add(id(module))
        self._joined(module)
        for n in ast.walk(module.tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.isidentifier():
                self.strings.add(n.value)
            if isinstance(n, ast.Name):
                self.users.setdefault(n.id, set()).add(id(module))
            elif isinstance(n, ast.Attribute):
                self.users.setdefault(n.attr, set()).add(id(module))
                if not isinstance(n.ctx, ast.Load):
                    self.set_attributes.add(n.attr)
            elif isinstance(n, ast.alias):
                for name in {n.asname, n.name.rpartition(".")[2]} - {None}:
                    self.users.setdefault(str(name), set()).add(id(module))
            elif (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name)
                and n.func.id == "setattr"
                and len(n.args) > 1
            ):
                name = _literal_str(n.args[1])
                if name is None:
                    self.computed_setattr = True
                else:
                    self.set_attributes.add(name)
        self.bare_python = self.bare_python or _names_bare_python(module.tree)

    def _joined(self, module: _Module) -> None:
        """A bare python spelled ``"pyth" + "on3"`` or as an f-string of literals."""
        inner: set[int] = set()  # the parts of a sum, read with the whole
        for n in ast.walk(module.tree):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
                inner.update((id(n.left), id(n.right)))
        for n in ast.walk(module.tree):
            if isinstance(n, ast.BinOp | ast.JoinedStr) and id(n) not in inner:
                text = _literal_str(n)
                self.bare_python |= text is not None and _bare_python_text(text)


class _Project:
    """The modules scanned together: a name imported from one of them is followed into it."""

    def __init__(self, own_packages: Collection[str] = ()) -> None:
        # Every dotted suffix of a module's name: ``sys.path.insert(0, "pipeline")`` makes
        # ``pipeline/_compat.py`` importable as ``_compat`` too.
        self.modules: dict[str, list[_Module]] = {}
        # A package named like a loader's module (a planted ``yaml/``) confines nothing.
        self.own_packages = {
            p for p in own_packages if p and not _carrier(p) and p not in PICKLE_LIKE
        }
        # Top-level names of the project's tree that no scanned module bears (set by ``scan``).
        self.outside: frozenset[str] = frozenset()
        self._active: set[tuple[int, str, bool]] = set()
        self._cache: dict[tuple[int, str, bool], _Values] = {}
        self._cuts = 0
        self._expanding: set[str] = set()  # names being expanded (a cycle stops there)
        self.looking_up: set[tuple[int, str]] = set()  # (class scope, attribute) under way
        self._names_index: _NamesIndex | None = None

    def names_index(self) -> _NamesIndex:
        """Which scanned modules use each name, set attributes, name a bare python (SAST107),
        worked out once for all of them."""
        if self._names_index is None:
            index = _NamesIndex()
            for module in {id(m): m for ms in self.modules.values() for m in ms}.values():
                index.add(module)
            self._names_index = index
        return self._names_index

    def cut(self) -> None:
        """A value left out because it leads back into itself: results meanwhile are not final."""
        self._cuts += 1

    def add(self, module: _Module) -> None:
        parts = module.name.split(".")
        for start in range(len(parts)):
            self.modules.setdefault(".".join(parts[start:]), []).append(module)

    def expand(self, name: str) -> _Values:
        """``pipeline._compat.restore`` -> what ``pipeline/_compat.py`` binds ``restore`` to.

        A name met again while it is being expanded stands for itself: ``pkg/pathlib.py``
        is importable as ``pathlib`` too, and its own ``from pathlib import Path`` (the
        standard library's) would otherwise lead back into it, ``Path.cwd`` chasing
        ``pathlib.Path.cwd.cwd...`` until Python's recursion limit."""
        if name in self._expanding:
            return frozenset({_Ref(name)})
        self._expanding.add(name)
        try:
            parts = name.split(".")
            for cut in range(len(parts) - 1, 0, -1):
                found: set[_Value] = set()
                for module in self.modules.get(".".join(parts[:cut]), []):
                    if parts[cut] in module.top.bindings:
                        values = self.bound(module, module.top, parts[cut])
                        # A package's ``from .registry import registry`` (its submodule not
                        # scanned here): ``pkg.registry`` is bound to a member of itself, and
                        # following that through the package again chased
                        # ``pkg.registry.registry...`` to the recursion limit. Such a member
                        # stands for itself.
                        prefix = ".".join(parts[: cut + 1]) + "."
                        looping = {
                            v for v in values if isinstance(v, _Ref) and v.name.startswith(prefix)
                        }
                        values = values - looping
                        for attr in parts[cut + 1 :]:
                            values = module.attribute(values, attr)
                        found |= values
                        found |= {_Ref(".".join([v.name, *parts[cut + 1 :]])) for v in looping}
                if found:
                    return frozenset(found)
            return frozenset({_Ref(name)})
        finally:
            self._expanding.discard(name)

    def holds_loaders(self, name: str, seen: frozenset[str] = frozenset()) -> bool:
        """True for a scanned module that binds, at module level, a loader or a module holding
        one: a computed getattr on it, or passing it around, can reach that loader."""
        if name in seen:
            return False
        for module in self.modules.get(name, []):
            for binding in module.top.bindings:
                for value in self.bound(module, module.top, binding):
                    if not isinstance(value, _Ref):
                        continue
                    known = value.name
                    if _loader(known) or known in CONDITIONAL or known in IMPORTERS:
                        return True
                    if _carrier(known) or self.holds_loaders(known, seen | {name}):
                        return True
        return False

    def bound(
        self, module: _Module, scope: _Scope, name: str, *, attributes: bool = False
    ) -> _Values:
        """Every value ``name`` (or ``self.name``) is bound to in ``scope``; a cycle adds nothing."""
        key = (id(scope), name, attributes)
        if key in self._cache:
            return self._cache[key]
        if key in self._active:
            self._cuts += 1
            return _NOTHING
        self._active.add(key)
        cuts = self._cuts
        try:
            table = scope.attributes if attributes else scope.bindings
            values = frozenset(v for b in table[name] for v in module.evaluate(b))
        finally:
            self._active.discard(key)
        if cuts == self._cuts:  # not cut short by a cycle: final
            self._cache[key] = values
        return values


def _module_name(file: Path, root: Path) -> tuple[str, bool]:
    """``gates/registry.py`` -> (``gates.registry``, False); ``gates/__init__.py`` -> (``gates``, True)."""
    try:
        parts = list(file.resolve().relative_to(root.resolve()).with_suffix("").parts)
    except ValueError:
        parts = [file.stem]
    package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if package else parts), package


def scan_source(
    source: str, *, path: str, module: str | None = None, own_packages: Collection[str] = ()
) -> list[UnsafeLoad]:
    """Unsafe-load sites in one module's source; SyntaxError propagates to the caller."""
    tree = ast.parse(source, filename=path)
    project = _Project(own_packages)
    name = module if module is not None else Path(path).with_suffix("").as_posix().replace("/", ".")
    analysis = _Module(tree, path=path, name=name, package=False, project=project)
    project.add(analysis)
    return _sorted(_Checker(analysis).check())


def scan(files: Sequence[Path], *, root: Path, allowed: Sequence[str]) -> list[UnsafeLoad]:
    """Scan files together; the ``allowed`` loader modules are exempt; unparsable files are SAST100."""
    exempt = {(root / a).resolve() for a in allowed}
    found: list[UnsafeLoad] = []
    parsed: list[tuple[Path, str, ast.AST]] = []
    for file in files:
        shown = _shown(file, root)
        try:
            parsed.append(
                # The bytes, as Python's import reads them: a coding cookie (utf-7, ...) decodes
                # the file differently from UTF-8, and the code Python runs is what is checked.
                (file, shown, ast.parse(file.read_bytes(), filename=shown))
            )
        except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError) as err:
            line = getattr(err, "lineno", None) or 0
            message = f"cannot parse, so it went unchecked: {err}"
            found.append(UnsafeLoad("SAST100", shown, line, "", message))
    names = {file: _module_name(file, root) for file, _, _ in parsed}
    packages = {name.partition(".")[0] for name, is_package in names.values() if is_package}
    project = _Project(packages)
    project.outside = _outside(root, {name.partition(".")[0] for name, _ in names.values()})
    modules: list[tuple[Path, _Module]] = []
    for file, shown, tree in parsed:
        name, is_package = names[file]
        try:
            module = _Module(tree, path=shown, name=name, package=is_package, project=project)
        except RecursionError:
            found.append(_too_deep(shown))
            continue
        project.add(module)
        modules.append((file, module))
    for file, module in modules:
        if file.resolve() in exempt:
            continue
        try:
            found.extend(_sorted(_Checker(module).check()))
        except RecursionError:
            found.append(_too_deep(module.path))
    order = {_shown(f, root): i for i, f in enumerate(files)}
    return sorted(found, key=lambda u: (order.get(u.path, len(order)), u.line, u.col))


# Python's short options that take no argument; -c and -m end the options, -W and -X take one.
_PYTHON_FLAGS = frozenset("bBdEhiIOPqRsSuvVx?")


def _python_option(word: str) -> tuple[str, str] | None:
    """``("-c" or "-m", the argument attached to the word)`` when a command-line word is
    Python's ``-c``/``-m``, alone or after flags (``-Ic``, ``-Impickle``, ``-cCODE``); else None."""
    if not word.startswith("-") or word.startswith("--"):
        return None
    for index, char in enumerate(word[1:], start=1):
        if char in "cm":
            return f"-{char}", word[index + 1 :]
        if char not in _PYTHON_FLAGS:
            return None
    return None


def _option_argument(
    option: tuple[str, str] | None,
    index: int,
    words: list[ast.expr | str],
    texts: list[list[str] | None],
) -> tuple[ast.expr | str, list[str] | None] | None:
    """The word ``-c``/``-m`` at ``index`` applies to and its literal texts (None: computed)."""
    if option is None:
        return None
    if option[1]:  # -cCODE, -Impickle: the argument is the rest of the word
        return option[1], [option[1]]
    if index + 1 < len(words):
        return words[index + 1], texts[index + 1]
    return None


def _outside(root: Path, scanned: set[str]) -> frozenset[str]:
    """Names ``import`` finds at the project's root (a folder or a module) but no scan reads."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return frozenset()
    found = {
        entry.stem if entry.suffix == ".py" else entry.name
        for entry in entries
        if (entry.is_dir() and entry.name.isidentifier())
        or (entry.suffix == ".py" and entry.stem.isidentifier())
    }
    return frozenset(found - scanned)


def _timeit_code(texts: list[list[str] | None]) -> list[str]:
    """The literal statements and setup code of ``python -m timeit``'s arguments (a computed
    one is SAST107's: it fails closed there)."""
    takes, _, codes, _ = _SCRIPT_RUNNERS["timeit"]
    found: list[str] = []
    index = 0
    while index < len(texts):
        here = texts[index] or []
        text = here[0] if len(here) == 1 else None
        following = texts[index + 1] if index + 1 < len(texts) else None
        if text is None:
            index += 1
        elif text.partition("=")[0] in codes | takes:
            if "=" in text and text.partition("=")[0] in codes:
                found.append(text.partition("=")[2])
            elif "=" not in text and text in codes and following and len(following) == 1:
                found.append(following[0])
            index += 1 if "=" in text else 2
        elif text.startswith("-") and len(text) > 1:
            index += 1
        else:
            found.append(text)
            index += 1
    return found


def _spaced(text: str) -> bool:
    """Text holding a space: ``f"{sys.executable} -c ..."`` is a command string, not a program."""
    return any(c.isspace() for c in text)


def _loop_runner(node: ast.Call) -> bool:
    """``loop.subprocess_exec(protocol, program, *args)``/``loop.subprocess_shell(protocol,
    cmd)``: asyncio's event loop runs the command after the protocol factory (any receiver:
    the loop is rarely a name this check can follow)."""
    return (
        isinstance(node.func, ast.Attribute)
        and node.func.attr in ("subprocess_exec", "subprocess_shell")
        and len(node.args) > 1
    )


def _shell_words(command: str) -> list[str]:
    """A command's words as a POSIX shell splits them, its operators (``;``, ``&&``, ``|``,
    ``(``, a new line, redirections) as words of their own."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:
        return command.split()


def _shell_commands(line: list[ast.expr | str]) -> list[list[ast.expr | str]]:
    """A command line cut at the shell's operators (``cd data && python3 evil.py``)."""
    commands: list[list[ast.expr | str]] = [[]]
    for word in line:
        if isinstance(word, str) and word and all(c in ";&|()<>\n" for c in word):
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def _names_bare_python(tree: ast.AST) -> bool:
    """A string (not a docstring) with a word that is a bare ``python``/``python3``."""
    docstrings = {
        id(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }
    return any(
        isinstance(n, ast.Constant)
        and isinstance(n.value, str)
        and id(n) not in docstrings
        and _bare_python_text(n.value)
        for n in ast.walk(tree)
    )


def _bare_python_text(text: str) -> bool:
    """A word of ``text`` is a bare ``python``/``python3`` (a program PATH finds)."""
    return ("python" in text or "pypy" in text) and any(
        _INTERPRETER.fullmatch(w) for w in _shell_words(text)
    )


def _template_words(
    template: str,
    placeholder: re.Pattern[str],
    values: list[ast.expr],
    named: dict[str, ast.expr],
    node: ast.expr,
) -> list[ast.expr | str]:
    """The words of ``"python3 %s" % path`` or ``"python3 {}".format(path)``: a word that is
    one placeholder is the value given for it; a word gluing a placeholder to text (or one this
    check cannot match to a value) is the whole expression, which no scan can read."""
    given: list[ast.expr] = []

    def mark(match: re.Match[str]) -> str:
        text = match.group()
        if text in ("%%", "{{", "}}"):
            return text[0]
        field = text.strip("{}").partition("!")[0].partition(":")[0]
        if text.startswith("{") and field.isdigit():
            chosen: ast.expr = values[int(field)] if int(field) < len(values) else node
        elif text.startswith("{") and field:
            chosen = named.get(field, node)
        elif text.startswith("%(") or len(given) >= len(values):
            chosen = node
        else:
            chosen = values[len([g for g in given if g is not node])]
        given.append(chosen)
        return f"\x00{len(given) - 1}\x00"

    words: list[ast.expr | str] = []
    for word in _shell_words(placeholder.sub(mark, template)):
        pieces = _MARK.split(word)
        if len(pieces) == 1:
            words.append(word)
        elif len(pieces) == 3 and not pieces[0] and not pieces[2]:
            words.append(given[int(pieces[1])])
        else:
            words.append(node)
    return words


def _first(problems: Iterable[str | None]) -> str | None:
    """The first problem found, else None."""
    return next(filter(None, problems), None)


def _too_deep(shown: str) -> UnsafeLoad:
    return UnsafeLoad("SAST100", shown, 0, "", "nested too deeply to check, so it went unchecked")


def _sorted(found: list[UnsafeLoad]) -> list[UnsafeLoad]:
    return sorted(found, key=lambda u: (u.line, u.col))


def _shown(file: Path, root: Path) -> str:
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return file.as_posix()
