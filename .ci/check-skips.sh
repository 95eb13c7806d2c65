#!/usr/bin/env bash
# Fails a root test run that exercised less than it should:
#   - no test passed at all, or
#   - a test skipped that is not on .ci/expected-skips for this place.
# Prints every skip with its reason, so nobody has to dig for them.
#
# Usage: check-skips.sh LOG [host|v2vm|systemdvm]   (default host)
set -euo pipefail
log=${1:?usage: check-skips.sh LOG [host|v2vm|systemdvm]}
where=${2:-host}
list="$(dirname "${BASH_SOURCE[0]}")/expected-skips"

pass=$(grep -c -- '--- PASS' "$log" || true)
skip=$(grep -c -- '--- SKIP' "$log" || true)
fail=$(grep -c -- '--- FAIL' "$log" || true)
echo "tests ($where): $pass passed, $fail failed, $skip skipped"

# expected NAME: prints the reason when NAME may skip here.
expected() {
	local name=$1 w pat reason
	while read -r w pat reason; do
		case "$w" in '' | '#'*) continue ;; esac
		[ "$w" = any ] || [ "$w" = "$where" ] || continue
		# shellcheck disable=SC2053 # pat is a glob on purpose
		if [[ $name == $pat ]]; then
			echo "$reason"
			return 0
		fi
	done <"$list"
	return 1
}

bad=0
if [ "$skip" -gt 0 ]; then
	echo "skipped (with reasons):"
	# go test -v prints the t.Skip message on the lines before "--- SKIP: Name (t)".
	while IFS= read -r line; do
		name=$(sed -E 's/^ *--- SKIP: ([^ ]+).*/\1/' <<<"$line")
		why=$(grep -B3 -F -- "$line" "$log" | grep -v -- '--- SKIP\|=== ' | grep -m1 -E '_test\.go:[0-9]+:' | sed -E 's/^ *//' || true)
		if reason=$(expected "$name"); then
			echo "  ok   $name: ${why:-?}  [expected: $reason]"
		else
			echo "  BAD  $name: ${why:-?}  [not on .ci/expected-skips for '$where']"
			bad=1
		fi
	done < <(grep -E -- '^ *--- SKIP: ' "$log" | sort -u)
fi
if [ "$pass" -eq 0 ]; then
	echo "check-skips: no test passed: the kernel tests did not run" >&2
	exit 1
fi
if [ "$bad" -ne 0 ]; then
	echo "check-skips: a test skipped that should have run here; fix the host or add it to .ci/expected-skips with its reason" >&2
	exit 1
fi
