#!/usr/bin/env bash
# Builds the optional fused CPU kernels (cfkernels.c) into build/cfkernels.node, when the source is newer.
# Needs a C compiler, Node's headers and OpenBLAS (libopenblas-dev); without them it says why and exits 1,
# and the toolkit keeps its tfjs-op path (the same results, slower).
set -euo pipefail
cd "$(dirname "$0")"
out=build/cfkernels.node
[ -f "$out" ] && [ "$out" -nt cfkernels.c ] && [ "$out" -nt build.sh ] && exit 0
headers=$(node -p "require('path').resolve(process.execPath, '../../include/node')")
[ -f "$headers/node_api.h" ] || { echo "Node's headers not found at $headers"; exit 1; }
# -fno-trapping-math and -fno-math-errno let the compiler vectorise the clamps of exp_approx and sqrtf (no
# kernel reads FP traps or errno).
# AVX2 + FMA where the CPU has them (x86-64-v3, every x86 server since 2015); the build runs where it is used
arch=()
if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo; then arch=(-mavx2 -mfma); fi
command -v cc >/dev/null 2>&1 || { echo "no C compiler (cc) found"; exit 1; }
# macOS: Node resolves the addon's N-API symbols at load time; OpenBLAS from Homebrew where it is installed
platform=()
if [ "$(uname)" = Darwin ]; then
  platform=(-undefined dynamic_lookup)
  if prefix=$(brew --prefix openblas 2>/dev/null); then platform+=(-I"$prefix/include" -L"$prefix/lib"); fi
fi
mkdir -p build
if ! cc -O3 -fno-trapping-math -fno-math-errno "${arch[@]}" -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fPIC -shared \
  -I"$headers" "${platform[@]}" cfkernels.c -o "$out.tmp" -lopenblas -lpthread -lm 2>build/cc.log; then
  echo "the compile failed (is OpenBLAS installed? the compiler's words: toolkit/native/build/cc.log)"
  exit 1
fi
mv "$out.tmp" "$out"
echo "[setup] built toolkit/native/$out"
