#!/usr/bin/env bash
# Supply-chain policy of deny.toml: licenses, banned crates, allowed sources.
# Installs the pinned cargo-deny if it is missing (a few minutes of compiling, once),
# then runs `cargo deny check licenses bans sources`. The advisories check needs the
# RustSec database from the network; CI runs it (cargo-deny-action, .github/workflows/ci.yml)
# and it can be run here with `cargo deny check advisories`.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q "cargo-deny $VERSION"; then
    echo "installing cargo-deny $VERSION"
    cargo install cargo-deny --version "$VERSION" --locked
fi
cargo deny --version
exec cargo deny --all-features --locked check licenses bans sources
