package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ParseIORate parses "PATH:RATE", e.g. "/var/lib/ctlab:5M" (RATE in bytes/s,
// K/M/G suffixes are powers of 1024).
//
// PATH is either a block device node (its st_rdev is used) or any file or
// directory (the device of the filesystem holding it, st_dev). The kernel only
// throttles whole disks, so a partition is mapped to its disk through
// /sys/dev/block/MAJ:MIN/partition and the parent directory's "dev" file.
func ParseIORate(s string) (IOLimit, error) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 {
		return IOLimit{}, fmt.Errorf("io rate %q: want PATH:RATE, e.g. /var/lib/ctlab:5M", s)
	}
	path, rateStr := s[:i], s[i+1:]
	rate, err := parseUnits(rateStr)
	if err != nil {
		return IOLimit{}, fmt.Errorf("io rate %q: %w", s, err)
	}
	if rate == 0 {
		return IOLimit{}, fmt.Errorf("io rate %q: rate must be > 0", s)
	}
	maj, min, err := BlockDevice(path)
	if err != nil {
		return IOLimit{}, fmt.Errorf("io rate %q: %w", s, err)
	}
	return IOLimit{Major: maj, Minor: min, Rate: rate}, nil
}

// BlockDevice returns the whole-disk major:minor that holds path (see ParseIORate).
func BlockDevice(path string) (major, minor uint32, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	dev := st.Dev
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		dev = st.Rdev
	case unix.S_IFCHR:
		return 0, 0, fmt.Errorf("%s is a character device; block I/O limits need a block device or a file on one", path)
	}
	major, minor = unix.Major(dev), unix.Minor(dev)
	if major == 0 {
		// Major 0 is the "unnamed" block major: tmpfs, overlayfs, proc, btrfs
		// subvolumes... there is no disk queue to throttle.
		return 0, 0, fmt.Errorf("%s is on a filesystem without a block device (%d:%d, e.g. tmpfs or overlay)", path, major, minor)
	}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		real, err := filepath.EvalSymlinks(sys)
		if err != nil {
			return 0, 0, fmt.Errorf("resolve %s: %w", sys, err)
		}
		b, err := os.ReadFile(filepath.Join(filepath.Dir(real), "dev"))
		if err != nil {
			return 0, 0, fmt.Errorf("find the disk of partition %d:%d: %w", major, minor, err)
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
			return 0, 0, fmt.Errorf("parse %s/../dev %q: %w", real, b, err)
		}
	}
	return major, minor, nil
}
