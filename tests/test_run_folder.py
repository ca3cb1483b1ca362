"""A run folder holds one run: an earlier run is never replaced unasked, and two processes never share it."""

import subprocess
import sys
import textwrap

import pytest

from deepmatting.run_folder import RunFolderError, check_run_folder, claim_run_folder


def test_an_empty_or_missing_folder_is_free(tmp_path):
    check_run_folder(tmp_path / "new", resume=False, overwrite=False)
    with claim_run_folder(tmp_path / "new"):
        assert (tmp_path / "new" / ".lock").read_text().strip().isdigit()


def test_a_folder_holding_a_run_is_refused_without_resume_or_overwrite(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"x")
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    expected = r"already holds a training run \(last.pt, metrics.jsonl\).*--resume"
    with pytest.raises(RunFolderError, match=expected):
        check_run_folder(tmp_path, resume=False, overwrite=False)
    assert (tmp_path / "last.pt").exists()
    check_run_folder(tmp_path, resume=True, overwrite=False)  # continuing it is fine
    assert (tmp_path / "last.pt").exists()


def test_overwrite_removes_the_run_files_and_keeps_other_files(tmp_path):
    (tmp_path / "best.pt").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "prior_pool").mkdir()
    check_run_folder(tmp_path, resume=False, overwrite=True)
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "config.json").exists()
    assert (tmp_path / "prior_pool").is_dir()


def test_resume_and_overwrite_together_are_refused(tmp_path):
    with pytest.raises(RunFolderError, match="give one of them"):
        check_run_folder(tmp_path, resume=True, overwrite=True)


def test_a_second_process_cannot_claim_a_held_folder(tmp_path):
    with claim_run_folder(tmp_path):
        code = textwrap.dedent(f"""
            from pathlib import Path
            from deepmatting.run_folder import RunFolderError, claim_run_folder
            try:
                with claim_run_folder(Path({str(tmp_path)!r})):
                    print("claimed")
            except RunFolderError as e:
                print("refused:", e)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("refused:") and "still going" in out, out
    # released when the holder lets go
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "claimed"
