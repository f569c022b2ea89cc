#!/usr/bin/env bash
# The release binaries: static musl builds of drainit for x86_64 and aarch64,
# under the names users look for (the Debian/Docker architecture, as in
# tini-static-amd64, and `uname -m`'s), with SHA256SUMS.
#
#   scripts/release.sh [VERSION]      (VERSION: Cargo.toml's if not given)
#
# Writes target/dist/VERSION/:
#   drainit-amd64   drainit-x86_64    (the same file)
#   drainit-arm64   drainit-aarch64   (the same file)
#   SHA256SUMS      (`sha256sum -c SHA256SUMS` checks them)
# prints the sizes on stderr and the directory on stdout.
#
# Both targets install with `rustup target add`; aarch64 links with rust-lld
# (shipped with rustup's toolchain), so no cross compiler is needed. The
# flags are the README's: +crt-static, not position-independent.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}

fail() {
    echo "release.sh: $*" >&2
    exit 1
}

crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
version=${1:-$crate_version}
[ "$version" = "$crate_version" ] ||
    fail "VERSION $version is not Cargo.toml's $crate_version: set it there first, so that \`drainit --version\` says the same"

dist=$target_dir/dist/$version
rm -rf "$dist"
mkdir -p "$dist"

# arch (Debian/Docker name), uname -m name, Rust target, extra rustflags
builds=(
    "amd64 x86_64 x86_64-unknown-linux-musl"
    "arm64 aarch64 aarch64-unknown-linux-musl -C linker=rust-lld"
)
for build in "${builds[@]}"; do
    read -r arch machine triple extra <<<"$build"
    rustup target list --installed 2>/dev/null | grep -qx "$triple" ||
        rustup target add "$triple" >/dev/null ||
        fail "cannot install the Rust target $triple: run \`rustup target add $triple\`"
    echo "release.sh: building $triple" >&2
    RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static ${extra:-}" \
        cargo build --release --quiet --locked --target "$triple" --bin drainit
    binary=$target_dir/$triple/release/drainit
    # A binary for another machine, or one that needs a loader, is no release.
    description=$(file -b "$binary")
    case $description in
    *"statically linked"*) ;;
    *) fail "$binary is not static: $description" ;;
    esac
    case $arch in
    amd64) want="x86-64" ;;
    arm64) want="ARM aarch64" ;;
    esac
    [[ $description == *"$want"* ]] || fail "$binary is not for $want: $description"
    install -m 755 "$binary" "$dist/drainit-$arch"
    cp -p "$dist/drainit-$arch" "$dist/drainit-$machine"
done

# The amd64 build runs here: it must say the version it is released as.
said=$("$dist/drainit-amd64" --version)
[[ $said == *"$version"* ]] || fail "drainit-amd64 --version says \"$said\", not $version"

(cd "$dist" && sha256sum drainit-amd64 drainit-arm64 drainit-x86_64 drainit-aarch64 >SHA256SUMS)
(cd "$dist" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not check"

{
    echo "drainit $version, in $dist:"
    for arch in amd64 arm64; do
        printf '  drainit-%-8s %9s bytes  %s\n' "$arch" "$(stat -c %s "$dist/drainit-$arch")" \
            "$(file -b "$dist/drainit-$arch" | cut -d, -f1-2)"
    done
    echo "  (drainit-x86_64 and drainit-aarch64: the same files, under uname -m's names)"
    sed 's/^/  /' "$dist/SHA256SUMS"
} >&2
echo "$dist"
