package kstate

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Processes lists every process on the host (a scan of /proc/*/stat), the
// raw material of the process-tree pane.
func Processes() ([]Proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited while we looked
		}
		p, err := parseStat(pid, string(b))
		if err != nil {
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pid < out[j].Pid })
	return out, nil
}

// ReadStat reads /proc/<pid>/stat: the one parser of that file.
func ReadStat(pid int) (Proc, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Proc{}, err
	}
	return parseStat(pid, string(b))
}

// parseStat reads pid, comm, state, ppid and start time from
// /proc/<pid>/stat. comm is in parentheses and may itself contain spaces
// and ')', so split at the last ')'.
func parseStat(pid int, s string) (Proc, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return Proc{}, fmt.Errorf("bad stat for %d", pid)
	}
	f := strings.Fields(s[end+1:]) // f[0] is field 3
	if len(f) < 2 || len(f[0]) != 1 {
		return Proc{}, fmt.Errorf("bad stat for %d", pid)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Proc{}, fmt.Errorf("bad ppid for %d: %w", pid, err)
	}
	p := Proc{Pid: pid, PPid: ppid, Comm: s[open+1 : end], State: f[0][0]}
	if len(f) >= 20 { // the kernel always writes field 22; a short line leaves Start 0
		if p.Start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
			return Proc{}, fmt.Errorf("bad start time for %d: %w", pid, err)
		}
	}
	return p, nil
}

// Descendants returns every process below pid, in pid order.
func Descendants(pid int) ([]Proc, error) {
	all, err := Processes()
	if err != nil {
		return nil, err
	}
	kids := map[int][]Proc{}
	for _, p := range all {
		kids[p.PPid] = append(kids[p.PPid], p)
	}
	var out []Proc
	queue := []int{pid}
	seen := map[int]bool{pid: true}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, k := range kids[cur] {
			if !seen[k.Pid] {
				seen[k.Pid] = true
				out = append(out, k)
				queue = append(queue, k.Pid)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pid < out[j].Pid })
	return out, nil
}

// Parent returns the parent of pid as a Proc (pid, its ppid, its comm).
func Parent(pid int) (Proc, error) {
	st, err := ReadStatus(pid)
	if err != nil {
		return Proc{}, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", st.PPid))
	if err != nil {
		return Proc{}, fmt.Errorf("read parent %d of %d: %w", st.PPid, pid, err)
	}
	return parseStat(st.PPid, string(b))
}
