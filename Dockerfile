# Pedidos Veloz - one image, one binary, four components.
# The component is chosen by the container command:
#   docker run IMAGE                  -> gateway (default CMD)
#   docker run IMAGE orders|payments|inventory|migrate|healthcheck
#   docker run --entrypoint /usr/local/bin/pedidos-veloz IMAGE
#                                     -> all four components in one process
#                                        (overriding the entrypoint clears CMD;
#                                        SQLite under /data)
#
# Stages:
#   chef     - pinned Rust toolchain + pinned cargo-chef
#   planner  - computes the dependency "recipe" from the manifests
#   builder  - builds dependencies only (cached layer, invalidated only when
#              Cargo.toml/Cargo.lock change), then the project sources
#   runtime  - distroless/cc (glibc, CA certs, tzdata, no shell, no package
#              manager), runs as uid/gid 65532 ("nonroot")
#
# Multi-arch without emulation: chef, planner and builder run on the build
# machine's own platform (FROM --platform=$BUILDPLATFORM) and cross-compile for
# the image's platform ($TARGETARCH: amd64 or arm64, set by BuildKit from
# `docker buildx build --platform linux/amd64,linux/arm64`). Only a cross build
# installs anything more: Debian's cross gcc for the target (the linker, and the
# C compiler of ring and the bundled SQLite) and the target's Rust standard
# library. A native build (the default `docker build`, `docker compose up
# --build`) installs nothing and produces the same binary as before.
#
# No `# syntax=` directive on purpose: the builder's built-in Dockerfile
# frontend covers everything used here, and the directive would make every
# build fetch docker/dockerfile from Docker Hub (fails in offline builds).
#
# Pinning: the Rust toolchain and cargo-chef are pinned by version below. The
# distroless project publishes no version tags (only :nonroot/:latest/digests);
# for fully reproducible builds pin the digest as well, e.g.
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot
# and use gcr.io/distroless/cc-debian12:nonroot@sha256:<digest>.

# Rust 1.95 is the toolchain the project is developed and tested with
# (workspace rust-version = 1.85). Builder and runtime are both Debian 12
# (bookworm) so the glibc the binary links against matches at run time.
# renovate: datasource=docker depName=rust
ARG RUST_VERSION=1.95.0
ARG DEBIAN_CODENAME=bookworm

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-${DEBIAN_CODENAME} AS chef
# renovate: datasource=crate depName=cargo-chef
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}" \
    && rm -rf "${CARGO_HOME}/registry"
WORKDIR /src

FROM chef AS planner
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# The image's architecture (BuildKit sets it; empty = the build machine's own).
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Cross linkers and C compilers per Rust target (Debian's gcc-<triple> names).
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    AR_x86_64_unknown_linux_gnu=x86_64-linux-gnu-ar
# The cross gcc is Debian 12's own (same glibc as the runtime image); its exact
# version follows the base image's point release, so it is not pinned (DL3008).
# hadolint ignore=DL3008
RUN set -eu; \
    build_arch="$(dpkg --print-architecture)"; \
    target_arch="${TARGETARCH:-$build_arch}"; \
    case "$target_arch" in \
      amd64) rust_target=x86_64-unknown-linux-gnu; gcc_triple=x86-64-linux-gnu ;; \
      arm64) rust_target=aarch64-unknown-linux-gnu; gcc_triple=aarch64-linux-gnu ;; \
      *) echo "unsupported TARGETARCH: $target_arch (amd64 or arm64)" >&2; exit 1 ;; \
    esac; \
    if [ "$target_arch" != "$build_arch" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends "gcc-$gcc_triple" "libc6-dev-$target_arch-cross"; \
      rm -rf /var/lib/apt/lists/*; \
      rustup target add "$rust_target"; \
    fi; \
    echo "$rust_target" > /rust-target; \
    echo "building on $build_arch for $target_arch ($rust_target)"
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is reused as long as the recipe is unchanged.
# Cargo profile of the build: `release` (fat LTO, one codegen unit) for every image
# that is published or deployed; `ci-image` (no LTO, parallel codegen, a third of
# the build time) only where the image is built to be exercised, not measured.
ARG CARGO_PROFILE=release
RUN cargo chef cook --profile "${CARGO_PROFILE}" --locked --target "$(cat /rust-target)" -p pedidos-veloz --recipe-path recipe.json
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# Commit of the build, exported by the binary in its build_info metric. Declared
# after the dependency layer so that a new commit does not invalidate it.
ARG GIT_SHA=unknown
ENV SQLX_OFFLINE=true
RUN rust_target="$(cat /rust-target)" \
    && GIT_SHA="${GIT_SHA}" cargo build --profile "${CARGO_PROFILE}" --locked --target "$rust_target" -p pedidos-veloz \
    && install -D -m 0755 "target/$rust_target/${CARGO_PROFILE}/pedidos-veloz" /out/bin/pedidos-veloz \
    && install -d -m 0750 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="pedidos-veloz" \
      org.opencontainers.image.description="Pedidos Veloz order platform: api-gateway, pedidos, pagamentos and estoque services in one binary" \
      org.opencontainers.image.licenses="MIT"
COPY --from=builder /out/bin/pedidos-veloz /usr/local/bin/pedidos-veloz
# Only used in SQLite (all-in-one) mode; in PostgreSQL mode nothing is written
# and the root filesystem can be mounted read-only.
COPY --from=builder --chown=65532:65532 /out/data /data
ENV PEDIDOS_DATA_DIR=/data \
    LOG_FORMAT=json \
    LOG_LEVEL=info
WORKDIR /data
USER 65532:65532
EXPOSE 5000 5001 5002 5003
# No curl/wget/shell in the image: the binary probes its own /readyz
# (http://127.0.0.1:$PORT/readyz) and exits 0 only on HTTP 200.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/pedidos-veloz", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/pedidos-veloz"]
CMD ["gateway"]
