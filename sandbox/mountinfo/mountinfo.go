// Package mountinfo is ctlab's one parser of /proc/<pid>/mountinfo (see
// proc(5)). It sits below every other sandbox package (it imports none of
// ours), so overlay, kstate and the lab all read mount tables through it.
package mountinfo

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of /proc/<pid>/mountinfo.
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

// Read parses /proc/<pid>/mountinfo: the mount table as seen from the
// process's mount namespace (and root). pid 0 means the calling process
// (/proc/self).
func Read(pid int) ([]Mount, error) {
	p := "/proc/self/mountinfo"
	if pid != 0 {
		p = fmt.Sprintf("/proc/%d/mountinfo", pid)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return Parse(string(b))
}

// Parse parses the text of a mountinfo file. Paths (root, mount point,
// source) come back unescaped: the kernel writes space, tab, newline and
// backslash as \040, \011, \012 and \134.
func Parse(s string) ([]Mount, error) {
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
		m := Mount{Dev: f[2], Root: Unescape(f[3]), MountPoint: Unescape(f[4]), Options: f[5], Optional: f[6:], FSType: g[0], Source: Unescape(g[1])}
		m.ID, _ = strconv.Atoi(f[0])
		m.Parent, _ = strconv.Atoi(f[1])
		if len(g) > 2 {
			m.SuperOptions = g[2]
		}
		out = append(out, m)
	}
	return out, nil
}

// Unescape undoes the kernel's octal escapes (\040 space, \011 tab, \012
// newline, \134 backslash) in a mountinfo path.
func Unescape(s string) string {
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

// Find returns the last (top-most) mount at mountpoint, or nil.
func Find(ms []Mount, mountpoint string) *Mount {
	var found *Mount
	for i := range ms {
		if ms[i].MountPoint == mountpoint {
			found = &ms[i]
		}
	}
	return found
}
