package cgroups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"
)

// A cgroup at a path the caller names (an OCI bundle's linux.cgroupsPath)
// instead of ctlab's own /ctlab/<name>. The path is resolved as runc's
// cgroupfs drivers do:
//
//	absolute "/a/b"  the group /a/b under each v1 hierarchy's mount point,
//	                 or under the v2 root
//	relative "a/b"   below the runtime's own cgroup: on v1 the calling
//	                 process's group in each hierarchy; on v2 the PARENT of
//	                 its group (its own holds processes, and v2 forbids
//	                 enabling controllers below a group with members)
//
// Unlike runc, which cleans ".." away lexically ("../../x" becomes "x"), a
// ".." anywhere is refused: the path comes from an untrusted config. The
// directories on the way that do not exist yet are made one at a time, each
// announced to the caller first (it journals them), and only those are
// ever removed again: a group that existed before is left alone.

// Rels maps each controller to the cgroup's path relative to the root of
// that controller's hierarchy ("/a/b"); on v2 every controller maps to the
// same path.
type Rels map[string]string

// Intents is told about a cgroup before CreateAt touches the kernel: Leaf
// once per controller with the cgroup's directory there (its processes are
// the container's), Mkdir before each directory it makes.
type Intents struct {
	Leaf  func(ctrl, dir string) error
	Mkdir func(dir string) error
}

// ResolvePath turns a cgroupsPath into the cgroup's path in every
// hierarchy ctlab uses, or explains why it is refused.
func ResolvePath(p string) (Rels, error) {
	if p == "" {
		return nil, errors.New("cgroups path is empty")
	}
	if strings.ContainsAny(p, "\x00\n") {
		return nil, fmt.Errorf("cgroups path %q contains a NUL or newline", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return nil, fmt.Errorf("cgroups path %q: a \"..\" component could leave the cgroup tree; refused", p)
		}
	}
	clean := filepath.Clean(p)
	if clean == "/" || clean == "." {
		return nil, fmt.Errorf("cgroups path %q names no group of its own (the root or the runtime's own cgroup)", p)
	}
	var own []Member
	if !filepath.IsAbs(clean) {
		var err error
		if own, err = ReadProcCgroup("/proc/self/cgroup"); err != nil {
			return nil, fmt.Errorf("cgroups path %q is relative to this process's cgroup: %w", p, err)
		}
	}
	rels := Rels{}
	switch Effective() {
	case V1:
		roots, err := hierarchyRoots(new(v1Mounts), nil)
		if err != nil {
			return nil, err
		}
		ownOf := map[string]string{}
		for _, m := range own {
			for _, c := range m.Controllers {
				ownOf[c] = m.Path
			}
		}
		for ctrl := range roots {
			rels[ctrl] = clean
			if !filepath.IsAbs(clean) {
				o, ok := ownOf[ctrl]
				if !ok {
					return nil, fmt.Errorf("cgroups path %q: this process has no %s cgroup to be relative to", p, ctrl)
				}
				rels[ctrl] = filepath.Join(o, clean)
			}
		}
	case V2:
		rel := clean
		if !filepath.IsAbs(clean) {
			base := ""
			for _, m := range own {
				if m.Hierarchy == 0 && len(m.Controllers) == 0 {
					base = m.Path
				}
			}
			if base == "" {
				return nil, fmt.Errorf("cgroups path %q: this process has no v2 cgroup to be relative to", p)
			}
			rel = filepath.Join(filepath.Dir(base), clean)
		}
		avail, err := v2Available()
		if err != nil {
			return nil, err
		}
		for c := range v2PathMap(rel, avail) {
			rels[c] = rel
		}
	default:
		return nil, errors.New("no cgroup filesystem mounted at /sys/fs/cgroup")
	}
	for _, rel := range rels {
		top, _, _ := strings.Cut(strings.TrimPrefix(rel, "/"), "/")
		if top == parentName || top == SystemdSlice {
			return nil, fmt.Errorf("cgroups path %q resolves to %s, inside ctlab's own /%s tree; refused", p, rel, top)
		}
	}
	return rels, nil
}

// hierarchyRoots maps each controller ctlab uses to its hierarchy's mount
// point (all the v2 root on v2); m is the call's read of the v1 mounts.
func hierarchyRoots(m *v1Mounts, rels Rels) (map[string]string, error) {
	if Effective() == V1 {
		return v1RootsOf(m.cpuset)
	}
	roots := map[string]string{}
	for c := range rels {
		roots[c] = unifiedRoot
	}
	return roots, nil
}

// dirsOf is rels joined to the hierarchies' mount points.
func dirsOf(m *v1Mounts, rels Rels) (map[string]string, error) {
	roots, err := hierarchyRoots(m, rels)
	if err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	for c, rel := range rels {
		if root, ok := roots[c]; ok {
			dirs[c] = filepath.Join(root, rel)
		}
	}
	return dirs, nil
}

// relsOf is the inverse of dirsOf; a directory outside its controller's
// hierarchy is an error.
func relsOf(m *v1Mounts, dirs map[string]string) (Rels, error) {
	rels := Rels{}
	for c := range dirs {
		rels[c] = ""
	}
	roots, err := hierarchyRoots(m, rels)
	if err != nil {
		return nil, err
	}
	for c, d := range dirs {
		rel, ok := strings.CutPrefix(filepath.Clean(d), roots[c])
		if !ok || roots[c] == "" || (rel != "" && rel[0] != '/') {
			return nil, fmt.Errorf("%s is not in the %s hierarchy", d, c)
		}
		rels[c] = "/" + strings.TrimPrefix(rel, "/")
	}
	return rels, nil
}

// v2 is the path on v2, where every controller has the same.
func (r Rels) v2() string {
	for _, k := range sortedKeys(r) {
		return r[k]
	}
	return ""
}

func (r Rels) path() cgroup1.Path {
	return func(n cgroup1.Name) (string, error) {
		if p, ok := r[string(n)]; ok {
			return p, nil
		}
		return "", cgroup1.ErrControllerNotActive
	}
}

// CreateAt makes the cgroup at rels (from ResolvePath) for container name
// and applies l. The directories that do not exist yet are made parent
// first, each announced to in.Mkdir before; a leaf that exists and holds
// processes is refused. On failure the directories it made are removed.
func CreateAt(name string, rels Rels, l Limits, in Intents) (*Cgroup, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if l.OCI.CpusetCPUs == "" && l.OCI.CpusetMems == "" {
		rels = without(rels, "cpuset")
	}
	m := new(v1Mounts)
	dirs, err := dirsOf(m, rels)
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	for _, c := range sortedKeys(dirs) {
		if pids := busy(dirs[c]); len(pids) > 0 {
			return nil, fmt.Errorf("create cgroup %s: %s already exists and holds processes %v", name, dirs[c], pids)
		}
		if err := in.Leaf(c, dirs[c]); err != nil {
			return nil, err
		}
	}
	made, err := mkdirsAnnounced(dirs, in.Mkdir)
	undo := func() { removeMade(made) }
	if err != nil {
		undo()
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	if Effective() == V1 {
		return newV1(m, name, rels, dirs, l, undo)
	}
	avail, err := v2Available()
	if err == nil {
		err = enableDown(filepath.Join(unifiedRoot, rels.v2()), avail)
	}
	if err != nil {
		undo()
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	return newV2(name, rels, avail, l, undo)
}

func without(r Rels, ctrl string) Rels {
	out := Rels{}
	for k, v := range r {
		if k != ctrl {
			out[k] = v
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mkdirsAnnounced makes each missing directory of dirs and its missing
// parents, parent first, calling announce before each mkdir. It returns
// the directories it made. Every existing ancestor must be a cgroup file
// system: a path can never lead out of the hierarchy.
func mkdirsAnnounced(dirs map[string]string, announce func(string) error) ([]string, error) {
	var made []string
	// Sorted, so co-mounted controllers (cpu,cpuacct) are made once,
	// through the first name; the second finds its directory there.
	for _, c := range sortedKeys(dirs) {
		d := dirs[c]
		var missing []string
		p := d
		for !exists(p) {
			missing = append([]string{p}, missing...)
			p = filepath.Dir(p)
		}
		if err := onCgroupfs(p); err != nil {
			return made, err
		}
		for _, m := range missing {
			if err := announce(m); err != nil {
				return made, err
			}
			if err := os.Mkdir(m, 0o755); err != nil {
				if errors.Is(err, os.ErrExist) {
					continue // made meanwhile by someone else: not ours
				}
				return made, fmt.Errorf("mkdir %s: %w", m, err)
			}
			made = append(made, m)
		}
	}
	return made, nil
}

func onCgroupfs(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Type != unix.CGROUP_SUPER_MAGIC && st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("%s is not in a cgroup file system; refused", dir)
	}
	return nil
}

// enableDown enables ctrls in cgroup.subtree_control of every ancestor of
// leaf from the v2 root down (a controller's files appear in a group only
// when its parent enables it). An ancestor with member processes cannot.
func enableDown(leaf string, ctrls []string) error {
	rel := strings.TrimPrefix(filepath.Dir(leaf), unifiedRoot)
	dir := unifiedRoot
	if err := enableControllers(dir, ctrls); err != nil {
		return err
	}
	for _, part := range strings.Split(strings.Trim(rel, "/"), "/") {
		if part == "" {
			continue
		}
		dir = filepath.Join(dir, part)
		if err := enableControllers(dir, ctrls); err != nil {
			return err
		}
	}
	return nil
}

// removeMade rmdirs directories a CreateAt made, deepest first. A group that
// is not empty (another container's sub-group, or processes) stays.
func removeMade(made []string) []error {
	sorted := append([]string(nil), made...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	var errs []error
	for _, d := range sorted {
		err := unix.Rmdir(d)
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	return errs
}

// OpenPid opens the cgroup process pid is in now, as the kernel reports
// it in /proc/<pid>/cgroup, in the hierarchies of under (controller ->
// directory). Each must be that directory or below it: a process moved
// elsewhere (say to a hierarchy's root, where every process of the host
// is) is refused, so a kill or freeze can never reach beyond under.
func OpenPid(name string, pid int, under map[string]string) (*Cgroup, error) {
	ms, err := ReadProcCgroup(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, fmt.Errorf("open cgroup of %s: %w", name, err)
	}
	rels := Rels{}
	for _, m := range ms {
		if Effective() == V2 && m.Hierarchy == 0 {
			for c := range under {
				rels[c] = m.Path
			}
		}
		for _, c := range m.Controllers {
			if _, ok := under[c]; ok && Effective() == V1 {
				rels[c] = m.Path
			}
		}
	}
	m := new(v1Mounts)
	dirs, err := dirsOf(m, rels)
	if err != nil {
		return nil, fmt.Errorf("open cgroup of %s: %w", name, err)
	}
	for c, d := range under {
		if got, ok := dirs[c]; !ok || (got != d && !strings.HasPrefix(got, d+"/")) {
			return nil, fmt.Errorf("open cgroup of %s: /proc/%d/cgroup puts it in %q for %s, not in %s", name, pid, got, c, d)
		}
	}
	return openRels(m, name, rels)
}

// OpenDirs opens the cgroup whose directories are dirs (controller ->
// directory, as Paths returns them).
func OpenDirs(name string, dirs map[string]string) (*Cgroup, error) {
	m := new(v1Mounts)
	rels, err := relsOf(m, dirs)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", name, err)
	}
	return openRels(m, name, rels)
}

// openRels opens an existing cgroup; it fails with an error wrapping
// os.ErrNotExist when no hierarchy has it. m is the call's read of the v1
// mounts.
func openRels(m *v1Mounts, name string, rels Rels) (*Cgroup, error) {
	dirs, err := dirsOf(m, rels)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", name, err)
	}
	existing := map[string]string{}
	for c, d := range dirs {
		if exists(d) {
			existing[c] = d
		}
	}
	if len(existing) == 0 {
		return nil, fmt.Errorf("open cgroup %s: %w", name, os.ErrNotExist)
	}
	c := &Cgroup{name: name, mode: Effective(), paths: existing, rels: rels}
	if c.mode == V1 {
		c.v1, err = cgroup1.Load(rels.path(), cgroup1.WithHierarchy(m.cpuset), allowAny)
	} else {
		for _, d := range existing {
			c.v2dir = d
		}
		c.v2, err = cgroup2.Load(rels.v2())
	}
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", name, err)
	}
	return c, nil
}

// allowAny keeps containerd from insisting on the devices hierarchy in a
// user namespace (missing controllers were filtered by v1Mounts.of).
func allowAny(ic *cgroup1.InitConfig) error { ic.InitCheck = cgroup1.AllowAny; return nil }

// Root is the mount point of the hierarchy of controller ctrl, as seen in
// Paths ("/sys/fs/cgroup/memory"; "/sys/fs/cgroup" on v2).
func (c *Cgroup) Root(ctrl string) (string, bool) {
	d, ok := c.paths[ctrl]
	rel, ok2 := c.rels[ctrl]
	if !ok || !ok2 {
		return "", false
	}
	return strings.CutSuffix(d, strings.TrimSuffix(rel, "/"))
}

// RemoveAt undoes CreateAt after the fact (`ctlab cleanup`, also after a
// kill -9): it kills the processes in leaves (controller -> directory, the
// container's cgroup) and removes the directories of made, and only those:
// the leaf with whatever sub-groups its processes made, and the parents
// that nothing else uses any more. Every path must be a directory below
// /sys/fs/cgroup. Missing directories are fine.
func RemoveAt(ctx context.Context, name string, leaves map[string]string, made []string) error {
	for _, d := range append(sortedValues(leaves), made...) {
		if !strings.HasPrefix(d, unifiedRoot+"/") || filepath.Clean(d) != d || strings.Contains(d, "/../") {
			return fmt.Errorf("remove cgroup %s: %s is not a cgroup directory", name, d)
		}
	}
	c := &Cgroup{name: name, mode: Effective(), paths: map[string]string{}}
	for ctrl, d := range leaves {
		if exists(d) {
			c.paths[ctrl], c.v2dir = d, d
		}
	}
	if len(c.paths) > 0 {
		if err := c.Kill(ctx); err != nil {
			return fmt.Errorf("remove cgroup %s: %w", name, err)
		}
	}
	isLeaf := map[string]bool{}
	for _, d := range leaves {
		isLeaf[d] = true
	}
	var errs, rest []string
	var own []string
	for _, d := range made {
		if isLeaf[d] {
			own = append(own, d)
		} else {
			rest = append(rest, d)
		}
	}
	// The leaf was ours: it goes with the sub-groups made inside it.
	if err := (&Cgroup{name: name, paths: pathsOf(own)}).removeDirs(ctx); err != nil {
		errs = append(errs, err.Error())
	}
	for _, err := range removeMade(rest) {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove cgroup %s: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

func sortedValues(m map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

func pathsOf(dirs []string) map[string]string {
	m := map[string]string{}
	for _, d := range dirs {
		m[d] = d
	}
	return m
}
