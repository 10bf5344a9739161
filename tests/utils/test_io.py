"""Atomic writes: the old file survives a failed write, nothing temporary is left, strict JSON, shared permissions."""

import errno
import json
import os
import stat

import pytest

from neurov1.errors import ConfigError, OutputWriteError
from neurov1.utils import io
from neurov1.utils.io import atomic_writer, check_writable, remove_stale_temporaries, write_json_atomic


def leftovers(folder):
    return sorted(path.name for path in folder.iterdir() if path.name != "data.bin")


@pytest.fixture(params=["anonymous", "named"])
def temporary_kind(request, monkeypatch):
    """Both ways of staging the data: an O_TMPFILE file, and a named temporary file (filesystems without it)."""
    if request.param == "named":
        monkeypatch.setattr(io, "_open_anonymous", lambda folder: None)
    return request.param


def test_a_write_replaces_the_file_atomically(tmp_path, temporary_kind):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with atomic_writer(target) as handle:
        handle.write(b"new content")
        assert target.read_bytes() == b"old"  # readers see the old file until the write is complete
    assert target.read_bytes() == b"new content"
    assert leftovers(tmp_path) == []


def test_a_failure_in_the_middle_leaves_the_old_file_and_no_temporary(tmp_path, temporary_kind):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="serialiser broke"), atomic_writer(target) as handle:
        handle.write(b"half of the")
        raise RuntimeError("serialiser broke")
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_a_full_disk_is_one_clear_error_and_keeps_the_old_file(tmp_path, temporary_kind):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(OutputWriteError) as info, atomic_writer(target) as handle:
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    message = str(info.value)
    assert f"cannot write {target}: No space left on device (ENOSPC)" in message
    assert "Free space on that filesystem" in message and "previous data.bin is unchanged" in message
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_new_files_are_readable_by_the_group_under_the_usual_umask(tmp_path, temporary_kind):
    previous = os.umask(0o022)
    try:
        with atomic_writer(tmp_path / "data.bin") as handle:
            handle.write(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "data.bin").stat().st_mode) == 0o644


def test_json_is_strict_non_finite_numbers_become_null(tmp_path):
    path = write_json_atomic(tmp_path / "m.json", {"loss": float("nan"), "values": [1.0, float("inf")], "ok": 0.5})
    data = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    assert data == {"loss": None, "values": [1.0, None], "ok": 0.5}


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / ".last.ckpt.1a2b3c4d.tmp").write_bytes(b"partial")
    (tmp_path / "last.ckpt").write_bytes(b"kept")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".last.ckpt.1a2b3c4d.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_an_unwritable_folder_is_a_config_error_naming_the_key(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=rf"paths.log_dir: cannot write to {blocker}/runs .*Set paths.log_dir="):
        check_writable(blocker / "runs", "paths.log_dir")
    assert check_writable(tmp_path / "new" / "runs", "paths.log_dir").is_dir()
    assert list((tmp_path / "new" / "runs").iterdir()) == []  # the probe leaves nothing behind
