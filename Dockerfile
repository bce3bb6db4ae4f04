# syntax=docker/dockerfile:1
#
# One image with all six service binaries (api-gateway, service-a, service-b, service-c,
# service-d, third-party-stub), the Alertmanager webhook receiver (alert-webhook) and their
# healthcheck probe in /usr/local/bin; the container's command picks one:
#
#   docker build -t otel-rust-demo/services:0.1.0 .
#   docker run --rm -e PORT=8084 otel-rust-demo/services:0.1.0 service-d
#
# docker-compose.yml builds it once and sets `command:` per service.
#
# Multi-platform (linux/amd64 + linux/arm64). Nothing here downloads an architecture-specific
# file: every base image is a multi-arch manifest and the compiler runs natively for each
# platform, so the non-native one runs under QEMU (slow for a Rust build: tens of minutes;
# a native arm64 builder node, `docker buildx create --append`, avoids that):
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/otel-rust-demo/services:0.1.0 --push .
#
# Caching: BuildKit cache mounts keep the cargo registry and the target directory between
# builds (the target cache is per platform), so a source change recompiles only the
# workspace crates. Secrets: none are baked in; credentials arrive as environment at run time.

ARG RUST_IMAGE=rust:1.95.0-slim-trixie
ARG RUNTIME_IMAGE=debian:13.7-slim

FROM ${RUST_IMAGE} AS builder
# gcc and libc6-dev come with the rust image; librdkafka (built by rdkafka-sys) also needs
# make, and zlib (found through pkg-config).
RUN apt-get update \
 && apt-get install -y --no-install-recommends make pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore admits only the manifests, the lock file and the crate sources.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY services services
ARG TARGETPLATFORM
ARG CARGO_PROFILE=release
# The binaries are copied out of the cache-mounted target dir within the same step.
RUN --mount=type=cache,id=otel-rust-demo-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=otel-rust-demo-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=otel-rust-demo-target-${TARGETPLATFORM},target=/src/target,sharing=locked \
    set -eux; \
    bins="api-gateway service-a service-b service-c service-d third-party-stub alert-webhook"; \
    pkgs=""; for b in $bins; do pkgs="$pkgs -p $b"; done; \
    cargo build --locked --profile "${CARGO_PROFILE}" $pkgs; \
    case "${CARGO_PROFILE}" in dev) dir=debug ;; *) dir="${CARGO_PROFILE}" ;; esac; \
    mkdir -p /out; \
    for b in $bins; do cp "target/$dir/$b" /out/; done; \
    # The healthcheck probe, linked statically (standard library only): the same file
    # also runs in the collector's image, which has no libc and no shell.
    host="$(rustc -vV | sed -n 's/^host: //p')"; \
    RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --locked --release -p healthcheck --target "$host"; \
    cp "target/$host/release/healthcheck" /out/

FROM ${RUNTIME_IMAGE} AS runtime
ARG RUNTIME_IMAGE
# Debian slim already has what the binaries link against (glibc, libgcc_s, zlib); add only
# the CA bundle (for https endpoints such as a remote collector).
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /out/ /usr/local/bin/
# licenses: the project's own code. The binaries also link crates under the licences
# deny.toml allows (MIT, BSD, ISC, Unicode, Zlib, ...) and librdkafka (BSD-2-Clause); the
# base layer is Debian's, under the licences of its packages (/usr/share/doc/*/copyright).
LABEL org.opencontainers.image.title="otel-rust-demo services" \
      org.opencontainers.image.description="api-gateway, service-a..d, third-party-stub, alert-webhook and healthcheck of the OpenTelemetry Rust demo; the command selects the binary" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    LOG_FORMAT=json
# Non-root, numeric so that no passwd entry (and no RUN under emulation) is needed.
USER 10001:10001
# Liveness on $PORT (every service answers GET /healthz); compose probes /readyz instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/healthcheck"]
CMD ["api-gateway"]
