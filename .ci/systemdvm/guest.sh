#!/bin/bash
# Runs inside the systemd VM (copied to /srv/ctlab/run.sh by run.sh), started
# by root's autologin shell on ttyS0: a PAM login session, like a learner's SSH
# or console shell. Output goes to the serial console, where run.sh reads the
# === SDVM markers. Each line of /srv/ctlab/items is "MODE NAME DIR CMD...":
#   session: `sudo CMD` from this shell (stays in this session's scope);
#   service: `systemd-run --wait --pipe CMD` (a transient unit in system.slice).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
stty -echo -onlcr 2>/dev/null || true

info() { printf '=== SDVM INFO %s=%s\n' "$1" "$2"; }
echo
echo "=== SDVM LOGIN uptime=$(cut -d' ' -f1 /proc/uptime)"
# Wait for the boot to finish so timings and unit states are settled.
timeout 120 systemctl is-system-running --wait >/dev/null 2>&1 || true
info kernel "$(uname -r)"
info pid1 "$(ps -p 1 -o comm=)"
info systemd "$(systemctl --version | head -n 1)"
info cgroupfs "$(stat -f -c %T /sys/fs/cgroup)"
info controllers "$(cat /sys/fs/cgroup/cgroup.controllers)"
info subtree "$(cat /sys/fs/cgroup/cgroup.subtree_control)"
info boot "$(systemd-analyze time 2>/dev/null | head -n 1 | sed 's/^Startup finished in //')"
info state "$(systemctl is-system-running 2>&1)"
info login_cgroup "$(cut -d: -f3 /proc/self/cgroup)"
info sudo_cgroup "$(sudo cut -d: -f3 /proc/self/cgroup)"
systemctl --failed --no-legend --plain 2>/dev/null | sed 's/^/=== SDVM INFO failed_unit=/'
echo "=== SDVM BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"

export TMPDIR=/var/tmp
n=0
while read -r mode name dir cmd; do
	n=$((n + 1))
	echo "=== SDVM BEGIN $name"
	# The wrapper prints the cgroup the command really runs in, then becomes it.
	wrap='echo "=== SDVM CGROUP $0 $(cut -d: -f3 /proc/self/cgroup)"; cd "$1" && shift && exec "$@"'
	case "$mode" in
	session)
		# shellcheck disable=SC2086 # cmd is a word list
		sudo TMPDIR=/var/tmp /bin/sh -c "$wrap" "$name" "$dir" $cmd </dev/null 2>&1
		;;
	service)
		# shellcheck disable=SC2086
		systemd-run --quiet --wait --pipe --collect --unit "ctlab-systemdvm-$n" -E TMPDIR=/var/tmp \
			/bin/sh -c "$wrap" "$name" "$dir" $cmd </dev/null 2>&1
		;;
	esac
	rc=$?
	printf '\n=== SDVM END %s rc=%d\n' "$name" "$rc"
done </srv/ctlab/items
echo "=== SDVM DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
systemctl poweroff -ff
