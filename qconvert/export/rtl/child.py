"""``python -m qconvert.export.rtl.child R W``: the process that solves da4ml's constant matrices for
:class:`~qconvert.export.rtl.solver.Solver` (jobs read from fd R, answers written to fd W)."""

import sys

from .solver import serve

if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
