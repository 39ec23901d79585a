#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 from Debian's
# `kubernetes` source package, once, and prints the folder that holds them (nothing else on
# stdout; progress goes to stderr). Debian ships no binary package of these servers; the
# workarounds the recipe needs are in deploy/local/README.md (Gotchas).
#
# The folder is ${NIMBUSGUARD_CACHE:-$HOME/.cache/nimbusguard}/kubernetes-v1.20.2/bin and holds
#   kube-apiserver kube-controller-manager kube-scheduler   built here
#   kubectl                                                 Debian's kubernetes-client 1.20.2,
#                                                           extracted (not installed, see below)
#   VERSION                                                 v1.20.2 + provenance
# A complete bin/ is a cache hit: no apt, no lock wait beyond a check, well under a second.
# A miss takes 5-20 minutes on 2 cores and ~3 GB of scratch disk (deleted afterwards):
#   - enables Debian source packages (a deb-src twin of the deb entries) when none are set up;
#   - installs the missing ones of golang-go rsync etcd-server openssl curl
#     golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev
#     (apt-get install, retried after apt-get update; root or passwordless `sudo -n`);
#   - `apt-get source --download-only kubernetes`, unpacks it into the scratch folder
#     ${cache}/kubernetes-v1.20.2/scratch (source tree, GOPATH and Go build cache all there);
#   - REQUIRED patch: replaces the vendored reflect2 1.0.1 / json-iterator with Debian's
#     1.0.2 / 1.1.12 (1.0.1 under Go >= 1.18 crashes the apiserver on any JSON map with a
#     non-string key, e.g. a Node or a Pod with resources);
#   - `make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler"`
#     (GOPATH mode, GO111MODULE=off, as debian/rules does; plain `go build` does not work);
#   - kubectl comes from `apt-get download kubernetes-client` + dpkg-deb -x: installing that
#     package fails where the Google Cloud SDK `kubectl` package (1.32) owns /usr/bin/kubectl;
#   - copies the binaries into a temporary folder and renames it to bin/ (atomic).
# Concurrent callers wait on a lock (flock) for one build. Build output is logged to
# ${cache}/kubernetes-v1.20.2/build.log; its tail is printed on failure.
#
# Args: none.
# Env:  NIMBUSGUARD_CACHE            cache root (default $HOME/.cache/nimbusguard)
#       NIMBUSGUARD_KEEP_SCRATCH=1   keep the 2.3 GB scratch tree after the build (debugging)
# Exit: 0  bin folder printed on stdout
#       3  the build cannot be done on this machine (no apt-get / no root or sudo -n, packages
#          or the source cannot be downloaded, no Go, not enough disk); one-line reason on
#          stderr, so tests can skip with a clear message
#       1  any other failure (the build itself failed: see the log tail on stderr)
set -euo pipefail

K8S_VERSION=v1.20.2
# Commit of the v1.20.2 tag upstream; embedded in `--version` output as the release build does.
K8S_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
SERVERS=(kube-apiserver kube-controller-manager kube-scheduler)
ALL_BINS=("${SERVERS[@]}" kubectl)
PACKAGES=(golang-go rsync etcd-server openssl curl
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)
NEED_KB=$((3500 * 1024)) # free disk the build needs in the cache folder

me="build-control-plane.sh"
cache="${NIMBUSGUARD_CACHE:-$HOME/.cache/nimbusguard}"
vdir="$cache/kubernetes-$K8S_VERSION"
bin="$vdir/bin"

complete() {
  local b
  for b in "${ALL_BINS[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
  [[ -f "$bin/VERSION" && "$(head -n1 "$bin/VERSION")" == "$K8S_VERSION" ]]
}

# Fast path: a complete cache, no lock, no apt.
if complete; then
  echo "$bin"
  exit 0
fi

cannot() {
  echo "$me: cannot build Kubernetes $K8S_VERSION on this machine: $*" >&2
  exit 3
}

mkdir -p "$vdir" || cannot "cannot create cache folder $vdir"
exec 9>"$vdir/.build.lock"
flock 9
if complete; then # another caller built it while we waited
  echo "$bin"
  exit 0
fi

log="$vdir/build.log"
scratch="$vdir/scratch"
tmpbin="$vdir/.bin.tmp.$$"
: >"$log"
t_start=$SECONDS
t_stage=$SECONDS
stage() {
  echo "$me: [$((SECONDS - t_start))s total, previous stage $((SECONDS - t_stage))s] $*" >&2
  echo "=== $* ($(date -u +%FT%TZ))" >>"$log"
  t_stage=$SECONDS
}
fail() {
  echo "$me: FAILED: $* (log: $log); last lines:" >&2
  tail -n 40 "$log" | sed 's/^/  | /' >&2
  exit 1
}
cleanup() {
  rm -rf "$tmpbin"
  if [[ "${NIMBUSGUARD_KEEP_SCRATCH:-0}" != 1 ]]; then rm -rf "$scratch"; fi
}
trap cleanup EXIT

echo "$me: building Kubernetes $K8S_VERSION servers into $bin (once; 5-20 min, ~3 GB scratch)" >&2
rm -rf "$scratch" "$vdir"/.bin.tmp.*
avail_kb="$(df -Pk "$vdir" | awk 'NR==2 {print $4}')"
((avail_kb >= NEED_KB)) || cannot "only $((avail_kb / 1024)) MiB free in $vdir, the build needs $((NEED_KB / 1024)) MiB"

# ---- packages ---------------------------------------------------------------------------
command -v apt-get >/dev/null || cannot "no apt-get (the recipe needs Debian's packages)"
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  else
    sudo="none"
  fi
fi
export DEBIAN_FRONTEND=noninteractive
apt_root() {
  [[ "$sudo" != none ]] || cannot "installing packages needs root or passwordless sudo"
  $sudo apt-get -o DPkg::Lock::Timeout=600 "$@" >>"$log" 2>&1
}
updated=0
apt_update() {
  if ((updated == 0)); then
    stage "apt-get update"
    apt_root update -qq || cannot "apt-get update failed (no package mirror reachable?)"
    updated=1
  fi
}

# Source packages: a deb-src twin of the deb entries, when no deb-src is configured.
if ! grep -rqsE '^(Types:.*deb-src|deb-src[[:space:]])' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  stage "enabling Debian source packages (deb-src)"
  [[ "$sudo" != none ]] || cannot "enabling deb-src needs root or passwordless sudo"
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      $sudo tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
  elif [[ -f /etc/apt/sources.list ]] && grep -qE '^deb[[:space:]]' /etc/apt/sources.list; then
    sed -n 's/^deb[[:space:]]/deb-src /p' /etc/apt/sources.list |
      $sudo tee /etc/apt/sources.list.d/debian-src.list >/dev/null
  else
    cannot "no Debian apt source entry to derive a deb-src entry from"
  fi
  apt_update
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  stage "installing ${missing[*]}"
  if ! apt_root install -y -qq --no-install-recommends "${missing[@]}"; then
    apt_update
    apt_root install -y -qq --no-install-recommends "${missing[@]}" ||
      cannot "apt-get install ${missing[*]} failed (see $log)"
  fi
fi

# Debian's Go first: another Go on PATH may be too new for this tree.
if [[ -x /usr/lib/go/bin/go ]]; then export PATH="/usr/lib/go/bin:$PATH"; fi
command -v go >/dev/null || cannot "no Go toolchain after installing golang-go"
go_version="$(go version)"
echo "$go_version" >>"$log"

# ---- source -----------------------------------------------------------------------------
mkdir -p "$scratch"
stage "downloading Debian's kubernetes source package"
if ! (cd "$scratch" && apt-get source --download-only kubernetes >>"$log" 2>&1); then
  apt_update
  (cd "$scratch" && apt-get source --download-only kubernetes >>"$log" 2>&1) ||
    cannot "apt-get source kubernetes failed (deb-src not reachable?; see $log)"
fi
orig=("$scratch"/kubernetes_*.orig.tar.gz)
[[ -f "${orig[0]}" ]] || cannot "apt-get source kubernetes gave no orig tarball"
[[ "${orig[0]}" == *"${K8S_VERSION#v}.orig.tar.gz" ]] ||
  cannot "Debian's kubernetes source is $(basename "${orig[0]}"), not $K8S_VERSION"
src_pkg="$(basename "$(ls "$scratch"/kubernetes_*.dsc)" .dsc)"

stage "unpacking $(basename "${orig[0]}")"
tar -xzf "${orig[0]}" -C "$scratch" || fail "unpacking the source"
tree="$scratch/kubernetes-${K8S_VERSION#v}"
[[ -f "$tree/Makefile" && -d "$tree/vendor" ]] || fail "no $tree/Makefile or vendor/ after unpacking"

stage "swapping vendored reflect2 / json-iterator for Debian's (required under Go >= 1.18)"
gocode=/usr/share/gocode/src/github.com
for d in modern-go/reflect2 json-iterator/go; do
  [[ -d "$gocode/$d" ]] || fail "$gocode/$d missing (package not installed?)"
  rsync -a --delete --exclude BUILD "$gocode/$d/" "$tree/vendor/github.com/$d/" >>"$log" 2>&1 ||
    fail "rsync $d into vendor/"
done
reflect2_v="$(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
jsoniter_v="$(dpkg-query -W -f='${Version}' golang-github-json-iterator-go-dev)"

# ---- build ------------------------------------------------------------------------------
stage "make ${SERVERS[*]} (the long part; log: $log)"
mkdir -p "$tree/.go/src/k8s.io" "$scratch/home"
ln -sfn ../../.. "$tree/.go/src/k8s.io/kubernetes"
(
  cd "$tree"
  unset GOFLAGS GOROOT GO111MODULE GOBIN
  # hack/lib/golang.sh puts GOPATH and GOCACHE under _output/local/go, inside the scratch tree.
  export GOPATH="$tree/.go" CGO_ENABLED=0 GOPROXY=off \
    HOME="$scratch/home" KUBE_GIT_VERSION="$K8S_VERSION" KUBE_GIT_TREE_STATE=clean \
    KUBE_GIT_COMMIT="$K8S_COMMIT" KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler"
) >>"$log" 2>&1 || fail "make"

stage "fetching Debian's kubectl 1.20 (kubernetes-client) without installing it"
mkdir -p "$scratch/client"
(cd "$scratch/client" && apt-get download kubernetes-client >>"$log" 2>&1) ||
  cannot "apt-get download kubernetes-client failed (see $log)"
dpkg-deb -x "$scratch"/client/kubernetes-client_*.deb "$scratch/client/root" >>"$log" 2>&1 ||
  fail "dpkg-deb -x kubernetes-client"
client_v="$(dpkg-deb -f "$scratch"/client/kubernetes-client_*.deb Version)"

stage "installing binaries into $bin"
mkdir -p "$tmpbin"
for b in "${SERVERS[@]}"; do
  cp -L "$tree/_output/bin/$b" "$tmpbin/$b" || fail "no _output/bin/$b after make"
done
cp "$scratch/client/root/usr/bin/kubectl" "$tmpbin/kubectl" || fail "no usr/bin/kubectl in kubernetes-client"
chmod 0755 "$tmpbin"/*
got="$("$tmpbin/kube-apiserver" --version 2>&1)"
[[ "$got" == "Kubernetes $K8S_VERSION" ]] || fail "kube-apiserver --version says '$got'"
cat >"$tmpbin/VERSION" <<EOF
$K8S_VERSION
source: Debian source package $src_pkg (upstream orig tarball, Debian patches not applied)
vendor swap: reflect2 $reflect2_v, json-iterator $jsoniter_v (Debian packages)
go: $go_version
kubectl: Debian kubernetes-client $client_v
built: $(date -u +%FT%TZ) on $(uname -m), in $((SECONDS - t_start)) s
EOF
rm -rf "$bin"
mv "$tmpbin" "$bin"
complete || fail "bin folder incomplete after install"
if [[ "${NIMBUSGUARD_KEEP_SCRATCH:-0}" != 1 ]]; then
  stage "deleting the scratch tree $scratch"
  rm -rf "$scratch"
fi
stage "done: $(du -sh "$bin" | cut -f1) in $bin"
echo "$bin"
