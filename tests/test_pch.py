"""The emulation's precompiled header: built once per compiler and flags, used by g++, never required."""

from __future__ import annotations

import subprocess
from pathlib import Path

import hls4ml

from qconvert.export.pch import precompiled_header

AP_TYPES = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
FLAGS = "-O1 -fPIC -std=c++17"
SOURCE = '#include "ap_fixed.h"\nap_fixed<6, 2> f(ap_fixed<6, 2> x) { return x * x; }\n'


def test_the_header_is_built_once_per_flags_and_g_plus_plus_uses_it(tmp_path):
    header = precompiled_header("g++", FLAGS, AP_TYPES, cache=tmp_path)
    assert header is not None and header.with_name(header.name + ".gch").stat().st_size > 1_000_000
    built = header.with_name(header.name + ".gch").stat().st_mtime_ns
    assert precompiled_header("g++", FLAGS, AP_TYPES, cache=tmp_path) == header
    assert header.with_name(header.name + ".gch").stat().st_mtime_ns == built  # not built again
    assert [p.name for p in tmp_path.iterdir()] == [header.parent.name]  # no scratch folder left

    (tmp_path / "f.cpp").write_text(SOURCE)
    # -H lists each header read; "! NAME.gch" marks a precompiled header that g++ used instead of the text
    done = subprocess.run(
        ["g++", *FLAGS.split(), f"-I{AP_TYPES}", "-include", str(header), "-Winvalid-pch", "-H", "-c", "f.cpp"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    assert f"! {header}.gch" in done.stderr

    other = precompiled_header("g++", FLAGS.replace("-O1", "-O2"), AP_TYPES, cache=tmp_path)
    assert other is not None and other.parent != header.parent  # a header is valid for its own flags only


def test_without_a_header_to_build_the_compile_goes_on_without_one(tmp_path):
    assert precompiled_header("g++", "--no-such-flag", AP_TYPES, cache=tmp_path / "a") is None
    assert precompiled_header("g++", FLAGS, tmp_path / "no_ap_types", cache=tmp_path / "b") is None
    assert precompiled_header("no-such-compiler", FLAGS, AP_TYPES, cache=tmp_path / "c") is None
    blocked = tmp_path / "a_file"  # the cache cannot be made (a file is in the way; root ignores modes)
    blocked.write_text("")
    assert precompiled_header("g++", FLAGS, AP_TYPES, cache=blocked / "pch") is None
    assert not list((tmp_path / "a").glob("*/*.gch"))
