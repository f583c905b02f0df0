"""Everything a request must pass before the model sees it, as RFC 9457 problems.

Order: content type (415), body size (413), UTF-8 and JSON syntax with NaN/Infinity,
out-of-range numbers and duplicate keys refused (400), nesting depth (400), the document's shape
and instance count (400/413), then every instance against the policy's data contract (422):
the keys of each instance, the JSON type of each value, and the contract's own rules
(``pipeline.data.ContractCheck``: nulls, ranges, allowed values, whole numbers).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gates.errors import GatesError

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config import ColumnRule, DataPolicy, ServePolicy
    from pipeline.data import ContractCheck

PROBLEM_TYPE = "https://secure-ml-pipeline.invalid/problems/"
# How many per-instance errors one problem lists; ``error_count`` is always exact.
MAX_ERRORS = 50
_MAX_SAFE_INT = 2**53


@dataclass
class Problem(GatesError):
    """A refused request: status, a stable slug, a one-line detail and per-instance errors."""

    status: int
    slug: str
    title: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    def __post_init__(self) -> None:
        super().__init__(self.detail)
        self.reason = self.reason or self.slug

    def body(self, instance: str) -> dict[str, Any]:
        """The problem document (``application/problem+json``)."""
        document: dict[str, Any] = {
            "type": PROBLEM_TYPE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors:
            document["errors"] = self.errors
            document["error_count"] = self.error_count or len(self.errors)
        return document


def check_content_type(value: str | None) -> None:
    """Only ``application/json`` (charset utf-8 if any) is a prediction request; else 415."""
    media, _, params = (value or "").partition(";")
    charset = params.strip().lower().replace(" ", "")
    if media.strip().lower() != "application/json" or charset not in ("", "charset=utf-8"):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported Media Type",
            f"expected Content-Type application/json (UTF-8), found {value or 'none'!r}",
        )


def too_large(size: int, limit: int) -> Problem:
    """The 413 for a body over ``[serve].max_body_bytes``."""
    return Problem(
        413,
        "body-too-large",
        "Content Too Large",
        f"the body is {size} bytes or more, larger than the {limit} allowed "
        "([serve].max_body_bytes)",
    )


def _bad_json(detail: str) -> Problem:
    return Problem(400, "malformed-json", "Malformed JSON", detail)


def _constant(token: str) -> Any:
    raise _bad_json(f"{token} is not JSON: NaN and Infinity are refused")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _bad_json(f"the number {text[:40]} does not fit a 64-bit float")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:  # int() of a 1 MB digit string costs seconds; refuse first
        raise _bad_json(f"the integer {text[:40]}... has more than 19 digits")
    return int(text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):  # some key came twice: name the first one that did
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _bad_json(f"the key {key[:80]!r} appears twice in one object")
            seen.add(key)
    return document


# A number token can only overflow a float64 or carry more than 19 digits when the body holds a
# run of 20 digits or an exponent of 3 digits or more (``e``, an optional ``+``, 3 digits):
# without one, every integer has at most 19 digits and every number is below 10^19 * 10^99.
# Such a body is parsed by the C scanner's own int and float; any other goes through
# ``_bounded_int`` and ``_finite_float`` token by token (digits or an ``e`` inside a string only
# send a body to that slower, exact path). ``bytes.translate`` writes the body's shape (every
# digit 0, ``E`` as ``e``, ``+`` deleted, anything else a space) in one C pass, so ``e000``
# stands for both exponent forms and one search finds either (deleting can only join runs: it
# adds matches, never hides one); a regex search over the text costs more than the parse itself.
_SHAPE = bytearray(b" " * 256)
_SHAPE[ord("0") : ord("9") + 1] = b"0" * 10
_SHAPE[ord("e")] = _SHAPE[ord("E")] = ord("e")
_NUMBER_SHAPE = bytes(_SHAPE)
_RISKY_NUMBERS = (b"0" * 20, b"e000")


def _risky_numbers(raw: bytes) -> bool:
    """Whether some number in ``raw`` might have over 19 digits or overflow a float64."""
    shape = raw.translate(_NUMBER_SHAPE, b"+")
    # rfind, not ``in``: from the end, the first byte of the pattern is compared first, and
    # ``e`` is rare in a shape full of 0s (three times faster on a 100-row body).
    return any(shape.rfind(risky) >= 0 for risky in _RISKY_NUMBERS)


def parse_body(raw: bytes, policy: ServePolicy) -> Any:
    """Parse a JSON body strictly (400 on anything but plain UTF-8 JSON) and bound its depth."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise _bad_json("the body starts with a byte-order mark; expected plain UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _bad_json(f"the body is not UTF-8 (undecodable byte at offset {err.start})") from None
    numbers: dict[str, Any] = (
        {"parse_float": _finite_float, "parse_int": _bounded_int} if _risky_numbers(raw) else {}
    )
    try:
        document = json.loads(
            text, parse_constant=_constant, object_pairs_hook=_no_duplicates, **numbers
        )
    except RecursionError:
        raise _too_deep(policy.max_json_depth) from None
    except json.JSONDecodeError as err:
        raise _bad_json(
            f"malformed JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    if _depth(document, policy.max_json_depth) > policy.max_json_depth:
        raise _too_deep(policy.max_json_depth)
    return document


def _too_deep(limit: int) -> Problem:
    return Problem(
        400,
        "too-deep",
        "JSON Nested Too Deeply",
        f"the document is nested more than {limit} levels deep ([serve].max_json_depth)",
    )


# What ``json.loads`` makes of a JSON scalar.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _depth(node: Any, limit: int) -> int:
    """Nesting depth of ``node`` (a scalar 0, ``[]`` 1, ``[[]]`` 2), counting no further than
    ``limit + 1``: level by level over the containers only, a container of scalars costing one
    ``set(map(type, ...))`` rather than a call per value."""
    level = 0
    containers = [node] if isinstance(node, dict | list) else []
    while containers and level <= limit:
        level += 1
        inner: list[Any] = []
        for container in containers:
            children = container.values() if isinstance(container, dict) else container
            if not _SCALARS.issuperset(map(type, children)):
                inner.extend(c for c in children if isinstance(c, dict | list))
        containers = inner
    return level


# The bytes of ``{"instances":[]}``, the shortest V1 request around its instances.
_ENVELOPE_BYTES = len(b'{"instances":[]}')


def instance_bytes_at_least(contract: DataPolicy) -> int:
    """The fewest bytes a valid instance takes in a body: an object holding every contract
    column (``FeatureCheck`` refuses one without), each name in its shortest JSON spelling
    (UTF-8, escaping only what must be), a colon, a one-byte value, the commas between them
    and the comma before the next instance."""
    names = sum(len(json.dumps(name, ensure_ascii=False).encode()) + 2 for name in contract.columns)
    return 2 + names + max(len(contract.columns) - 1, 0) + 1


def rows_at_most(size: int, per_instance: int) -> int:
    """The most valid instances a body of ``size`` bytes can hold (``per_instance`` from
    ``instance_bytes_at_least``); a body of more is refused by the contract check anyway."""
    return max(size - _ENVELOPE_BYTES + 1, 0) // per_instance


def instances_of(document: Any, policy: ServePolicy) -> list[Any]:
    """The ``instances`` array of a V1 predict request (400 on any other shape, 413 over the cap)."""
    if not isinstance(document, dict) or set(document) != {"instances"}:
        found = sorted(document) if isinstance(document, dict) else type(document).__name__
        raise Problem(
            400,
            "bad-request-shape",
            "Bad Request Shape",
            f'expected an object with exactly the key "instances", found {found!r}'[:300],
        )
    instances = document["instances"]
    if not isinstance(instances, list) or not instances:
        raise Problem(
            400,
            "bad-request-shape",
            "Bad Request Shape",
            '"instances" must be a non-empty array of objects',
        )
    if len(instances) > policy.max_instances:
        raise Problem(
            413,
            "too-many-instances",
            "Too Many Instances",
            f"{len(instances)} instances, more than the {policy.max_instances} allowed "
            "([serve].max_instances)",
        )
    return instances


@dataclass
class _Errors:
    found: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def add(self, **error: Any) -> None:
        self.count += 1
        if len(self.found) < MAX_ERRORS:
            self.found.append(error)


def _shown(value: Any) -> str:
    return ascii(value)[:80]


def _json_type_error(value: Any, dtype: str) -> str | None:
    """Why a JSON value cannot stand for a ``dtype`` cell (None when it can)."""
    if value is None:
        return None  # the contract's null rule decides
    if dtype in ("float64", "int64"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "a JSON number"
        if dtype == "int64" and (
            (isinstance(value, float) and not value.is_integer()) or abs(value) > _MAX_SAFE_INT
        ):
            return "a whole JSON number within +-2^53"
        return None
    if dtype == "bool":
        return None if isinstance(value, bool) else "true or false"
    return None if isinstance(value, str) else "a JSON string"


def served_contract(contract: DataPolicy) -> DataPolicy:
    """The contract of a served row: the feature columns only (no label, no id, nothing unique)."""
    columns = {
        name: rule.model_copy(update={"unique": False})
        for name, rule in contract.columns.items()
        if name in contract.feature_columns
    }
    return contract.model_copy(update={"columns": columns, "id_column": None})


def to_features(instances: list[Any], contract: DataPolicy) -> pd.DataFrame:
    """Check every instance against ``contract`` (a ``served_contract``); 422 naming each break.

    Returns the feature table the model is given: the contract's columns, in its order, in
    the dtypes ``ContractCheck`` converts them to. (``FeatureCheck(contract)`` once, then
    called per request, is the same check with its set-up made once.)
    """
    return FeatureCheck(contract)(instances)


class FeatureCheck:
    """``to_features`` for one contract, what does not change between requests made once: the
    column order, the column Index, and, when every column is numeric, the contract's rules as
    the arrays of the small-table screen (``pipeline.data.NumericRules``). The service makes
    one at start; it keeps no state from one request to the next.
    """

    def __init__(self, contract: DataPolicy) -> None:
        from pipeline.data import NumericRules  # noqa: PLC0415 - the service imports it at start

        self.contract = contract
        self.columns = list(contract.columns)
        self.index = _column_index(tuple(self.columns))
        rules = list(contract.columns.values())
        numeric = all(rule.dtype in ("float64", "int64") for rule in rules)
        self.numeric = NumericRules.of(rules) if numeric else None

    def __call__(self, instances: list[Any]) -> pd.DataFrame:
        """The checked feature table of ``instances``; 422 naming each break."""
        import numpy as np  # noqa: PLC0415 - the service imports them once, at start
        import pandas as pd  # noqa: PLC0415

        from pipeline.data import ContractCheck, small_block_clean  # noqa: PLC0415

        contract, columns = self.contract, self.columns
        errors = _Errors()
        rows = _rows_if_well_typed(instances, contract)
        if rows is None:  # something is off: find and name every break, instance by instance
            named = [
                _check_instance(i, instance, contract, errors)
                for i, instance in enumerate(instances)
            ]
            if errors.count:
                # The contract's own rules over every cell not named yet (an absent or mistyped
                # cell stands in as a value its rule takes): every break of every instance is
                # named, as the data gate names every break of a table.
                _rest_of_contract(instances, named, contract, errors)
                raise _unprocessable(errors)
            rows = list(map(_getter(columns), instances))
        if self.numeric is not None:
            # One float block (None as NaN): building it column by column costs a Series each.
            block = np.array(rows, dtype="float64").reshape(len(instances), len(columns))
            if small_block_clean(block, self.numeric):
                # What ContractCheck gives back for a table it finds nothing in.
                return pd.DataFrame(block, columns=self.index)
            table = pd.DataFrame(block, columns=self.index)
        else:
            table = _table(instances, contract)
        check = ContractCheck(contract, require_label=False)
        clean = check.add(table)
        _contract_errors(check, instances, errors)
        if errors.count:
            raise _unprocessable(errors)
        return clean if list(clean.columns) == columns else clean[columns]


# The JSON values each dtype takes (null is the contract's null rule's to judge).
_JSON_TYPES: dict[str, frozenset[type]] = {
    "float64": frozenset({float, int, type(None)}),
    "int64": frozenset({float, int, type(None)}),
    "bool": frozenset({bool, type(None)}),
}
_TEXT_TYPES = frozenset({str, type(None)})


def _rows_if_well_typed(instances: list[Any], contract: DataPolicy) -> list[tuple[Any, ...]] | None:
    """Each instance's values in the contract's column order when ``_check_instance`` would find
    nothing in any of them; None when it might (then it runs, instance by instance).

    Whole-batch checks: each instance a dict whose keys are exactly the columns (as many keys
    as columns, and every column among them), and each column's set of value types within what
    its dtype takes (``bool`` is its own type, so ``true`` is no number; one set over every
    value when all the columns take the same types); an int64 column's values then each
    through ``_json_type_error``.
    """
    names = list(contract.columns)
    if set(map(type, instances)) != {dict} or set(map(len, instances)) != {len(names)}:
        return None
    try:
        rows = list(map(_getter(names), instances))
    except KeyError:  # a column is absent (so some other key is undeclared)
        return None
    return rows if _well_typed(rows, list(contract.columns.values())) else None


def _well_typed(rows: list[tuple[Any, ...]], rules: list[ColumnRule]) -> bool:
    """Whether each value of ``rows`` (in the order of ``rules``) is a JSON type its column's
    dtype takes, int64 values whole and within +-2^53."""
    kinds = [_JSON_TYPES.get(rule.dtype, _TEXT_TYPES) for rule in rules]
    if len(set(kinds)) == 1:
        if not kinds[0].issuperset(map(type, itertools.chain.from_iterable(rows))):
            return False
        if all(rule.dtype != "int64" for rule in rules):
            return True
    for rule, kind, values in zip(rules, kinds, zip(*rows, strict=True), strict=True):
        if not kind.issuperset(map(type, values)):
            return False
        if rule.dtype == "int64" and any(_json_type_error(v, "int64") for v in values):
            return False
    return True


@functools.lru_cache(maxsize=8)
def _column_index(columns: tuple[str, ...]) -> pd.Index:
    """The columns as a pandas Index, made once (pandas infers a string Index from a list on
    every DataFrame otherwise). An Index is immutable, so requests may share it."""
    import pandas as pd  # noqa: PLC0415

    return pd.Index(columns)


def _getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A row's values in the order of ``names``, as a tuple (``itemgetter`` does it in C)."""
    if len(names) == 1:
        only = names[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*names)


def _table(instances: list[Any], contract: DataPolicy) -> pd.DataFrame:
    """The instances as a table of the contract's columns (numbers as float64, text as text)."""
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    frame: dict[str, Any] = {}
    for name in contract.columns:
        values = [row[name] for row in instances]
        dtype = contract.columns[name].dtype
        if dtype in ("float64", "int64"):
            frame[name] = np.array(
                [np.nan if v is None else float(v) for v in values], dtype="float64"
            )
        elif dtype == "bool":
            frame[name] = pd.Series(
                ["" if v is None else str(v).lower() for v in values], dtype=object
            )
        else:
            frame[name] = pd.Series(["" if v is None else v for v in values], dtype=object)
    return pd.DataFrame(frame)


def _contract_errors(
    check: ContractCheck,
    instances: list[Any],
    errors: _Errors,
    named: list[frozenset[str] | None] | None = None,
) -> None:
    """Each contract violation as one error per quoted instance, the rest counted; a cell
    ``named`` already (its instance's absent or mistyped columns, None for an instance that is
    no object) is not named again."""
    for violation in check.violations():
        rows: tuple[int | None, ...] = violation.rows or (None,)
        dropped = 0
        if named is not None:  # a stand-in value its rule does not take (no whole number fits)
            kept = tuple(r for r in rows if not _already(named, r, violation.column))
            rows, dropped = kept, len(rows) - len(kept)
        for row in rows:
            errors.add(
                instance=row,
                column=violation.column,
                rule=violation.rule,
                expected=violation.expected,
                found=_shown(instances[row][violation.column])
                if row is not None and violation.column in instances[row]
                else violation.observed,
                policy_key=violation.policy_key,
            )
        errors.count += max(violation.count - len(rows) - dropped, 0)


def _already(named: list[frozenset[str] | None], row: int | None, column: str | None) -> bool:
    if row is None:
        return False
    cells = named[row]
    return cells is None or column in cells


def _passing(rule: ColumnRule) -> Any:
    """A JSON value ``rule`` takes: what an absent or mistyped cell stands in as while the
    contract checks the rest of its instance."""
    if rule.nullable:
        return None
    if rule.dtype == "bool":
        return False
    if rule.dtype == "string":
        return rule.allowed[0] if rule.allowed else "-"
    value = 0.0 if rule.min is None else max(rule.min, 0.0)
    value = value if rule.max is None else min(rule.max, value)
    return math.ceil(value) if rule.dtype == "int64" else value


def _rest_of_contract(
    instances: list[Any],
    named: list[frozenset[str] | None],
    contract: DataPolicy,
    errors: _Errors,
) -> None:
    """The contract's rules over every cell ``_check_instance`` did not name (``named``)."""
    from pipeline.data import ContractCheck  # noqa: PLC0415

    stand_in = {name: _passing(rule) for name, rule in contract.columns.items()}
    usable = [
        {
            name: stand_in[name] if cells is None or name in cells else instance[name]
            for name in contract.columns
        }
        for instance, cells in zip(instances, named, strict=True)
    ]
    check = ContractCheck(contract, require_label=False)
    check.add(_table(usable, contract))
    _contract_errors(check, instances, errors, named)


def _check_instance(
    index: int, instance: Any, contract: DataPolicy, errors: _Errors
) -> frozenset[str] | None:
    """The keys of one instance and the JSON type of each value; the columns it named (absent
    or mistyped), None when the instance is not an object."""
    columns = contract.columns
    if not isinstance(instance, dict):
        errors.add(
            instance=index,
            rule="SERVE010",
            expected="an object of column: value",
            found=type(instance).__name__,
        )
        return None
    named: set[str] = set()
    for name in columns:
        if name not in instance:
            named.add(name)
            errors.add(
                instance=index, column=name, rule="DATA010", expected="present", found="absent"
            )
    for name in instance:
        if name not in columns:
            errors.add(
                instance=index,
                column=_shown(name),
                rule="DATA011",
                expected="only the contract's feature columns",
                found=_shown(name),
            )
    for name, rule in columns.items():
        if name in instance:
            want = _json_type_error(instance[name], rule.dtype)
            if want is not None:
                named.add(name)
                errors.add(
                    instance=index,
                    column=name,
                    rule="DATA012",
                    expected=f"{want} ({rule.dtype})",
                    found=_shown(instance[name]),
                )
    return frozenset(named)


def _unprocessable(errors: _Errors) -> Problem:
    first = errors.found[0]
    where = f"instance {first['instance']}" + (
        f", column {first['column']}" if first.get("column") else ""
    )
    unlisted = errors.count - len(errors.found)
    more = (
        f" (the first {len(errors.found)} listed, {unlisted} more counted)" if unlisted > 0 else ""
    )
    return Problem(
        422,
        "contract-violation",
        "Instances Break the Data Contract",
        f"{errors.count} contract violation(s){more}; first: {where}: {first['rule']} expected "
        f"{first['expected']}, found {first['found']}",
        errors=errors.found,
        error_count=errors.count,
        reason=str(first["rule"]),
    )
