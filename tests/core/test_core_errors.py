"""Input-safety primitives: DataError messages, load reports, atomic writes, array checks and the fuzz harness."""

import logging
import os

import numpy as np
import pytest

from ditkit_core.errors import (
    DataError,
    LoadReport,
    atomic_save,
    atomic_write,
    check_array,
    check_count,
    naming_file,
    read_text,
    safe_join,
)
from ditkit_core.testing.fuzz import assert_clean, hostile_files, run_cases


def test_data_error_names_file_line_field_and_value():
    e = DataError("must be positive", path="data/x.csv", line=7, field="speed", value=-1.5)
    assert str(e) == "data/x.csv line 7: speed=-1.5: must be positive"
    assert isinstance(e, ValueError)
    assert str(DataError("bad", path="a.sdf", line=3, record=True)) == "a.sdf record 3: bad"


def test_naming_file_wraps_library_errors(tmp_path):
    p = tmp_path / "broken.npy"
    p.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="broken.npy"):
        with naming_file(p):
            np.load(p, allow_pickle=False)


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path):
    target = tmp_path / "cache.bin"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half of it")
            raise RuntimeError("killed")
    assert not target.exists() and os.listdir(tmp_path) == []
    with atomic_write(target) as f:
        f.write(b"all of it")
    assert target.read_bytes() == b"all of it"
    atomic_save(tmp_path / "a.npz", lambda p: np.savez(p, x=np.arange(3)), suffix=".npz")
    assert np.load(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2]
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "cache.bin"]


def test_check_array_rejects_what_would_be_silently_wrong():
    with pytest.raises(DataError, match="float32 range"):
        check_array(np.array([1.0, 1e300]), path="s.npy", field="values")
    with pytest.raises(DataError, match="complex"):
        check_array(np.array([1 + 2j]), path="s.npy", field="values")
    with pytest.raises(DataError, match="NaN"):
        check_array(np.array([np.nan]), path="s.npy", field="days", allow_nan=False)
    with pytest.raises(DataError, match="infinite"):
        check_array(np.array([np.inf]), path="s.npy", field="values")
    with pytest.raises(DataError, match="expected numbers"):
        check_array(np.array(["a"]), path="s.npy", field="values")
    assert check_array(np.array([1.0, np.nan]), path="s.npy", field="values").shape == (2,)


def test_counts_and_paths_from_files_are_bounded(tmp_path):
    assert check_count("12", 100, path="h", field="n") == 12
    for bad in (10**12, -1, "x", 2.5):
        with pytest.raises(DataError, match="n="):
            check_count(bad, 100, path="h", field="n")
    assert safe_join(tmp_path, "wavs/a.wav") == tmp_path / "wavs/a.wav"
    for bad in ("../../etc/passwd", "/etc/passwd", "", "a/../../b"):
        with pytest.raises(DataError, match="id="):
            safe_join(tmp_path, bad, path="metadata.csv", field="id", line=2)


def test_read_text_names_the_line_of_bad_utf8(tmp_path):
    p = tmp_path / "meta.csv"
    p.write_bytes(b"a|b\nc|caf\xe9\n")
    with pytest.raises(DataError, match=r"meta.csv line 2: not UTF-8"):
        read_text(p)


def test_load_report_counts_reasons_and_logs_visibly(caplog):
    rep = LoadReport("x.smi")
    rep.kept = 5
    rep.skip("unparsable SMILES", line=3, field="smiles", value="C1CC")
    rep.skip("unparsable SMILES", line=9, field="smiles", value="((")
    rep.skip("too many atoms", line=4)
    assert rep.counts() == {"unparsable SMILES": 2, "too many atoms": 1}
    with caplog.at_level(logging.WARNING, logger="ditkit"):
        rep.log()
    assert "skipped 3" in caplog.text and "x.smi line 3" in caplog.text
    empty = LoadReport("y.smi")
    empty.skip("bad", line=1)
    with pytest.raises(DataError, match="no usable record .*1 x bad"):
        empty.require_some()


def test_fuzz_harness_records_crashes_memory_and_errors(tmp_path):
    files = hostile_files(np.arange(10.0).tobytes(), tmp_path, ".bin")
    assert set(files) >= {"empty", "truncated_half", "random", "latin1"}
    out = run_cases("ctypes:string_at", [{"ptr": 0}], timeout=60)
    assert out[0].status == "crash"
    out = run_cases("numpy:ones", [{"shape": [1 << 40]}, {"shape": [3]}], timeout=60, memory_mb=2048)
    assert [o.status for o in out] == ["memory", "ok"]
    good = tmp_path / "good.npy"
    np.save(good, np.arange(3.0))
    cases = [{"file": str(p), "allow_pickle": False} for p in [good, files["empty"], files["random"]]]
    out = run_cases("numpy:load", cases, timeout=60)
    assert out[0].status == "ok" and out[0].summary["shape"] == [3]
    with pytest.raises(AssertionError, match="does not name the file|not a ValueError"):
        assert_clean(out, name_key="file")
