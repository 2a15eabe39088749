#!/usr/bin/env bash
# Install everything on a fresh machine: a virtual environment in .venv with tf_magics, its
# [demo] extra (the local model, pandas, matplotlib: what Binder installs) and the development
# tools, plus Debian's Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "note: install Chromium (apt-get install chromium) to run the browser test" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# llama-cpp-python builds from source the first time (about 7 minutes on 2 cores); pip caches it.
.venv/bin/python -m pip install --quiet -e ".[dev,demo]"
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "installed: activate with . .venv/bin/activate"
