#!/usr/bin/env bash
# Fails when a test run exercised no kernel: every test skipped, or no test
# ran at all. Prints the skip reasons so nobody has to dig for them.
set -euo pipefail
log=${1:?usage: check-skips.sh LOG}
pass=$(grep -c -- '--- PASS' "$log" || true)
skip=$(grep -c -- '--- SKIP' "$log" || true)
fail=$(grep -c -- '--- FAIL' "$log" || true)
echo "tests: $pass passed, $fail failed, $skip skipped"
if [ "$skip" -gt 0 ]; then
  echo "skipped (with reasons):"
  grep -B1 -- '--- SKIP' "$log" | grep -v -- '^--$' | sed 's/^/  /' | head -60
fi
if [ "$pass" -eq 0 ]; then
  echo "check-skips: no test passed: the kernel tests did not run" >&2
  exit 1
fi
