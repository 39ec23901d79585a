# syntax=docker/dockerfile:1
# nimbusguard/operator: the `nimbusguard` binary, which runs the Kubernetes controller
# (`nimbusguard controller`, deploy/base/operator.yaml), with the bundled traces.
# Build from the repository root (BuildKit reads deploy/docker/operator.Dockerfile.dockerignore):
#   docker build -f deploy/docker/operator.Dockerfile -t nimbusguard/operator:dev .
#
# Why the traces: a policy served from a `nimbusguard run` folder (NimbusScaler policy
# `configMap:` or `file:`) is rebuilt from that run's config.toml, and rebuilding it loads the
# trace the config names (experiments::saved_agent -> runner::traffic, for the peak the
# observations are scaled by). Trace paths resolve against the working directory first, so
# `datasets/...` in a config finds /nimbusguard/datasets/... here.

FROM rust:1.95-bookworm AS build
# `experiments` depends on `workload`, hence on librdkafka built from source: see
# workload.Dockerfile for what that needs (python3 is the one thing added).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=nimbusguard-target \
    cargo build --release --locked -p experiments --bin nimbusguard \
    && mkdir -p /out \
    && cp target/release/nimbusguard /out/
# distroless/cc has glibc, libgcc and libstdc++ only: check the binary needs nothing else.
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
RUN libs=$(readelf -d /out/nimbusguard | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); \
    for lib in $libs; do \
      case "$lib" in \
        libc.so.*|libm.so.*|libgcc_s.so.*|libstdc++.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux-*) ;; \
        *) echo "nimbusguard needs $lib, which the runtime image does not have" >&2; exit 1 ;; \
      esac; \
    done

# No shell, no package manager; its `nonroot` user is 65532. The controller talks to the API
# server with the ServiceAccount's CA and token; the image's CA bundle serves MLflow over https.
FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /nimbusguard
COPY --from=build /out/nimbusguard /usr/local/bin/nimbusguard
COPY datasets/*.csv datasets/README.md datasets/manifest.json datasets/
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["nimbusguard"]
CMD ["--help"]
