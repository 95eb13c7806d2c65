package kstate

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of /proc/<pid>/mountinfo (see proc(5)).
type Mount struct {
	ID           int      `json:"id"`
	Parent       int      `json:"parent"`
	Dev          string   `json:"dev"`  // major:minor
	Root         string   `json:"root"` // path inside the filesystem that is mounted here
	MountPoint   string   `json:"mount_point"`
	Options      string   `json:"options"`
	Optional     []string `json:"optional,omitempty"` // shared:N, master:N, propagate_from:N, unbindable
	FSType       string   `json:"fstype"`
	Source       string   `json:"source"`
	SuperOptions string   `json:"super_options"`
}

// ReadMountinfo parses /proc/<pid>/mountinfo: the mount table as seen from
// the process's mount namespace (and root).
func ReadMountinfo(pid int) ([]Mount, error) {
	p := fmt.Sprintf("/proc/%d/mountinfo", pid)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return parseMountinfo(string(b))
}

func parseMountinfo(s string) ([]Mount, error) {
	var out []Mount
	for _, line := range strings.Split(s, "\n") {
		if line == "" {
			continue
		}
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 2 {
			return nil, fmt.Errorf("mountinfo: bad line %q", line)
		}
		m := Mount{Dev: f[2], Root: unescape(f[3]), MountPoint: unescape(f[4]), Options: f[5], Optional: f[6:], FSType: g[0], Source: unescape(g[1])}
		m.ID, _ = strconv.Atoi(f[0])
		m.Parent, _ = strconv.Atoi(f[1])
		if len(g) > 2 {
			m.SuperOptions = g[2]
		}
		out = append(out, m)
	}
	return out, nil
}

// unescape undoes the kernel's octal escapes (\040 space, \011 tab, \012
// newline, \134 backslash) in mountinfo paths.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FindMount returns the last (top-most) mount at mountpoint, or nil.
func FindMount(ms []Mount, mountpoint string) *Mount {
	var found *Mount
	for i := range ms {
		if ms[i].MountPoint == mountpoint {
			found = &ms[i]
		}
	}
	return found
}
