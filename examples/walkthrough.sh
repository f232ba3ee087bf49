#!/usr/bin/env bash
# The README's commands end to end, on data that ships here, as a newcomer runs them after the two set-up
# commands (pip install -e ".[dev]"; pytest). Run from the repository root:
#
#     bash examples/walkthrough.sh [OUTDIR]        # default: a new temporary folder; about 5 minutes on 2 cores
#
# Every step must exit 0 (set -e); each prints what it made. Nothing is written outside OUTDIR.
set -euo pipefail

OUT="${1:-$(mktemp -d -t qconvert-walkthrough-XXXXXX)}"
mkdir -p "$OUT"
MODEL=examples/jet_tagging/keras_model_fp32.h5
JETS=examples/jet_tagging/jets_pythia.npz
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "the commands and the shipped presets"
qconvert --help
qconvert rules list
qconvert rules cat 6bit-auto > "$OUT/my_rules.yaml"   # a preset to copy and edit
qconvert rules check "$OUT/my_rules.yaml"

step "main job on the shipped example (README: 'Main job, on the example that ships here')"
qconvert "$MODEL" --rules rules/6bit.yaml -o "$OUT/jet_6bit.keras" --hls4ml "$OUT/jet_prj"

step "what the rules do to each layer, calibrated on the simulated jets, before anything is converted"
qconvert rules show "$MODEL" --rules 6bit-auto --data "$JETS"

step "calibration, QAT and the hls4ml check on the simulated jets"
qconvert "$MODEL" --rules 6bit-auto --data "$JETS" --epochs 5 -o "$OUT/jet_qat.keras" --report "$OUT/report.json" \
    --hls4ml "$OUT/jet_qat_prj"

step "cost-aware QAT to at most 8,000 EBOPs"
qconvert "$MODEL" --rules 8bit-auto --data "$JETS" --epochs 10 --target-ebops 8000 -o "$OUT/jet_8k.keras"

step "RTL without Vivado (da4ml, Verilator, yosys) and QONNX"
qconvert rtl "$OUT/jet_qat.keras" -o "$OUT/rtl" --data "$JETS"
qconvert qonnx "$OUT/jet_qat.keras" -o "$OUT/jet.onnx" --data "$JETS"

step "migrate the source that builds the model"
qconvert migrate examples/jet_tagging/make_model.py --rules rules/6bit.yaml -o "$OUT/migrated"

step "a small search on the digits MLP's space"
qconvert demo --model mlp --epochs 5 -o "$OUT/demo"
qconvert search "$OUT/demo/fp32.keras" --rules examples/search/digits_mlp_space.yaml --data "$OUT/demo/digits.npz" \
    -o "$OUT/search" --trials 4 --epochs 3

step "done: everything is in $OUT"
ls "$OUT"
