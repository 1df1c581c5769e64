#!/usr/bin/env bash
# ditkit's one setup step: system packages, .venv, CPU torch (kept if a CUDA torch is already there),
# then every workspace package editable with its dev extras. Idempotent; prints what it does.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
APT_PKGS="espeak-ng libusb-1.0-0 libgl1 libegl1 libosmesa6 libglu1-mesa sox libsndfile1 chromium"

say() { printf '\n[setup] %s\n' "$*"; }

if command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    say "apt-get install:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  else
    say "system packages present: $APT_PKGS"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $($PY --version)"
  $PY -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip setuptools wheel

if $VENV/bin/python -c "import torch, sys; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then
  say "keeping the CUDA torch already installed: $($VENV/bin/python -c 'import torch; print(torch.__version__)')"
else
  say "installing CPU torch==2.13.0"
  $PIP install -q torch==2.13.0
fi

# torchaudio from PyPI is a CUDA build: install without deps and drop its native libraries so the
# pure-Python transforms import on a CPU torch (I/O goes through soundfile).
if ! $VENV/bin/python -c "import torchaudio.transforms" 2>/dev/null; then
  say "installing torchaudio==2.11.0 (pure-Python transforms)"
  $PIP install -q --no-deps torchaudio==2.11.0
  if ! $VENV/bin/python -c "import torch,sys; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then
    rm -f "$VENV"/lib/python3*/site-packages/torchaudio/lib/*.so
  fi
fi

say "installing workspace packages (editable) with dev extras"
specs=(-e "packages/core[dev]")
for p in packages/*/pyproject.toml; do
  d=$(dirname "$p"); [ "$d" = packages/core ] || specs+=(-e "$d[dev]")
done
echo "[setup] pip install ${specs[*]} -e .[dev]"
$PIP install -q "${specs[@]}" -e ".[dev]"
$VENV/bin/python -c "import torch, ditkit_core; print('[setup] torch', torch.__version__, '| ditkit_core OK')"
say "done: run 'make test'"
