package cgroups

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Member is one line of /proc/<pid>/cgroup: hierarchy ID, its controllers
// (empty for the v2 tree, "name=systemd" style for named v1 hierarchies)
// and the path inside it, relative to the reader's cgroup namespace root.
type Member struct {
	Hierarchy   int      `json:"hierarchy"`
	Controllers []string `json:"controllers"`
	Path        string   `json:"path"`
}

// ParseProcCgroup parses the contents of /proc/<pid>/cgroup (or
// /proc/thread-self/cgroup): the one parser of that format in ctlab.
// Malformed lines are skipped.
func ParseProcCgroup(s string) []Member {
	var out []Member
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		m := Member{Hierarchy: id, Path: f[2]}
		if f[1] != "" {
			m.Controllers = strings.Split(f[1], ",")
		}
		out = append(out, m)
	}
	return out
}

// ReadProcCgroup reads and parses a /proc/.../cgroup file.
func ReadProcCgroup(path string) ([]Member, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return ParseProcCgroup(string(b)), nil
}
