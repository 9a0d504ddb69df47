#!/usr/bin/env bash
# Installs what CausalFusion Lab needs on a Debian machine, and only what is missing:
#   Debian: libopenblas-dev (optional native GEMM: the `nblas` addon builds against it), build tools for node-gyp,
#           dataset-fashion-mnist (the second dataset); Jupyter (notebook, nbconvert, nbclient) and
#           jupyter_kernel_test for the CausalFusion kernel and its tests; chromium for the browser checks of the
#           notebooks' HTML exports; the Vulkan loader and Mesa's CPU Vulkan driver (lavapipe) >= 25, so that every
#           machine has a WebGPU adapter for the webgpu backend's tests (Debian 12's own Mesa 22.3 is refused by
#           Dawn: on bookworm they come from bookworm-backports);
#   npm:    the locked packages (npm ci) when node_modules is absent or older than package-lock.json;
#   native: the fused CPU kernels (toolkit/native, against OpenBLAS) when their source is newer than the build;
#           when they cannot build, the toolkit runs tfjs ops instead (slower, same results).
# Idempotent and quick when everything is there. Needs root (or sudo) only when a Debian package is missing.
# Without apt-get / dpkg it says in one line what it skips and what that costs, and installs the rest.
set -euo pipefail
cd "$(dirname "$0")/../.."

DEBS=(libopenblas-dev python3 make g++ dataset-fashion-mnist jupyter-notebook jupyter-nbconvert python3-nbclient python3-jupyter-kernel-test chromium)

# Machines without apt (a Mac, another Linux): the npm packages and the main job need none of the Debian packages.
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
  echo "[setup] no apt-get / dpkg: skipping the Debian packages (${DEBS[*]} mesa-vulkan-drivers); training and sampling work without them. What that costs: the fused CPU kernels build only where a C compiler and OpenBLAS are installed (else the tfjs ops run, slower); without Mesa's lavapipe the WebGPU tests cannot run (a Mac's Metal GPU still runs the webgpu backend); Fashion-MNIST needs its files; notebooks and npm test need Jupyter (python3 -m pip install notebook nbconvert nbclient jupyter_kernel_test) and Chromium"
else
  missing=()
  for p in "${DEBS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "[setup] installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi

  # WebGPU adapter on any machine: Dawn (npm `webgpu`) accepts lavapipe from Mesa 25 on.
  mesa_version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  if ! dpkg -s libvulkan1 >/dev/null 2>&1 || ! dpkg --compare-versions "${mesa_version:-0}" ge 25; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    target=()
    if [ "$codename" = bookworm ]; then
      echo "[setup] installing Mesa's Vulkan driver (lavapipe) from bookworm-backports for WebGPU"
      if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
      fi
      target=(-t bookworm-backports)
    else
      echo "[setup] installing Mesa's Vulkan driver (lavapipe) for WebGPU"
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${target[@]}" mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

bash toolkit/native/build.sh || echo "[setup] fused CPU kernels not built (the wasm backend uses tfjs ops instead)"
