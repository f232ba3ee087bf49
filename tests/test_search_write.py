"""A search's results (search.json, pareto.png, front/ and the mark of the study that wrote them) are written so
that a kill at any moment leaves a folder the same study resumes in, and two workers sharing the folder never
interleave their writes."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qconvert.errors import OutputError
from qconvert.search.front import STUDY_MARK, check_outdir

WRITER = Path(__file__).resolve().parent / "search_writer.py"


def write(out: Path, kill_at: int = 0, study: str = "s1", rounds: int = 1) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(WRITER), str(out), study, str(kill_at), str(rounds)],
                          capture_output=True, text=True, timeout=120)


def assert_resumable(out: Path, study: str = "s1") -> None:
    check_outdir(out, study)  # the same study may write here again (raises OutputError otherwise)
    if (out / "search.json").exists():
        assert json.loads((out / "search.json").read_text())["study"] == study
    if (out / "front").exists():
        assert (out / "front" / STUDY_MARK).read_text() == study + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("earlier_results", [False, True])
def test_a_kill_at_any_step_of_the_write_leaves_the_folder_resumable(tmp_path, earlier_results):
    probe = tmp_path / "probe"
    probe.mkdir()
    done = write(probe)
    assert done.returncode == 0, done.stderr
    steps = int(done.stdout.split()[-1])
    assert steps >= 8  # staging folder, three rule files, the mark, renames, the figure, search.json
    for kill_at in range(1, steps + 1):
        out = tmp_path / f"k{kill_at}"
        shutil.copytree(probe, out) if earlier_results else out.mkdir()
        killed = write(out, kill_at)
        assert killed.returncode == 137, (kill_at, killed.stderr)
        assert_resumable(out)
        if (out / "front").exists() or (out / "search.json").exists():  # and another study may not
            with pytest.raises(OutputError, match="choose another -o"):
                check_outdir(out, "another-study")
        again = write(out)  # the resumed search writes its results over whatever the kill left
        assert again.returncode == 0, (kill_at, again.stderr)
        assert_resumable(out)
        assert sorted(p.name for p in out.iterdir()) == ["front", "pareto.png", "search.json"]  # no leftovers
        assert sorted(p.name for p in (out / "front").iterdir()) == [STUDY_MARK, "00.yaml", "01.yaml", "02.yaml"]


@pytest.mark.slow
def test_two_workers_writing_into_one_folder_take_turns(tmp_path):
    workers = [subprocess.Popen([sys.executable, str(WRITER), str(tmp_path), "s1", "0", "8"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err  # without the lock, one worker's rename meets the other's folder
    assert_resumable(tmp_path)
    summary = json.loads((tmp_path / "search.json").read_text())
    headers = {(tmp_path / "front" / f"{i:02d}.yaml").read_text().splitlines()[0].split()[-1] for i in range(3)}
    assert len(headers) == 1  # every rule file of the front comes from one write, not a mix of two
    assert {t["worker"] for t in summary["trials"]} == {int(h) for h in headers}  # and search.json from that write
