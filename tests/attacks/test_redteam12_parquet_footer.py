"""Red team 12: two Parquet footers the walk of rows 63 and 68 passed that Arrow builds out.

(a) **Column paths.** Arrow keeps, per leaf column of the footer's schema, its path: every
ancestor's name joined by dots (``SchemaDescriptor``'s map from dotted path to column). The walk
counted each ``SchemaElement`` once (a struct, its name's length), so one group named by 1 MB
over 1,000 leaves (a 1 MB file) is 1 GB of paths: ``pq.ParquetFile`` peaked at 3 GB here.

(b) **Declared element types.** Arrow's generated Thrift reader reads the elements of a list
Parquet defines (``row_groups``, ``columns``, ``schema``, ...) as Parquet's structs whatever
element type the list declares, while the walk (as Thrift's skip) stepped through them as
declared: 8 bytes each for a list of "doubles", charged 8 bytes each, that Arrow read as
column chunks of about 690 bytes. A 32 MB file (4 row groups x 1,000,000 "doubles") peaked at
2.9 GB in ``pq.ParquetFile``.

Red before (run against the walk of 29687fd): the premises held, ``refuse_large_footer`` passed
both files with a 64 MiB bound and the data gate read them (3 of the 6 refusal cases below
failed; the mistyped-list cases of ``schema`` and ``row_groups`` too). Fixed in
``pipeline/parquet_footer.py``: the walk reads the footer's structs as Parquet defines them
(``_FIELDS``): a known list declared of another element type is refused, and every leaf's path
is charged ``PATH_COPIES`` times.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import read_table
from pipeline.errors import DataError
from pipeline.parquet_footer import refuse_large_footer
from tests.hostile_support import GATE_CHILD, run_child
from tests.parquet_support import (
    BINARY,
    DOUBLE,
    I32,
    I64,
    LIST,
    STRUCT,
    arrow_growth,
    field,
    list_header,
    parquet_project,
    row_group,
    sized,
    write_footer,
    zigzag,
)

BOUND = 64 << 20
# A column chunk that is also 8 bytes of a "double": file_offset 0, five true bools, its end.
CHUNK = bytes([0x26, 0x00, 0x11, 0x11, 0x11, 0x11, 0x11, 0x00])


def _element(name: bytes, *, children: int = 0, physical: int | None = None) -> bytes:
    """A ``SchemaElement``: a group of ``children`` or a required leaf of ``physical`` type."""
    head = field(1, I32) + zigzag(physical) if physical is not None else b""
    delta = 2 if physical is not None else 3
    body = field(delta, I32) + zigzag(0) + field(1, BINARY) + sized(name)
    if children:
        body += field(1, I32) + zigzag(children)
    return head + body + b"\x00"


def _paths_footer(name: int, leaves: int) -> bytes:
    """FileMetaData: a group named by ``name`` bytes over ``leaves`` INT32 leaves, no rows."""
    schema = (
        _element(b"schema", children=1)
        + _element(b"x" * name, children=leaves)
        + b"".join(_element(b"a%d" % k, physical=1) for k in range(leaves))
    )
    head = field(1, I32) + zigzag(1) + field(1, LIST) + list_header(STRUCT, 2 + leaves) + schema
    return head + field(1, I64) + zigzag(0) + field(1, LIST) + list_header(STRUCT, 0) + b"\x00"


def _typed_footer(
    groups: int, chunks: int, *, chunk_type: int = DOUBLE, chunk: bytes = CHUNK
) -> bytes:
    """FileMetaData: one column 'a', ``groups`` row groups whose ``columns`` list is declared of
    ``chunk_type`` and holds ``chunks`` times ``chunk`` (8-byte column chunks by default)."""
    schema = _element(b"schema", children=1) + _element(b"a", physical=2)
    group = row_group(chunk, chunks, kind=chunk_type)
    head = field(1, I32) + zigzag(1) + field(1, LIST) + list_header(STRUCT, 2) + schema
    rows = field(1, I64) + zigzag(0)
    return head + rows + field(1, LIST) + list_header(STRUCT, groups) + group * groups + b"\x00"


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 leaves under one group named by 1 MB: a 1 MB file, 1 GB of dotted paths."""
    return write_footer(
        tmp_path_factory.mktemp("paths") / "data.parquet", _paths_footer(1 << 20, 1000)
    )


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 row groups of 1,000,000 column chunks declared as doubles: a 32 MB file."""
    return write_footer(
        tmp_path_factory.mktemp("typed") / "data.parquet", _typed_footer(4, 1_000_000)
    )


@pytest.mark.parametrize("name", ["paths", "typed"])
def test_arrow_builds_the_footer_far_past_its_size(
    name: str, request: pytest.FixtureRequest
) -> None:
    """The premises, measured: each file makes Arrow grow by more than 30 times its size and
    more than ``BOUND`` when it opens it."""
    path: Path = request.getfixturevalue(name)
    grown = arrow_growth(path)
    assert grown > BOUND
    assert grown > 30 * path.stat().st_size


@pytest.mark.parametrize("name", ["paths", "typed"])
def test_the_reader_refuses_it_before_arrow_opens_it(
    name: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(name)
    with pytest.raises(DataError, match=r"data\.parquet: .*refused before it is parsed"):
        read_table(path, fmt="parquet", max_bytes=BOUND)


@pytest.mark.parametrize(
    ("where", "footer"),
    [
        ("RowGroup.columns", _typed_footer(1, 20, chunk_type=BINARY, chunk=sized(CHUNK[:2]))),
        ("RowGroup.columns", _typed_footer(1, 20, chunk_type=13, chunk=CHUNK * 2)),  # UUIDs
        (
            "FileMetaData.row_groups",
            field(1, I32)
            + zigzag(1)
            + field(1, LIST)
            + list_header(STRUCT, 2)
            + _element(b"schema", children=1)
            + _element(b"a", physical=2)
            + field(1, I64)
            + zigzag(0)
            + field(1, LIST)
            + list_header(3, 3)  # three "bytes": three empty row groups for Arrow
            + b"\x00\x00\x00"
            + b"\x00",
        ),
        (
            "FileMetaData.schema",
            field(1, I32)
            + zigzag(1)
            + field(1, LIST)
            + list_header(BINARY, 1)
            + sized(_element(b"schema")[:-1])
            + field(1, I64)
            + zigzag(0)
            + b"\x00",
        ),
    ],
    ids=["columns as strings", "columns as uuids", "row groups as bytes", "schema as strings"],
)
def test_a_parquet_list_declared_of_another_type_is_refused(
    tmp_path: Path, where: str, footer: bytes
) -> None:
    """A list Parquet defines, declared of another element type (valid Thrift; no writer
    writes one): Arrow reads other structures there than the walk steps through."""
    path = write_footer(tmp_path / "data.parquet", footer)
    with pytest.raises(DataError, match=rf"data\.parquet: .*{where} .*is declared of type"):
        refuse_large_footer(path, max_bytes=BOUND, key="k", max_pages=1000)


@pytest.mark.parametrize(
    ("footer", "said"),
    [
        (_paths_footer(1 << 20, 1000), "path in the schema"),
        (_typed_footer(4, 1_000_000), "RowGroup.columns"),
    ],
    ids=["paths", "typed"],
)
def test_the_data_gate_refuses_it_naming_the_file(tmp_path: Path, footer: bytes, said: str) -> None:
    """Through the real command, in memory (``max_file_mb``, 2 GiB), Arrow's address space
    held to 3 GiB: one finding naming the file, no traceback (red before: Arrow read them)."""
    root = parquet_project(tmp_path / "project", footer)
    done = run_child(GATE_CHILD, root, "run", "data", "--no-cache", timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "breast_cancer.parquet" in out, out
    assert said in out, out
    assert "refused before it is parsed" in out, out
    assert "Traceback" not in out, out


def test_an_honest_nested_file_with_long_names_passes_and_reads(tmp_path: Path) -> None:
    """Control: pyarrow's nested columns under 200-character names, 40 leaves, pass the walk
    with a bound of 8 MiB and read whole."""
    path = tmp_path / "nested.parquet"
    inner = {f"{'n' * 200}_{k}": [float(k), 2.0] for k in range(20)}
    table = pa.table(
        {
            "g" * 200: pa.StructArray.from_arrays(
                [pa.array(v) for v in inner.values()], names=list(inner)
            ),
            **{f"{'f' * 200}_{k}": [1.0, 2.0] for k in range(20)},
        }
    )
    pq.write_table(table, path)
    refuse_large_footer(path, max_bytes=8 << 20, key="k", max_pages=10_000)
    assert pq.ParquetFile(path).metadata.num_columns == 40
