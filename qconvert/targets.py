"""The closed sets of names the export targets take: hls4ml backends, io types and strategies, yosys families.

Plain tuples, no imports: the CLI offers them as choices without loading the export stage (``qconvert --help``
stays fast), and the export stage checks its options against the same tuples.
"""

from __future__ import annotations

__all__ = ["BACKENDS", "DA", "DEFAULT_MAX_MULTIPLIES", "DEFAULT_SOLVE_TIMEOUT", "DEFAULT_SYNTH_TIMEOUT", "FAMILIES", "IO_TYPES", "STRATEGIES",
           "SYNTHESIS_TOOLS"]

#: hls4ml backends whose io_parallel / io_stream templates qconvert derives configurations for, and the program
#: each one's hls4ml ``build()`` runs (hls4ml 1.3: Vitis runs ``vitis-run``).
SYNTHESIS_TOOLS = {"Vitis": "vitis-run", "Vivado": "vivado_hls"}
BACKENDS = tuple(SYNTHESIS_TOOLS)
IO_TYPES = ("io_parallel", "io_stream")
#: hls4ml's strategies; distributed_arithmetic (da4ml, hls4ml's "da" extra) also estimates LUTs per layer.
STRATEGIES = ("Latency", "Resource", "distributed_arithmetic")
DA = "distributed_arithmetic"
#: yosys ``synth_xilinx -family`` values (yosys 0.23): UltraScale+, UltraScale, 7-series, Virtex-6, Spartan-6, ...
FAMILIES = ("xcup", "xcu", "xc7", "xc6v", "xc6s", "xc5v", "xc4v", "xc3s", "xc2v", "xc2vp", "xcve")
#: The RTL's size budget: nonzero weights times output positions, summed over the model (a digits CNN of 8×8
#: images with a 16-filter 3×3 Conv2D and a 256→32 Dense unrolls about 17,600; the seed's jet tagger 4,256).
DEFAULT_MAX_MULTIPLIES = 32_768
#: The RTL's time budget for one layer's constant-matrix solve (da4ml), in seconds.
DEFAULT_SOLVE_TIMEOUT = 300.0
#: The RTL's time budget for yosys, in seconds: past it yosys is stopped and da4ml's estimate stands (a note).
DEFAULT_SYNTH_TIMEOUT = 600.0
