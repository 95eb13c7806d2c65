package kstate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// CgroupFile reads one file of the ctlab cgroup "ctlab/<name>". file may
// be given under its v2 or its v1 name: when this host has the other
// version, the file with the same information is read instead (cpu.max is
// put together from cpu.cfs_quota_us and cpu.cfs_period_us on v1). With
// key, the value of that line of a flat-keyed file ("oom_kill 1") is
// returned. v1's "no limit" (a number near 2^63) is returned as "max", as
// v2 writes it. source is the file (or files) actually read.
func CgroupFile(name, file, key string) (value, source string, err error) {
	cg, err := cgroups.Open(name)
	if err != nil {
		return "", file, fmt.Errorf("kstate: open cgroup %s: %w", name, err)
	}
	paths := cg.Paths()
	try := func(f string) (string, string, error) {
		ctrl, _, _ := strings.Cut(f, ".")
		dir := paths[ctrl]
		if ctrl == "cpuacct" && dir == "" {
			dir = paths["cpu"]
		}
		if dir == "" && ctrl == "cgroup" {
			// v2 core files sit in the one directory every controller maps to
			for _, d := range paths {
				dir = d
				break
			}
		}
		if dir == "" {
			return "", f, fs.ErrNotExist
		}
		p := filepath.Join(dir, f)
		b, err := os.ReadFile(p)
		if err != nil {
			return "", p, err
		}
		return strings.TrimSpace(string(b)), p, nil
	}
	v, src, err := try(file)
	if errors.Is(err, fs.ErrNotExist) {
		if file == "cpu.max" {
			q, s1, e1 := try("cpu.cfs_quota_us")
			p, s2, e2 := try("cpu.cfs_period_us")
			if e1 == nil && e2 == nil {
				if q == "-1" {
					q = "max"
				}
				return q + " " + p, s1 + " + " + s2, nil
			}
		}
		for _, alt := range otherCgroupNames(file) {
			if v2, src2, err2 := try(alt); err2 == nil {
				v, src, err = v2, src2, nil
				break
			}
		}
	}
	if err != nil {
		return "", src, err
	}
	if key != "" {
		for _, line := range strings.Split(v, "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == key {
				return f[1], src + " " + key, nil
			}
		}
		return "", src + " " + key, fmt.Errorf("no %q line in %s", key, src)
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 1<<62 {
		v = "max"
	}
	return v, src, nil
}

// otherCgroupNames maps a file name to the file(s) of the other cgroup
// version that hold the same information (from the sandbox's name table).
func otherCgroupNames(file string) []string {
	var out []string
	for _, p := range cgroups.NamePairs {
		alt := ""
		switch file {
		case p.V2Name:
			alt = p.V1Name
		case p.V1Name:
			alt = p.V2Name
		}
		if alt != "" && !strings.HasPrefix(alt, "(") {
			out = append(out, alt)
		}
	}
	return out
}

// ReadIDMap reads /proc/<pid>/uid_map (which "uid") or gid_map ("gid").
func ReadIDMap(pid int, which string) ([]IDMap, string, error) {
	p := fmt.Sprintf("/proc/%d/%s_map", pid, which)
	m, err := readIDMap(p)
	return m, p, err
}

// UpperFile is one path of an overlay's upperdir, as the kernel left it.
type UpperFile struct {
	Exists   bool        `json:"exists"`
	Whiteout bool        `json:"whiteout"` // character device 0/0: deleted in the merged view
	Opaque   bool        `json:"opaque"`   // directory with trusted.overlay.opaque=y
	Mode     fs.FileMode `json:"mode"`
}

// UpperEntry looks path (absolute, as seen in the merged view) up in the
// upperdir of l, without following symlinks out of it.
func UpperEntry(l overlay.Layout, path string) (UpperFile, string, error) {
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	src := filepath.Join(l.Upper, rel)
	root, err := os.OpenRoot(l.Upper)
	if err != nil {
		return UpperFile{}, src, fmt.Errorf("kstate: open upperdir: %w", err)
	}
	defer root.Close()
	fi, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return UpperFile{}, src, nil
	}
	if err != nil {
		return UpperFile{}, src, err
	}
	u := UpperFile{Exists: true, Mode: fi.Mode(), Whiteout: overlay.IsWhiteout(fi)}
	if fi.IsDir() {
		// root.Lstat proved src is a directory inside the upperdir, not a link
		if u.Opaque, err = overlay.IsOpaque(src); err != nil {
			return u, src, err
		}
	}
	return u, src, nil
}

// ReadFileIn reads up to max bytes of path inside pid's root filesystem
// (/proc/<pid>/root). Every lookup stays inside that root (os.Root), so a
// symlink planted in a container cannot point the reader at a host file.
func ReadFileIn(pid int, path string, max int64) ([]byte, string, error) {
	return ReadFileUnder(fmt.Sprintf("/proc/%d/root", pid), path, max)
}

// ReadFileUnder reads up to max bytes of path (absolute, as seen from dir)
// under the directory dir -- an overlay's merged view, a layer, a bundle
// -- without any lookup leaving dir (os.Root: "..", absolute symlinks and
// links pointing outside are refused).
func ReadFileUnder(dir, path string, max int64) ([]byte, string, error) {
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	src := filepath.Join(dir, rel)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, src, err
	}
	defer root.Close()
	if rel == "" {
		rel = "."
	}
	f, err := root.Open(rel)
	if err != nil {
		return nil, src, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max))
	return b, src, err
}

// Owner is a file's owner as the reader's user namespace sees it.
type Owner struct {
	UID  uint32      `json:"uid"`
	GID  uint32      `json:"gid"`
	Mode fs.FileMode `json:"mode"`
}

// FileOwner lstats path inside pid's root filesystem from ctlab (the
// host's user namespace), so st_uid is the host's id: a file that root
// made in a user-namespaced container belongs to the mapped id (100000),
// the kernel having stored that kuid on disk (fs/stat.c, cp_new_stat
// translates it for the caller with from_kuid_munged).
func FileOwner(pid int, path string) (Owner, string, error) {
	dir := fmt.Sprintf("/proc/%d/root", pid)
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	src := "lstat " + filepath.Join(dir, rel)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Owner{}, src, err
	}
	defer root.Close()
	if rel == "" {
		rel = "."
	}
	fi, err := root.Lstat(rel)
	if err != nil {
		return Owner{}, src, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Owner{}, src, fmt.Errorf("kstate: no stat_t for %s", src)
	}
	return Owner{UID: st.Uid, GID: st.Gid, Mode: fi.Mode()}, src, nil
}
