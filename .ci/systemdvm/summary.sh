#!/usr/bin/env bash
# Prints one line per test suite of `make test`, side by side: the host run,
# the busybox v2 VM and the systemd VM, counted from their logs (Go test
# results, plus `ctlab scenario test` lines in the systemd VM).
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
count() { grep -a -c -E -- "$2" "$1" 2>/dev/null || true; }
row() { printf '%-34s %6s %6s %6s  %s\n' "$@"; }
row SUITE PASS FAIL SKIP LOG
for s in "host (hybrid cgroups):$REPO/.ci/last-host-test.log" \
	"busybox VM (pure v2):/var/cache/ctlab-v2vm/logs/last.log" \
	"systemd VM (Debian 12, pure v2):/var/cache/ctlab-systemdvm/logs/last.log"; do
	name=${s%%:*} log=${s#*:}
	if [ ! -e "$log" ]; then
		row "$name" - - - "(no log)"
		continue
	fi
	log=$(readlink -f "$log")
	row "$name" "$(count "$log" '^ *--- PASS|^ok   [a-z]')" "$(count "$log" '^ *--- FAIL|^FAIL [a-z]')" \
		"$(count "$log" '^ *--- SKIP|^SKIP [a-z]')" "$log"
done
