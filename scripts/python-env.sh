#!/usr/bin/env bash
# Creates, once, the Python virtual environment the tests use (scripts/requirements-test.txt:
# MLflow's server and client, headless Jupyter, polars, matplotlib) and prints its bin folder.
# Re-installs when the requirements change. Safe to call from concurrent tests (flock).
# NIMBUSGUARD_PYENV overrides the location (default target/pyenv).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NIMBUSGUARD_PYENV:-$root/target/pyenv}"
req="$root/scripts/requirements-test.txt"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "python-env: installing $req into $venv (about 2 minutes, once)" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" >"$stamp"
fi
echo "$venv/bin"
