#!/usr/bin/env bash
# Runs the OCI runtime validation suite (runtime-tools v0.9.0) against runc
# and against bin/ctlab-oci in the same run and prints both counts, then the
# assertions runc passes and ctlab does not. Budget: VALIDATION_TIMEOUT
# seconds per program (default 20). Exit status 1 when ctlab fails an
# assertion runc passes and it is not in .ci/oci/known-failures (one
# "program: description" line each, with the reason after " # ").
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
RT=$REPO/bin/ctlab-oci
[ -x "$RT" ] || { echo "validation: build first (make build)"; exit 1; }
command -v runc >/dev/null || { echo "validation: SKIP: runc not installed (make deps)"; exit 0; }
V=${VALIDATION_DIR:-/var/cache/ctlab-oci-validation}
bash .ci/oci/build-validation.sh "$V" || { echo "validation: cannot build the suite"; exit 1; }
T=$(mktemp -d /tmp/ctlab-oci-validation.XXXXXX)
trap 'rm -rf "$T"' EXIT
per=${VALIDATION_TIMEOUT:-20}

run_suite() { # name runtime
  local name=$1 out=$T/$1 rt=$T/rt-$1
  mkdir -p "$out"
  # Each runtime under a --root of this run's own: whatever a program that
  # timed out left behind is deleted after it, and nobody else's container
  # is touched.
  printf '#!/bin/sh\nexec %q --root %q "$@"\n' "$2" "$T/root-$name" >"$rt"
  chmod +x "$rt"
  for p in "$V"/validation/*; do
    local n w
    n=$(basename "$p")
    w=$T/work-$name-$n
    mkdir -p "$w"
    cp "$V/runtimetest" "$V/rootfs-amd64.tar.gz" "$w/"
    (cd "$w" && RUNTIME=$rt timeout -k 5 "$per" "$p" >"$out/$n.tap" 2>"$out/$n.err")
    rm -rf "$w"
    for id in $("$rt" list -q 2>/dev/null); do "$rt" delete -f "$id" >/dev/null 2>&1; done
  done
}
run_suite runc "$(command -v runc)"
run_suite ctlab "$RT"

# One line per assertion: "program: ok|not ok: description" (TAP numbers dropped).
results() {
  for f in "$T/$1"/*.tap; do
    n=$(basename "$f" .tap)
    sed -n -E "s/^(ok|not ok) [0-9]+ - ?(.*)$/$n: \1: \2/p; s/^(ok|not ok) [0-9]+$/$n: \1: (unnamed)/p" "$f"
  done | sort
}
results runc >"$T/runc.txt"
results ctlab >"$T/ctlab.txt"
count() { echo "$(grep -c ': ok: ' "$1") ok, $(grep -c ': not ok: ' "$1") not ok"; }
echo "validation (runtime-tools v0.9.0, $(ls "$V/validation" | wc -l) programs):"
echo "  runc:      $(count "$T/runc.txt")"
echo "  ctlab-oci: $(count "$T/ctlab.txt")"
sed -n 's/: ok: /: /p' "$T/runc.txt" | sort -u >"$T/runc-ok"
sed -n 's/: ok: /: /p' "$T/ctlab.txt" | sort -u >"$T/ctlab-ok"
comm -23 "$T/runc-ok" "$T/ctlab-ok" >"$T/missing"
known=$REPO/.ci/oci/known-failures
touch "$T/known"; [ -f "$known" ] && sed -e 's/ # .*//' -e '/^#/d' -e '/^$/d' "$known" | sort -u >"$T/known"
unexplained=$(comm -23 "$T/missing" "$T/known")
echo "  runc passes, ctlab does not: $(wc -l <"$T/missing") ($(echo -n "$unexplained" | grep -c . ) without a reason in .ci/oci/known-failures)"
[ -f "$known" ] && grep -F -f "$T/missing" "$known" | sed 's/^/    known: /'
if [ -n "$unexplained" ]; then
  echo "$unexplained" | sed 's/^/    FAIL: /'
  [ -n "${VALIDATION_KEEP:-}" ] && cp -r "$T" "$VALIDATION_KEEP"
  exit 1
fi
echo "validation: ctlab passes every assertion runc passes, or has a reason"
