package kstate

import "github.com/ctlab/ctlab/sandbox/mountinfo"

// Mount is one line of /proc/<pid>/mountinfo (see proc(5)), parsed by
// package mountinfo, the one parser of that format.
type Mount = mountinfo.Mount

// ReadMountinfo parses /proc/<pid>/mountinfo: the mount table as seen from
// the process's mount namespace (and root).
func ReadMountinfo(pid int) ([]Mount, error) {
	return mountinfo.Read(pid)
}

func parseMountinfo(s string) ([]Mount, error) { return mountinfo.Parse(s) }

// FindMount returns the last (top-most) mount at mountpoint, or nil.
func FindMount(ms []Mount, mountpoint string) *Mount { return mountinfo.Find(ms, mountpoint) }
