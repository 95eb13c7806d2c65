#!/usr/bin/env bash
# Builds the OCI runtime validation suite (runtime-tools v0.9.0, which
# predates Go modules) into $1, per the recipe in the library notes: copy the
# module out of the module cache, give it a go.mod pinning runtime-spec
# v1.0.2 and selinux v1.8.0, build runtimetest and every validation/*
# program. Nothing of it is committed.
set -euo pipefail
OUT=${1:?usage: build-validation.sh OUTDIR}
export PATH=$PATH:/usr/local/go/bin
[ -x "$OUT/runtimetest" ] && [ -d "$OUT/validation" ] && exit 0
src=$(cd /tmp && go mod download -json github.com/opencontainers/runtime-tools@v0.9.0 | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
mkdir -p "$OUT"
W=$OUT/src
rm -rf "$W"; cp -r "$src" "$W"; chmod -R u+w "$W"
cd "$W"
rm -f go.mod go.sum
go mod init github.com/opencontainers/runtime-tools >/dev/null 2>&1
go mod tidy >/dev/null 2>&1 || true
go get github.com/opencontainers/runtime-spec@v1.0.2 github.com/opencontainers/selinux@v1.8.0 >/dev/null 2>&1
go mod tidy >/dev/null 2>&1
CGO_ENABLED=0 go build -o "$OUT/runtimetest" ./cmd/runtimetest
mkdir -p "$OUT/validation"
for d in validation/*/; do
  n=$(basename "$d")
  ls "$d"*.go >/dev/null 2>&1 || continue
  go build -o "$OUT/validation/$n" "./$d" 2>/dev/null || echo "build-validation: $n does not build"
done
cp rootfs-amd64.tar.gz "$OUT/"
