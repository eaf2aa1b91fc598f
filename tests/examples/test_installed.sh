#!/usr/bin/env bash
# Installs the build into a temporary DESTDIR, compiles examples/fsp-cat.c
# against the installed libfsproto with `pkg-config --cflags --libs
# fsproto` only, and fetches a file from a running fsd with it.
#
# Usage: test_installed.sh BUILD_ROOT PREFIX LIBDIR FSP_CAT_C FSD [CFLAGS...]
# CC is the compiler; CFLAGS are extra flags (the sanitizers of the build).
set -uo pipefail
build_root=$1 prefix=$2 libdir=$3 src=$(realpath "$4") fsd=$(realpath "$5")
shift 5
tmp=$(mktemp -d)
fsd_pid=
trap '[ -z "$fsd_pid" ] || kill "$fsd_pid"; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

dest=$tmp/dest
meson install -C "$build_root" --no-rebuild --quiet --destdir "$dest" >/dev/null ||
  fail "meson install --destdir failed"
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
export PKG_CONFIG_PATH=$dest$libdir/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs fsproto) || fail "pkg-config does not find fsproto in $PKG_CONFIG_PATH"
echo "pkg-config --cflags --libs fsproto: $flags"
case $flags in *"$dest"*) ;; *) fail "pkg-config flags do not point into the installed tree" ;; esac

# The soname the ABI promise is about.
soname=$(readelf -d "$dest$libdir/libfsproto.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libfsproto.so.0 ] || fail "SONAME is '$soname', not libfsproto.so.0"

# shellcheck disable=SC2086  # flags are words on purpose
${CC:-cc} "$@" -Wall -Wextra -Werror "$src" $flags -o "$tmp/fsp-cat" ||
  fail "fsp-cat.c does not compile against the installed library"
readelf -d "$tmp/fsp-cat" | grep -q 'NEEDED.*\[libfsproto.so.0\]' ||
  fail "fsp-cat is not linked to libfsproto.so.0"

mkdir "$tmp/root"
printf 'fetched by the example\n' > "$tmp/root/note.txt"
head -c 200000 /dev/urandom > "$tmp/root/blob.bin"
"$fsd" --root "$tmp/root" --listen 127.0.0.1:0 2>"$tmp/fsd.log" &
fsd_pid=$!
for _ in $(seq 200); do
  grep -q 'listening on' "$tmp/fsd.log" && break
  sleep 0.05
done
addr=$(sed -n 's/^fsd: listening on //p' "$tmp/fsd.log")
[ -n "$addr" ] || fail "fsd did not start: $(cat "$tmp/fsd.log")"

export LD_LIBRARY_PATH=$dest$libdir
[ "$("$tmp/fsp-cat" "$addr" note.txt)" = "fetched by the example" ] ||
  fail "fsp-cat did not print note.txt"
"$tmp/fsp-cat" "$addr" blob.bin | cmp - "$tmp/root/blob.bin" ||
  fail "fsp-cat printed blob.bin wrong"
err=$("$tmp/fsp-cat" "$addr" missing.txt 2>&1 >/dev/null)
status=$?
[ "$status" = 1 ] && [[ $err == *NOT_FOUND* ]] ||
  fail "a missing file: exit $status, '$err'"
echo "fsp-cat, built from the installed library, fetched two files from fsd"
