#!/usr/bin/env bash
# CI SCAFFOLDING: builds the stand-in base images (README.md beside this file) under
# the exact names used by ../../Dockerfile and ../../docker-compose.yml.
#   bash .ci/standins/build.sh        (needs a running Docker engine with buildx)
# Prints one line per image: built or cached. Exits non-zero if any image is missing
# at the end. Caches: ${PV_CI_CACHE:-/var/cache/pv-ci}/debootstrap/*.tar (the Debian
# trees) and the images themselves (label io.pedidos-veloz.ci.standin=<recipe hash>).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${PV_CI_CACHE:-/var/cache/pv-ci}"
MIRROR="${PV_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LABEL=io.pedidos-veloz.ci.standin
mkdir -p "$CACHE/debootstrap" "$CACHE/ctx"

say() { printf '[standins] %s\n' "$*"; }  # in base_image: >&2, its stdout is the key
die() { printf '[standins] FAIL %s\n' "$*" >&2; exit 1; }
sha() { sha256sum | cut -c1-16; }
label_of() { docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }

command -v debootstrap >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

# ---- the names, read from the project's own files ---------------------------
arg_default() { sed -n "s/^ARG $1=\\(.*\\)$/\\1/p" "$ROOT/Dockerfile" | head -n 1; }
RUST_VERSION="$(arg_default RUST_VERSION)"
DEBIAN_CODENAME="$(arg_default DEBIAN_CODENAME)"
[ -n "$RUST_VERSION" ] && [ -n "$DEBIAN_CODENAME" ] || die "RUST_VERSION/DEBIAN_CODENAME not found in Dockerfile"
RUST_IMAGE="rust:${RUST_VERSION}-slim-${DEBIAN_CODENAME}"
DISTROLESS_IMAGE="$(sed -n 's/^FROM \(gcr\.io\/distroless\/[^ ]*\).*/\1/p' "$ROOT/Dockerfile" | head -n 1)"
[ -n "$DISTROLESS_IMAGE" ] || die "no distroless runtime stage found in Dockerfile"
grep -q "^FROM .*rust:\${RUST_VERSION}-slim-\${DEBIAN_CODENAME}" "$ROOT/Dockerfile" \
  || die "Dockerfile no longer builds FROM rust:\${RUST_VERSION}-slim-\${DEBIAN_CODENAME}: update the stand-ins"
# The images of the compose file that have a stand-in here (by repository name).
compose_images() { # compose_images <repository>: every image of that repository in the compose file
  docker compose -f "$ROOT/docker-compose.yml" config --format json 2>/dev/null | python3 -c '
import json, sys
for svc in json.load(sys.stdin)["services"].values():
    image = svc.get("image", "")
    if image.rsplit(":", 1)[0] == sys.argv[1]:
        print(image)' "$1" | sort -u
}
POSTGRES_IMAGE="$(compose_images postgres | head -n 1)"
PROMETHEUS_IMAGE="$(compose_images prom/prometheus | head -n 1)"
ALERTMANAGER_IMAGE="$(compose_images prom/alertmanager | head -n 1)"
[ -n "$POSTGRES_IMAGE" ] || die "no postgres image in docker-compose.yml"
[ -n "$PROMETHEUS_IMAGE" ] || die "no prom/prometheus image in docker-compose.yml"
PG_MAJOR="$(printf '%s' "${POSTGRES_IMAGE#*:}" | sed -n 's/^\([0-9][0-9]*\).*/\1/p')"
[ -n "$PG_MAJOR" ] || die "cannot read the PostgreSQL major version from $POSTGRES_IMAGE"

# ---- Debian trees: debootstrap once, kept as a tarball, imported once --------
base_image() { # base_image <suite> -> pv-ci/debian-minbase:<suite>
  local suite="$1" key tar img="pv-ci/debian-minbase:$1"
  key="$(printf 'minbase %s %s v1' "$suite" "$MIRROR" | sha)"
  tar="$CACHE/debootstrap/$suite-minbase-$key.tar"
  if [ "${PV_CI_REFRESH:-0}" = 1 ]; then rm -f "$tar"; fi
  if [ ! -s "$tar" ]; then
    local t0=$SECONDS dir
    dir="$(mktemp -d "$CACHE/debootstrap/tree.XXXXXX")"
    say >&2 "debootstrap --variant=minbase $suite ($MIRROR)"
    if ! debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" > "$dir.log" 2>&1; then
      tail -n 20 "$dir.log" >&2
      rm -rf "$dir" "$dir.log"
      die "debootstrap $suite failed"
    fi
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir.log"
    tar -C "$dir" --numeric-owner -cf "$tar.tmp" .
    rm -rf "$dir"
    mv "$tar.tmp" "$tar"
    say >&2 "debootstrap $suite: $(( SECONDS - t0 )) s, $(du -m "$tar" | cut -f1) MiB tarball cached"
  fi
  if [ "$(label_of "$img")" != "$key" ] || [ "${PV_CI_REFRESH:-0}" = 1 ]; then
    docker import --change "LABEL $LABEL=$key" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' "$tar" "$img" > /dev/null
    say >&2 "imported $img"
  fi
  printf '%s\n' "$key"
}

recipe_key() { # recipe_key <image> <dir> <base key> [build args...]
  local image="$1" dir="$2" basekey="$3"
  shift 3
  ( cd "$HERE" && find "$dir" -type f -print0 | sort -z | xargs -0 sha256sum
    printf '%s %s %s\n' "$image" "$basekey" "$*" ) | sha
}

standin() { # standin <image> <dir> <context> <base key> [--build-arg ...]
  local image="$1" dir="$2" ctx="$3" basekey="$4" key t0=$SECONDS
  shift 4
  key="$(recipe_key "$image" "$dir" "$basekey" "$@")"
  if [ "$(label_of "$image")" = "$key" ] && [ "${PV_CI_REFRESH:-0}" != 1 ]; then
    say "cached  $image"
    return 0
  fi
  if [ -n "${PREPARE:-}" ]; then "$PREPARE"; fi
  if ! docker build --quiet --label "$LABEL=$key" -t "$image" -f "$HERE/$dir/Dockerfile" "$@" "$ctx" \
    > "$CACHE/ctx/build-$dir.log" 2>&1; then
    tail -n 30 "$CACHE/ctx/build-$dir.log" >&2
    die "building the stand-in $image failed"
  fi
  say "built   $image ($(( SECONDS - t0 )) s)"
}

BOOKWORM="$(base_image bookworm | tail -n 1)"
TRIXIE="$(base_image trixie | tail -n 1)"
[ "$DEBIAN_CODENAME" = bookworm ] || die "the Rust and distroless stand-ins are Debian bookworm, the Dockerfile asks for $DEBIAN_CODENAME"

# Rust: the machine's own toolchain of exactly RUST_VERSION.
SYSROOT="$(rustc "+$RUST_VERSION" --print sysroot 2>/dev/null || true)"
[ -n "$SYSROOT" ] && [ -x "$SYSROOT/bin/rustc" ] \
  || die "the machine has no Rust $RUST_VERSION toolchain (rustup toolchain list): the stand-in would lie"
HOST_RUSTC="$("$SYSROOT/bin/rustc" --version)"
case "$HOST_RUSTC" in "rustc $RUST_VERSION "*) ;; *) die "toolchain $SYSROOT is '$HOST_RUSTC', not $RUST_VERSION" ;; esac
TRIPLE="$("$SYSROOT/bin/rustc" -vV | sed -n 's/^host: //p')"
RUSTUP_BIN="$(command -v rustup || true)"
[ -n "$RUSTUP_BIN" ] || RUSTUP_BIN="$HOME/.cargo/bin/rustup"
[ -x "$RUSTUP_BIN" ] || die "rustup not found"
RUST_KEY="$(printf '%s %s %s' "$HOST_RUSTC" "$TRIPLE" "$(sha256sum /etc/ssl/certs/ca-certificates.crt | cut -c1-16)" | sha)"
CTX="$CACHE/ctx/rust"
prepare_rust_context() { # the toolchain, rustup and the CA bundle, as the build context
  rm -rf "$CTX"
  local tc="$CTX/rustup/toolchains/$RUST_VERSION-$TRIPLE"
  mkdir -p "$tc" "$CTX/cargo/bin"
  # Everything but the HTML docs (800 MB the build never reads).
  (cd "$SYSROOT" && tar --exclude=./share/doc -cf - .) | tar -C "$tc" -xf -
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
    "$RUST_VERSION-$TRIPLE" > "$CTX/rustup/settings.toml"
  cp "$RUSTUP_BIN" "$CTX/cargo/bin/rustup"
  local p
  for p in cargo rustc rustdoc cargo-clippy clippy-driver rustfmt cargo-fmt; do ln -s rustup "$CTX/cargo/bin/$p"; done
  cp /etc/ssl/certs/ca-certificates.crt "$CTX/ca-certificates.crt"
}
PREPARE=prepare_rust_context standin "$RUST_IMAGE" rust "$CTX" "$BOOKWORM $RUST_KEY" --build-arg "RUST_VERSION=$RUST_VERSION"
rm -rf "$CTX"
standin "$DISTROLESS_IMAGE" distroless-cc "$HERE/distroless-cc" "$BOOKWORM"
standin "$POSTGRES_IMAGE" postgres "$HERE/postgres" "$TRIXIE" --build-arg "PG_MAJOR=$PG_MAJOR"
standin "$PROMETHEUS_IMAGE" prometheus "$HERE/prometheus" "$TRIXIE"
BUILT=("$RUST_IMAGE" "$DISTROLESS_IMAGE" "$POSTGRES_IMAGE" "$PROMETHEUS_IMAGE")
if [ -n "$ALERTMANAGER_IMAGE" ]; then
  standin "$ALERTMANAGER_IMAGE" alertmanager "$HERE/alertmanager" "$TRIXIE"
  BUILT+=("$ALERTMANAGER_IMAGE")
fi

for img in "${BUILT[@]}"; do
  [ -n "$(label_of "$img")" ] || die "stand-in $img is missing after the build"
done
say "stand-ins ready: $RUST_IMAGE ($HOST_RUSTC), $DISTROLESS_IMAGE, $POSTGRES_IMAGE (PostgreSQL $PG_MAJOR), ${BUILT[*]:3}"
