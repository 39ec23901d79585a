# syntax=docker/dockerfile:1
# nimbusguard/workload: the workload app (`workload-app`) and the load generator (`loadgen`),
# with the bundled traces and experiment configs loadgen replays (deploy/base/loadgen.yaml).
# Build from the repository root (the context is the whole workspace; BuildKit reads
# deploy/docker/workload.Dockerfile.dockerignore, which keeps target/ and results/ out):
#   docker build -f deploy/docker/workload.Dockerfile -t nimbusguard/workload:dev .

FROM rust:1.95-bookworm AS build
# rdkafka builds librdkafka from source (rdkafka-sys, mklove `configure` + `make libs`): a C
# compiler, GNU make and bash, all in this image, plus python3 for librdkafka's linker-script
# generator (lds-gen.py), installed here because nothing guarantees it is. zlib comes from
# libz-sys (libz-static), built with the same C compiler; no cmake, OpenSSL or curl is used
# (rdkafka-sys passes --disable-ssl, --disable-curl and friends without those features).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and target/ live in BuildKit cache mounts (shared with operator.Dockerfile), so
# a rebuild after a source change recompiles only the workspace crates. The binaries are
# copied out of the mount, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=nimbusguard-target \
    cargo build --release --locked -p workload --bins \
    && mkdir -p /out \
    && cp target/release/workload-app target/release/loadgen /out/
# The runtime image has glibc, libgcc and libstdc++ only: refuse a binary that would need more
# (say a librdkafka that picked up a system library) here, rather than as a crash in the cluster.
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
RUN for bin in /out/*; do \
      libs=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); \
      for lib in $libs; do \
        case "$lib" in \
          libc.so.*|libm.so.*|libgcc_s.so.*|libstdc++.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux-*) ;; \
          *) echo "$bin needs $lib, which the runtime image does not have" >&2; exit 1 ;; \
        esac; \
      done; \
    done

# debian:bookworm-slim rather than distroless: loadgen's Deployment loops replays in /bin/sh.
FROM debian:bookworm-slim
WORKDIR /nimbusguard
COPY --from=build /out/workload-app /out/loadgen /usr/local/bin/
# Relative paths resolve against the working directory, as in the repository: loadgen's
# `--config experiments/configs/quickstart.toml` finds its trace datasets/nasa_http_jul1995_1min.csv.
# README.md and manifest.json carry the traces' sources and licences.
COPY datasets/*.csv datasets/README.md datasets/manifest.json datasets/
COPY experiments/configs/*.toml experiments/configs/
USER 65532:65532
EXPOSE 8080
# The Deployments set their own command; this default serves the app on every interface.
CMD ["workload-app", "--listen", "0.0.0.0:8080"]
