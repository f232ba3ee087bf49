"""Write a small search's results into OUTDIR, as a search does at its end; for tests/test_search_write.py.

    python search_writer.py OUTDIR STUDY KILL_AT [ROUNDS]

Counts the filesystem steps of the write (folders made, files written, renames, replaces, removals) and
ends the process as SIGKILL would (``os._exit``: no ``finally``, no clean-up) just before step KILL_AT
(0: never). Prints ``STEPS n`` when it was not killed. ROUNDS writes repeat the write (each a new front).
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path

out, study, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
steps = 0


def counted(fn):
    def step(*args, **kwargs):
        global steps
        steps += 1
        if steps == kill_at:
            os._exit(137)
        return fn(*args, **kwargs)

    return step


os.rename, os.replace, os.mkdir, shutil.rmtree = map(counted, (os.rename, os.replace, os.mkdir, shutil.rmtree))
Path.write_text = counted(Path.write_text)
tempfile.mkdtemp = counted(tempfile.mkdtemp)

from qconvert.search.front import SearchResult  # noqa: E402


class Space:
    def yaml(self, params, header):
        return f"{header}version: 1\ndefaults:\n  kernel: quantized_bits({params['bits']}, 0)\n"


for r in range(rounds):
    trials = [{"number": n, "state": "COMPLETE", "params": {"bits": b}, "ebops": 1000.0 * b, "val_accuracy": 0.5 + b / 20,
               "worker": os.getpid()} for n, b in enumerate((2, 4, 6 + r % 3))]
    result = SearchResult(outdir=str(out), cost="ebops", settings={"epochs": 1}, fp32={"val_accuracy": 0.95},
                          references={}, trials=trials, front=list(trials), chosen=trials[-1], study=study)
    result.write(Space(), lambda t, path: f"# trial {t['number']} of {os.getpid()}\n")
print("STEPS", steps)
