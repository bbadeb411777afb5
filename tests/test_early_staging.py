"""Files are staged by a helper process while the rest is planned.

`EarlyStager` (traefik_gen.writer) and its helper (traefik_gen.staging_helper) change
when the bytes reach the disk, never what reaches the directory: the same files, renamed
by `apply` only, each one written and synced first. These run the real helper process;
its failures are real processes too (one that dies, one that reports a disk error, and
one that cannot start).
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import traefik_gen.staging_helper as staging_helper
import traefik_gen.writer as writer
from traefik_gen.errors import WriteError
from traefik_gen.render import render
from traefik_gen.settings import load_settings
from traefik_gen.staging_helper import StagingHelper
from traefik_gen.sync import sync
from traefik_gen.writer import STAGING_DIR, EarlyStager, apply, lock, scan, staging_path

PREFIX = "zz-"


def _file(index: int, host: str = "a.test") -> bytes:
    router = {"rule": f"Host(`{index}.{host}`)", "service": "svc"}
    return render({"http": {"routers": {f"r{index}": router}}}, "yaml")


def _desired(count: int, host: str = "a.test") -> dict[str, bytes]:
    return {f"{PREFIX}{index:03}.yml": _file(index, host) for index in range(count)}


def _top_level(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}


def _staged(out: Path) -> list[str]:
    return sorted(p.name for p in (out / STAGING_DIR).iterdir() if p.name.endswith(".staged"))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "dynamic"
    directory.mkdir()
    return directory


@pytest.fixture
def staged_here(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names this process stages itself, because the helper did not."""
    names: list[str] = []
    real = writer._stage_one

    def recording(path: Path, content: bytes) -> None:
        names.append(path.name.removesuffix(".staged"))
        real(path, content)

    monkeypatch.setattr(writer, "_stage_one", recording)
    return names


def _offer_all(early: EarlyStager, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        early.offer(name, content)


def _stage_and_apply(out: Path, desired: dict[str, bytes], threshold: int = 4) -> None:
    state = scan(out, prefix=PREFIX)
    with EarlyStager(out, state, threshold=threshold) as early:
        _offer_all(early, desired)
        apply(out, desired, state, early=early)


def test_early_staging_writes_exactly_what_apply_alone_writes(tmp_path: Path) -> None:
    alone, early = tmp_path / "alone", tmp_path / "early"
    for directory in (alone, early):
        directory.mkdir()
        apply(directory, _desired(10), scan(directory, prefix=PREFIX))
    changed = {**_desired(20, "b.test"), f"{PREFIX}010.yml": _file(10)}

    apply(alone, changed, scan(alone, prefix=PREFIX))
    _stage_and_apply(early, changed)

    assert _top_level(early) == _top_level(alone) == changed
    assert _staged(early) == []


def test_nothing_reaches_the_directory_before_apply(out: Path) -> None:
    state = scan(out, prefix=PREFIX)
    with EarlyStager(out, state, threshold=2) as early:
        _offer_all(early, _desired(5))
        expected = [f"{name}.staged" for name in sorted(_desired(5))]
        deadline = time.monotonic() + 10
        while _staged(out) != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _staged(out) == expected
        assert _top_level(out) == {}
        apply(out, _desired(5), state, early=early)
    assert _top_level(out) == _desired(5)


def test_leaving_without_apply_discards_every_staged_file(out: Path) -> None:
    apply(out, _desired(3), scan(out, prefix=PREFIX))
    before = _top_level(out)

    with (
        pytest.raises(RuntimeError),
        EarlyStager(out, scan(out, prefix=PREFIX), threshold=2) as early,
    ):
        _offer_all(early, _desired(6, "b.test"))
        raise RuntimeError("the plan was refused after staging began")

    assert _top_level(out) == before
    assert _staged(out) == []


def test_unchanged_files_and_unacceptable_names_are_not_staged(out: Path) -> None:
    apply(out, _desired(3), scan(out, prefix=PREFIX))
    state = scan(out, prefix=PREFIX)
    with EarlyStager(out, state, threshold=1) as early:
        _offer_all(early, _desired(3))
        early.offer("zz-../escape.yml", _file(9))
        early.offer("other-prefix.yml", _file(9))
        assert _staged(out) == []


def test_a_staged_file_the_plan_no_longer_wants_is_discarded(out: Path) -> None:
    state = scan(out, prefix=PREFIX)
    with EarlyStager(out, state, threshold=2) as early:
        _offer_all(early, _desired(4))
        wanted = dict(list(_desired(4).items())[:2])
        apply(out, wanted, state, early=early)
    assert _top_level(out) == wanted
    assert _staged(out) == []


def test_a_file_changed_after_it_was_staged_is_staged_again_by_apply(out: Path) -> None:
    state = scan(out, prefix=PREFIX)
    final = {**_desired(4), f"{PREFIX}001.yml": _file(1, "changed.test")}
    with EarlyStager(out, state, threshold=2) as early:
        _offer_all(early, _desired(4))
        apply(out, final, state, early=early)
    assert _top_level(out) == final


def test_below_the_threshold_no_helper_runs_and_apply_stages_alone(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr(writer, "StagingHelper", lambda: started.append(1) or StagingHelper())
    _stage_and_apply(out, _desired(3), threshold=4)
    assert started == []
    assert _top_level(out) == _desired(3)


def test_the_helper_stages_every_file_so_this_process_stages_none(
    out: Path, staged_here: list[str]
) -> None:
    _stage_and_apply(out, _desired(12))
    assert staged_here == []
    assert _top_level(out) == _desired(12)


def test_a_helper_that_dies_leaves_every_file_to_be_staged_here(
    out: Path, staged_here: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging_helper, "_PROGRAM", "import os; os._exit(9)")
    _stage_and_apply(out, _desired(12))
    assert sorted(staged_here) == sorted(_desired(12))
    assert _top_level(out) == _desired(12)


def test_a_helper_that_cannot_start_leaves_every_file_to_be_staged_here(
    out: Path, staged_here: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(staging_helper.sys, "executable", str(tmp_path / "no-such-python"))
    _stage_and_apply(out, _desired(12))
    assert sorted(staged_here) == sorted(_desired(12))
    assert _top_level(out) == _desired(12)


def test_a_disk_error_in_the_helper_names_the_file_and_changes_nothing(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(out, _desired(3), scan(out, prefix=PREFIX))
    before = _top_level(out)
    # The helper's report when the fsync of the fourth file fails with EIO.
    program = f"import sys\nsys.stdin.buffer.read()\nsys.stdout.write('error 3 {errno.EIO}\\n')"
    monkeypatch.setattr(staging_helper, "_PROGRAM", program)

    with pytest.raises(WriteError) as caught:
        _stage_and_apply(out, _desired(12, "b.test"))

    fourth = sorted(_desired(12))[3]
    assert str(caught.value) == (
        f"cannot stage {out / fourth} as {staging_path(out, fourth)}: "
        f"{os.strerror(errno.EIO)}; nothing in {out} changed"
    )
    assert _top_level(out) == before
    assert _staged(out) == []


def test_the_helper_reports_the_file_it_could_not_stage(tmp_path: Path) -> None:
    helper = StagingHelper()
    targets = [tmp_path / "a", tmp_path / "b", tmp_path / "missing" / "c", tmp_path / "d"]
    for target in targets:
        assert helper.stage(target, b"content")
    report = helper.wait()
    assert (report.staged, report.failed, report.complete) == (2, (2, errno.ENOENT), False)
    assert [t.name for t in targets if t.exists()] == ["a", "b"]


def test_the_helper_stages_each_file_as_this_process_would(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        helper = StagingHelper()
        contents = {tmp_path / f"f{index}": os.urandom(index * 997) for index in range(40)}
        for path, content in contents.items():
            helper.stage(path, content)
        report = helper.wait()
    finally:
        os.umask(old_umask)
    assert (report.staged, report.failed, report.complete) == (40, None, True)
    assert {path: path.read_bytes() for path in contents} == contents
    assert {stat.S_IMODE(path.stat().st_mode) for path in contents} == {0o644}


def test_a_generation_of_many_owners_is_staged_early_with_the_same_bytes(
    tmp_path: Path, staged_here: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = tmp_path / "routes.yml"
    apps = [
        f"  - id: app{index}\n    routes:\n      - key: '1'\n        host: h{index}.test\n"
        f"        backend: {{host: app{index}, port: 80}}\n"
        for index in range(80)
    ]
    routes.write_text("apps:\n" + "".join(apps))
    offered: list[str] = []
    real_offer = EarlyStager.offer

    def counting(self: EarlyStager, name: str, content: bytes) -> None:
        offered.append(name)
        real_offer(self, name, content)

    monkeypatch.setattr(EarlyStager, "offer", counting)

    early = sync(load_settings(source=str(routes), out=tmp_path / "early", docker=False))
    preview = sync(
        load_settings(source=str(routes), out=tmp_path / "preview", docker=False), dry_run=True
    )

    assert len(offered) == 80
    # Only the marker, rendered after the last owner, is left for apply to stage.
    assert staged_here == sorted(set(early.files) - set(offered))
    assert early.files == preview.files
    assert _top_level(tmp_path / "early") == early.files


# A helper that takes a while per file, so it is still writing when it is looked at.
_SLOW = ("    path, content = ", "    time.sleep(0.05)\n    path, content = ")


def _slow_program() -> str:
    return "import time\n" + staging_helper._PROGRAM.replace(*_SLOW)


def _helpers_of(parent: int) -> list[int]:
    """The live staging helpers whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == parent and b"-I\0-S\0-c\0" in command:
            found.append(int(entry.name))
    return found


def test_the_helper_holds_the_directory_lock_while_it_stages(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging_helper, "_PROGRAM", _slow_program())
    with lock(out):
        state = scan(out, prefix=PREFIX)
        with EarlyStager(out, state, threshold=2) as early:
            _offer_all(early, _desired(10))
            (helper,) = _helpers_of(os.getpid())
            held = {os.readlink(fd) for fd in Path(f"/proc/{helper}/fd").iterdir()}
            assert str(out / STAGING_DIR / "lock") in held
            apply(out, _desired(10), state, early=early)
    assert _top_level(out) == _desired(10)


def test_a_refused_plan_stops_the_helper_instead_of_waiting_for_it(
    out: Path, staged_here: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging_helper, "_PROGRAM", _slow_program())
    started = time.monotonic()
    with (
        pytest.raises(RuntimeError),
        EarlyStager(out, scan(out, prefix=PREFIX), threshold=2) as early,
    ):
        _offer_all(early, _desired(100))
        raise RuntimeError("the removal guard refused the plan")
    # 100 files at 50 ms each would take the helper 5 s.
    assert time.monotonic() - started < 3
    assert _helpers_of(os.getpid()) == []
    assert staged_here == []
    assert _staged(out) == []
    assert _top_level(out) == {}


@pytest.mark.parametrize("directory", ["a\nb", "dynamic\n", "with space", "ünï ✓"])
def test_any_directory_name_is_staged_through_the_helper(
    tmp_path: Path, staged_here: list[str], directory: str
) -> None:
    neighbour = tmp_path / "a"
    neighbour.write_bytes(b"precious")
    out = tmp_path / directory
    out.mkdir()
    _stage_and_apply(out, _desired(12))
    assert staged_here == []
    assert _top_level(out) == _desired(12)
    assert neighbour.read_bytes() == b"precious"


_KILLED_MID_STAGING = """
import os, sys, time
from pathlib import Path
import traefik_gen.staging_helper as staging_helper
from traefik_gen.render import render
from traefik_gen.writer import EarlyStager, lock, scan

staging_helper._PROGRAM = "import time\\n" + staging_helper._PROGRAM.replace(
    "    path, content = ", "    time.sleep(0.05)\\n    path, content = "
)
out = Path(sys.argv[1])
with lock(out):
    early = EarlyStager(out, scan(out, prefix="zz-"), threshold=2).__enter__()
    for index in range(100):
        early.offer(f"zz-{index:03}.yml", render({"http": {}}, "yaml"))
    time.sleep(0.3)  # a few files staged, most not yet
    print(os.getpid(), flush=True)
    os._exit(9)  # as if killed: no cleanup
"""


def test_a_helper_dies_with_its_killed_parent_and_its_files_are_leftovers(out: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_STAGING, str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert child.returncode == 9
    # The helper was reparented when its parent died; it is gone within moments, not
    # after the 5 s its 100 slow files would take.
    deadline = time.monotonic() + 2
    while _helpers_of(1) + _helpers_of(int(child.stdout)) and time.monotonic() < deadline:
        time.sleep(0.02)
    with lock(out, blocking=False):
        assert 0 < len(_staged(out)) < 100
        apply(out, _desired(3), scan(out, prefix=PREFIX))
    assert _staged(out) == []
    assert _top_level(out) == _desired(3)
