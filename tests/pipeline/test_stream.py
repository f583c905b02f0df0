"""The streaming path: chunks, the contract check across chunks, the profile, and bounded memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataPolicy
from pipeline.data import check_contract, read_table
from pipeline.errors import DataError
from pipeline.poison import duplicates, out_of_range
from pipeline.profile import build_profile, column_drift, psi
from pipeline.stream import HISTOGRAM_BINS, ids_at, iter_chunks, scan, stream_profile
from tests.contract_support import data_policy

EMBEDDED = Path(__file__).resolve().parents[2] / "data" / "breast_cancer.csv"


def _contract(path: Path, **changes: object) -> DataPolicy:
    columns = changes.pop("columns", None) or {
        "id": {"dtype": "int64", "min": 0, "unique": True},
        "x": {"dtype": "float64", "min": -100.0, "max": 100.0},
        "n": {"dtype": "float64", "nullable": True},
        "colour": {"dtype": "string", "allowed": ["red", "blue"]},
        "flag": {"dtype": "bool"},
        "code": {"dtype": "string", "unique": True},
    }
    return data_policy(columns, path=path, **{"min_rows": 1, **changes})


def _clean_frame(n: int, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": np.round(rng.normal(0.0, 10.0, n), 4),
            "n": np.round(rng.lognormal(0.0, 1.0, n), 4),
            "colour": rng.choice(["red", "blue"], n),
            "flag": rng.choice(["true", "false"], n),
            "code": [f"c{i:05d}" for i in range(n)],
            "y": np.where(np.arange(n) % 3 == 0, "b", "a"),
        }
    )


def _planted(n: int = 100) -> pd.DataFrame:
    """Bad cells spread so that each rule fires in more than one chunk of 10 rows."""
    frame = _clean_frame(n).astype(str)
    frame.loc[[3, 47, 91], "x"] = ["abc", "1e", "x9"]  # DATA012 in three chunks
    frame.loc[[12, 58], "x"] = ["inf", "-inf"]  # DATA014
    frame.loc[[5, 33, 77], "x"] = ["-150", "-400", "-200"]  # DATA015: the extreme is in chunk 3
    frame.loc[[8, 95], "x"] = ["101", "250.5"]  # DATA016
    frame.loc[[21, 64], "id"] = ["21.5", "64.25"]  # DATA012 not whole numbers
    frame.loc[[30, 70], "id"] = ["2", "30"]  # DATA018 across chunks (repeat rows 2 and 30)
    frame.loc[[31], "id"] = ["30"]  # ... and within a chunk
    frame.loc[[40, 41, 85], "code"] = ["c00002", "c00002", "c00040"]  # DATA018 on text
    outside = ["green", "pink", "teal", "grey", "gold", "navy", "plum"]
    frame.loc[[2, 19, 26, 44, 53, 66, 88], "colour"] = outside  # DATA017, 7 values in 6 chunks
    frame.loc[[9, 50], "colour"] = ["", " "]  # DATA013 (blank)
    frame.loc[[15, 60], "x"] = ["", "nan"]  # DATA013 (blank, and "nan" written out)
    frame.loc[[17, 99], "flag"] = ["maybe", "2"]  # DATA012 bool
    frame.loc[[25, 75], "y"] = ["", "c"]  # DATA020 blank and outside
    frame.loc[[36, 81], "y"] = ["zz", "c"]
    return frame


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False, row_group_size=23)
    else:
        frame.to_csv(path, index=False, lineterminator="\n")
    return path


def _in_memory(path: Path, contract: DataPolicy) -> list[object]:
    frame = read_table(path, fmt=contract.resolved_format)
    return list(check_contract(frame, contract)[1])


# --- chunks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunks_hold_at_most_chunk_rows_and_number_rows_as_the_file_does(tmp_path, suffix):
    frame = _clean_frame(101)
    path = _write(frame, tmp_path / f"d{suffix}")
    fmt = suffix.lstrip(".")
    chunks = list(iter_chunks(path, fmt=fmt, chunk_rows=10))
    assert max(len(c.frame) for c in chunks) <= 10
    assert [c.start for c in chunks] == [int(c.frame.index[0]) for c in chunks]
    whole = pd.concat([c.frame for c in chunks])
    assert list(whole.index) == list(range(101))
    expected = read_table(path, fmt=fmt)
    pd.testing.assert_frame_equal(whole.reset_index(drop=True), expected)


def test_bad_input_is_a_data_error_with_the_in_memory_message(tmp_path):
    path = tmp_path / "d.csv"
    lines = ["id,x", *(f"{i},{i}" for i in range(30)), "31,1,2,3"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.csv: malformed CSV: .*line 32"):
        list(iter_chunks(path, fmt="csv", chunk_rows=5))
    path.write_text("id,x\n", encoding="utf-8")
    with pytest.raises(DataError, match="expected data rows after the header, found none"):
        list(iter_chunks(path, fmt="csv", chunk_rows=5))
    path.write_bytes(b"id,x\n1,\xff\n")
    with pytest.raises(DataError, match="expected UTF-8 CSV"):
        list(iter_chunks(path, fmt="csv", chunk_rows=5))
    with pytest.raises(DataError, match="expected a Parquet file"):
        list(iter_chunks(path, fmt="parquet", chunk_rows=5))
    with pytest.raises(DataError, match=r"max_file_mb"):
        list(iter_chunks(path, fmt="csv", chunk_rows=5, max_bytes=3))


# --- the contract, chunk by chunk -----------------------------------------------------------


@pytest.mark.parametrize("chunk_rows", [50, 569, 10_000])
def test_the_embedded_data_checks_and_profiles_as_in_memory(project, chunk_rows):
    policy = project.load()
    contract = policy.policy.data
    path = project.data_path
    assert _in_memory(path, contract) == []
    frame = read_table(path, fmt="csv")
    clean, _ = check_contract(frame, contract)
    first = scan(path, contract, chunk_rows=chunk_rows)
    assert first.violations == ()
    assert first.rows == 569
    assert first.largest_chunk == min(chunk_rows, 569)
    streamed = stream_profile(first, contract, chunk_rows=chunk_rows)
    exact = build_profile(clean, contract)
    assert streamed.rows == exact.rows
    assert streamed.class_balance == exact.class_balance
    assert streamed.row_digests == exact.row_digests
    for name, column in exact.columns.items():
        mine = streamed.columns[name]
        assert (mine.kind, mine.null_share, mine.minimum, mine.maximum) == (
            column.kind,
            column.null_share,
            column.minimum,
            column.maximum,
        )
        width = (column.maximum - column.minimum) / HISTOGRAM_BINS
        assert np.allclose(mine.quantiles, column.quantiles, rtol=0, atol=width * (1 + 1e-9))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("chunk_rows", [1, 3, 10, 37, 100])
def test_planted_bad_cells_give_the_in_memory_violations_with_file_rows(
    tmp_path, suffix, chunk_rows
):
    path = _write(_planted(), tmp_path / f"d{suffix}")
    contract = _contract(path)
    expected = _in_memory(path, contract)
    assert {v.rule for v in expected} >= {
        "DATA012",
        "DATA013",
        "DATA014",
        "DATA015",
        "DATA016",
        "DATA017",
        "DATA018",
        "DATA020",
    }
    found = scan(path, contract, chunk_rows=chunk_rows)
    assert list(found.violations) == expected
    # The row numbers are the file's: DATA015's extreme (-400) is at row 33, not row 3 of a chunk.
    below = next(v for v in found.violations if v.rule == "DATA015")
    assert below.rows == (5, 33, 77)
    assert "extreme -400" in below.message


def test_rules_on_the_whole_file_see_every_chunk(tmp_path):
    frame = _clean_frame(40)
    frame["y"] = "a"
    frame.loc[37:39, "y"] = "b"  # class b only in the last chunk: no DATA021
    path = _write(frame, tmp_path / "d.csv")
    contract = _contract(path, max_rows=50)
    assert list(scan(path, contract, chunk_rows=10).violations) == _in_memory(path, contract) == []
    frame.loc[37:39, "y"] = "a"  # class b nowhere: DATA021; 40 rows above max_rows 30: DATA030
    _write(frame, path)
    contract = _contract(path, max_rows=30)
    expected = _in_memory(path, contract)
    assert [v.rule for v in expected] == ["DATA030", "DATA021"]
    assert list(scan(path, contract, chunk_rows=10).violations) == expected


def test_missing_and_undeclared_columns_are_reported_once(tmp_path):
    frame = _clean_frame(30).drop(columns=["n"]).assign(extra="1")
    path = _write(frame, tmp_path / "d.csv")
    contract = _contract(path)
    found = scan(path, contract, chunk_rows=7, duplicates=True, sample_rows=10)
    assert list(found.violations) == _in_memory(path, contract)
    assert [v.rule for v in found.violations] == ["DATA010", "DATA011"]


# --- the profile ------------------------------------------------------------------------------


def _skewed(n: int, *, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = _clean_frame(n, seed=seed)
    frame["x"] = np.round(rng.lognormal(shift, 1.5, n), 6).clip(max=99.0)  # heavy right tail
    frame["n"] = rng.integers(0, 5, n).astype(float)  # few distinct values: ties at deciles
    frame.loc[rng.choice(n, n // 20, replace=False), "n"] = np.nan
    return frame


def test_streaming_deciles_are_within_one_histogram_bin_of_numpys(tmp_path):
    frame = _skewed(20_000, seed=1)
    path = _write(frame, tmp_path / "d.csv")
    contract = _contract(path)
    clean, violations = check_contract(read_table(path, fmt="csv"), contract)
    assert violations == []
    streamed = stream_profile(scan(path, contract, chunk_rows=1_500), contract, chunk_rows=1_500)
    exact = build_profile(clean, contract)
    for name in ("x", "n"):
        values = clean[name].dropna().to_numpy()
        numpy_deciles = np.quantile(values, np.linspace(0, 1, 11))
        width = (values.max() - values.min()) / HISTOGRAM_BINS
        error = np.abs(np.asarray(streamed.columns[name].quantiles) - numpy_deciles)
        assert error.max() <= width * (1 + 1e-6), (name, error.max(), width)
        assert streamed.columns[name].null_share == exact.columns[name].null_share
    # Ties are read exactly (a bin holding one distinct value), so the shares are the same too.
    assert streamed.columns["n"].quantiles == exact.columns["n"].quantiles
    assert streamed.columns["n"].bin_shares == exact.columns["n"].bin_shares
    assert streamed.columns["colour"] == exact.columns["colour"]
    assert streamed.columns["flag"] == exact.columns["flag"]


def test_psi_against_a_streamed_reference_agrees_with_the_in_memory_one(tmp_path):
    reference_path = _write(_skewed(20_000, seed=2), tmp_path / "ref.csv")
    contract = _contract(reference_path)
    clean_ref, _ = check_contract(read_table(reference_path, fmt="csv"), contract)
    exact_ref = build_profile(clean_ref, contract)
    streamed_ref = stream_profile(
        scan(reference_path, contract, chunk_rows=999), contract, chunk_rows=999
    )
    for shift in (0.0, 0.1, 0.5):
        data_path = _write(_skewed(5_000, seed=3, shift=shift), tmp_path / f"new{shift}.csv")
        clean, _ = check_contract(read_table(data_path, fmt="csv"), contract)
        in_memory = {d.column: d.psi for d in column_drift(clean, exact_ref)}
        streamed = {d.column: d.psi for d in column_drift(clean, streamed_ref)}
        assert streamed.keys() == in_memory.keys()
        for name, value in in_memory.items():
            assert streamed[name] == pytest.approx(value, abs=0.005, rel=0.02), (shift, name)
        # The scan's own drift (counts merged over chunks) equals column_drift on the whole.
        on_chunks = scan(data_path, contract, chunk_rows=333, reference=streamed_ref)
        assert {d.column: d.psi for d in on_chunks.drift} == pytest.approx(streamed, abs=1e-12)
    assert psi(list(streamed_ref.columns["x"].bin_shares), [0.1] * 10) == pytest.approx(
        0.0, abs=1e-3
    )


def test_range_and_duplicate_flags_match_the_in_memory_checks(tmp_path):
    frame = _clean_frame(300, seed=4).drop(columns=["code"])
    frame.loc[250, "x"] = 99.0  # far beyond the reference's range
    copy = frame.iloc[[10]].assign(id=1000)  # an exact copy (features and label), another id
    conflict = frame.iloc[[20]].assign(id=1001, y="b" if frame.y[20] == "a" else "a")
    frame = pd.concat([frame, copy, conflict], ignore_index=True)
    path = _write(frame, tmp_path / "d.csv")
    columns = dict(_contract(path).columns)
    del columns["code"]
    contract = _contract(path, columns={k: v.model_dump() for k, v in columns.items()})
    reference = build_profile(
        check_contract(_clean_frame(300, seed=5).drop(columns=["code"]), contract)[0].iloc[:250],
        contract,
    )
    clean, _ = check_contract(read_table(path, fmt="csv"), contract)
    found = scan(
        path,
        contract,
        chunk_rows=17,
        reference=reference,
        range_margin=0.25,
        duplicates=True,
    )
    expected_range = out_of_range(clean, contract, reference, margin=0.25)
    assert found.range_flags is not None
    assert found.range_flags.rows.tolist() == expected_range.rows.tolist()
    assert found.range_flags.reasons == expected_range.reasons
    assert 250 in found.range_flags.rows
    assert found.duplicates is not None
    for mine, theirs in zip(found.duplicates, duplicates(clean, contract), strict=True):
        assert mine.rows.tolist() == theirs.rows.tolist()
        assert mine.reasons == theirs.reasons
    assert found.duplicates[0].rows.tolist() == [300]
    assert found.duplicates[1].rows.tolist() == [20, 301]


def test_the_sample_is_seeded_stratified_and_independent_of_the_chunk_size(tmp_path):
    path = _write(_clean_frame(3_000, seed=6), tmp_path / "d.csv")
    contract = _contract(path)
    first = scan(path, contract, chunk_rows=100, sample_rows=300, seed=7).sample
    second = scan(path, contract, chunk_rows=1_000, sample_rows=300, seed=7).sample
    other = scan(path, contract, chunk_rows=100, sample_rows=300, seed=8).sample
    assert first is not None
    assert second is not None
    assert other is not None
    assert len(first) == 300
    assert first.index.tolist() == second.index.tolist()
    assert first.index.tolist() != other.index.tolist()
    assert first["y"].value_counts().to_dict() == {"a": 200, "b": 100}  # 2:1, as the file


def test_ids_of_rows_are_read_from_the_id_column_alone(tmp_path):
    path = _write(_clean_frame(50), tmp_path / "d.parquet")
    contract = _contract(path)
    assert ids_at(path, contract, rows=np.array([0, 49, 23]), chunk_rows=7) == {
        0: "0",
        23: "23",
        49: "49",
    }


def test_a_file_rewritten_between_passes_is_refused(tmp_path):
    path = _write(_clean_frame(60), tmp_path / "d.csv")
    contract = _contract(path)
    first = scan(path, contract, chunk_rows=25)
    _write(_clean_frame(61), path)
    with pytest.raises(DataError, match="changed while it was being profiled"):
        stream_profile(first, contract, chunk_rows=25)


# --- memory -----------------------------------------------------------------------------------

_MEASURE = """
import re, sys
from pathlib import Path
from pipeline.config import DataPolicy
from pipeline.stream import scan, stream_profile

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))

contract = DataPolicy.model_validate_json(Path(sys.argv[1]).read_text())
tiny, path, chunk_rows = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
tiny_contract = contract.model_copy(update={"path": str(tiny)})
stream_profile(scan(tiny, tiny_contract, chunk_rows=7), tiny_contract, chunk_rows=7)  # warm up
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS")
first = scan(path, contract, chunk_rows=chunk_rows)
assert first.violations == (), first.violations
assert first.largest_chunk == chunk_rows, first.largest_chunk
stream_profile(first, contract, chunk_rows=chunk_rows)
print((status("VmHWM") - before) * 1024)
"""


def _peak_bytes(tmp_path: Path, contract: DataPolicy, chunk_rows: int) -> int:
    """Peak resident memory a scan plus profile adds to a fresh, warmed-up interpreter."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "contract.json").write_text(contract.model_dump_json(), encoding="utf-8")
    tiny = _write(_clean_frame(50).drop(columns=["code"]), tmp_path / "tiny.csv")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEASURE,
            str(tmp_path / "contract.json"),
            str(tiny),
            contract.path,
            str(chunk_rows),
        ],
        cwd=repo,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS"
)
def test_profiling_in_small_chunks_never_holds_the_whole_table(tmp_path):
    rows = 200_000
    path = _write(_clean_frame(rows, seed=9).drop(columns=["code"]), tmp_path / "d.csv")
    # No id column, so "id" is a numeric feature whose uniqueness state (8 bytes per row) is
    # kept; row digests (kept up to MAX_ROW_DIGESTS rows) and a text column of distinct values
    # (one category count per value, as the profile records) would measure something else.
    columns = {k: v.model_dump() for k, v in _contract(path).columns.items() if k != "code"}
    contract = _contract(path, id_column=None, columns=columns)
    # Peak RSS (VmHWM) sees every allocator, Arrow's included, which tracemalloc does not.
    chunked = _peak_bytes(tmp_path, contract, 10_000)
    whole = _peak_bytes(tmp_path, contract, rows)  # one chunk: the whole table at once
    bound = 32 * 2**20
    # Measured here: about 12 MiB in chunks of 10,000 rows, 75-80 MiB in one chunk. The bound
    # must be broken by the one-chunk run, or this test could not fail.
    assert chunked < bound, f"chunked peak {chunked / 2**20:.1f} MiB"
    assert whole > bound, f"one-chunk peak {whole / 2**20:.1f} MiB"


# --- bounds on what a streamed file may decode to ---------------------------------------------


def _string_bomb(path: Path, *, rows: int, value_kib: int, row_group_rows: int) -> Path:
    """The clean frame with one text column holding a single long value from the second row
    group on ("red" before).

    Written dictionary-encoded and without Arrow's schema (as any writer may), the value is
    stored once and compressed: 1,000 rows of a 64 KiB value take a few KB on disk and
    decode to 62.5 MiB of text.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(_clean_frame(rows), preserve_index=False)
    long = pa.DictionaryArray.from_arrays(
        pa.array((np.arange(rows) >= row_group_rows).astype(np.int32)),
        pa.array(["red", "r" * (value_kib * 1024)]),
    )
    table = table.set_column(table.schema.get_field_index("colour"), "colour", long)
    pq.write_table(
        table, path, store_schema=False, compression="zstd", row_group_size=row_group_rows
    )
    return path


def test_a_chunk_decoding_past_the_budget_is_refused_naming_the_row_group(tmp_path):
    path = _string_bomb(tmp_path / "d.parquet", rows=2000, value_kib=64, row_group_rows=1000)
    assert path.stat().st_size < 64 * 1024  # smaller than one of its values
    contract = _contract(path, stream_chunk_mb=8.0)
    pattern = (
        r"d\.parquet: row group 1 \(file rows 1000\.\.1499\) decodes to 31\.\d MiB in a chunk "
        r"of 500 rows, more than the 8\.0 MiB a chunk may take \(\[data\]\.stream_chunk_mb\)"
    )
    with pytest.raises(DataError, match=pattern):
        scan(path, contract, chunk_rows=500)
    # The same file in chunks small enough for the budget is read, and its text is text.
    chunks = list(iter_chunks(path, fmt="parquet", chunk_rows=100, **_bounds(contract)))
    assert sum(len(c.frame) for c in chunks) == 2000
    assert chunks[0].frame["colour"].iloc[0] == "red"
    assert chunks[-1].frame["colour"].iloc[0] == "r" * 64 * 1024
    # read as it is read without a budget (text as text, not categories)
    unbounded = list(iter_chunks(path, fmt="parquet", chunk_rows=100))
    for bounded, plain in zip(chunks, unbounded, strict=True):
        pd.testing.assert_frame_equal(bounded.frame, plain.frame)


def _bounds(contract: DataPolicy) -> dict[str, int]:
    return {"max_chunk_bytes": contract.stream_chunk_bytes, "max_rows": contract.max_rows}


def test_a_row_group_whose_footer_says_too_much_is_refused_before_reading(tmp_path):
    path = tmp_path / "d.parquet"
    # Small pages: Arrow decompresses a page whole, and the pages held at once count too.
    _clean_frame(20_000).to_parquet(
        path, index=False, row_group_size=20_000, data_page_size=8_192, use_dictionary=False
    )
    contract = _contract(path, stream_chunk_mb=0.25)
    pattern = (
        r"d\.parquet: row group 0 \(20000 rows\) decodes to at least \d+\.\d+ MiB per chunk of "
        r"20000 rows \(the footer's value counts x column widths\), more than the 0\.2 MiB a "
        r"chunk may take \(\[data\]\.stream_chunk_mb\); refused before reading"
    )
    with pytest.raises(DataError, match=pattern):
        scan(path, contract, chunk_rows=20_000)
    # In chunks of 2,000 rows the same row group is within the budget.
    assert scan(path, contract, chunk_rows=2_000).rows == 20_000


def test_more_rows_in_the_footer_than_max_rows_are_refused_before_reading(tmp_path):
    path = _write(_clean_frame(500), tmp_path / "d.parquet")
    contract = _contract(path, max_rows=100)
    pattern = (
        r"d\.parquet: the Parquet footer declares 500 rows, more than \[data\]\.max_rows "
        r"\(100\); refused before reading"
    )
    with pytest.raises(DataError, match=pattern):
        scan(path, contract, chunk_rows=50)
    assert scan(path, _contract(path, max_rows=500), chunk_rows=50).rows == 500


_REFUSE = """
import re, sys
from pathlib import Path
from pipeline.errors import DataError
from pipeline.stream import iter_chunks

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))

path = Path(sys.argv[1])
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS")
try:
    list(iter_chunks(path, fmt="parquet", chunk_rows=1000, max_chunk_bytes=8 * 2**20))
except DataError as err:
    print("refused", (status("VmHWM") - before) * 1024, str(err).replace(" ", "_"))
"""


@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS"
)
def test_a_refused_chunk_is_measured_without_being_expanded(tmp_path):
    import subprocess
    import sys

    # 1,000 rows of one 256 KiB value in one row group: 250 MiB of text, a few KB on disk.
    path = _string_bomb(tmp_path / "d.parquet", rows=2000, value_kib=256, row_group_rows=1000)
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _REFUSE, str(path)],
        cwd=repo,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    refused, peak, message = done.stdout.split()
    assert refused == "refused"
    assert "row_group_1_(file_rows_1000..1999)_decodes_to_250.1_MiB" in message
    assert int(peak) < 64 * 2**20  # the 250 MiB chunk was never built
