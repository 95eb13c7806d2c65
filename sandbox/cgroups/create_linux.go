package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Cgroup is one container's cgroup, "/ctlab/<name>" in every hierarchy used.
type Cgroup struct {
	name string
	mode Mode // V1 or V2 (never Hybrid)

	v1    cgroup1.Cgroup
	paths map[string]string // v1: controller -> dir; v2: every controller -> the one dir

	v2    *cgroup2.Manager
	v2dir string

	unit string // systemd driver: the scope unit that owns v2dir (systemd_linux.go)

	rels Rels // controller -> path below its hierarchy's root (path_linux.go)
}

// group is the cgroup path relative to each hierarchy's root.
func group(name string) string { return "/" + parentName + "/" + name }

// Name returns the name given to Create or Open.
func (c *Cgroup) Name() string { return c.name }

// Paths maps each controller to its directory on this host. On v2 every
// controller maps to the same directory; that sameness is the lesson.
func (c *Cgroup) Paths() map[string]string {
	out := make(map[string]string, len(c.paths))
	for k, v := range c.paths {
		out[k] = v
	}
	return out
}

// Create makes "/ctlab/<name>" in every hierarchy ctlab uses and applies l.
// A leftover empty cgroup of that name is reused; one that still holds
// processes is refused, since it belongs to a running container.
func Create(name string, l Limits) (*Cgroup, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	switch Effective() {
	case V1:
		return createV1(name, l)
	case V2:
		return createV2(name, l)
	default:
		return nil, fmt.Errorf("create cgroup %s: no cgroup filesystem mounted at /sys/fs/cgroup", name)
	}
}

func v1Paths(m *v1Mounts, name string) (map[string]string, error) {
	roots, err := v1RootsOf(m.hierarchy)
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for ctrl, root := range roots {
		paths[ctrl] = filepath.Join(root, parentName, name)
	}
	return paths, nil
}

// busy returns the pids in dir (recursively) or nil if dir does not exist.
func busy(dir string) []int {
	pids, _ := procsIn(dir)
	return pids
}

func createV1(name string, l Limits) (*Cgroup, error) {
	m := new(v1Mounts)
	paths, err := v1Paths(m, name)
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	for _, p := range paths {
		if pids := busy(p); len(pids) > 0 {
			return nil, fmt.Errorf("create cgroup %s: %s already exists and holds processes %v", name, p, pids)
		}
	}
	return newV1(m, name, defaultRels(name, paths), paths, l, nil)
}

// defaultRels is "/ctlab/<name>" for every controller of paths.
func defaultRels(name string, paths map[string]string) Rels {
	rels := Rels{}
	for c := range paths {
		rels[c] = group(name)
	}
	return rels
}

// newV1 makes (or takes) the v1 cgroup at rels, whose directories are
// paths, and applies l. On failure it calls undo, or without one removes
// the directories (nothing runs in them yet, so that is safe).
func newV1(m *v1Mounts, name string, rels Rels, paths map[string]string, l Limits, undo func()) (*Cgroup, error) {
	if err := checkV1Limits(paths, l); err != nil {
		if undo != nil {
			undo()
		}
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	res, fresh := v1Spec(paths, l), allAbsent(paths)
	if fresh {
		res = withoutV1Defaults(res)
	}
	cg1, err := cgroup1.New(rels.path(), res, cgroup1.WithHierarchy(m.cpuset), allowAny)
	c := &Cgroup{name: name, mode: V1, v1: cg1, paths: paths, rels: rels}
	if err == nil && !fresh { // a new group has no pids limit or throttles to lift
		err = c.applyV1Extras(l)
	}
	if err == nil {
		err = c.setDevices(l)
	}
	if err != nil {
		if undo == nil {
			undo = c.undo
		}
		undo()
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	return c, nil
}

// allAbsent reports that none of the directories exists yet: the group
// will be new in every hierarchy, with the kernel's default values.
func allAbsent(paths map[string]string) bool {
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

// withoutV1Defaults drops from res what a new v1 group already holds: the
// kernel starts one with cpu.shares 1024, cpu.cfs_period_us 100000,
// cpu.cfs_quota_us -1 and no memory or memory+swap limit, so writing those
// would change nothing (five file writes, ~0.15 ms of every create).
func withoutV1Defaults(res *specs.LinuxResources) *specs.LinuxResources {
	out := *res
	if res.CPU != nil {
		cpu := *res.CPU
		if cpu.Shares != nil && *cpu.Shares == 1024 {
			cpu.Shares = nil
		}
		if cpu.Period != nil && *cpu.Period == cpuPeriod && cpu.Quota != nil && *cpu.Quota == -1 {
			cpu.Period, cpu.Quota = nil, nil
		}
		out.CPU = &cpu
	}
	if res.Memory != nil {
		mem := *res.Memory
		if mem.Limit != nil && *mem.Limit == -1 {
			mem.Limit = nil
		}
		if mem.Swap != nil && *mem.Swap == -1 {
			mem.Swap = nil
		}
		out.Memory = &mem
	}
	return &out
}

// prepareV2Parent makes /sys/fs/cgroup/ctlab and enables our controllers
// top-down: a v2 controller's files appear in a group only when its parent
// lists the controller in cgroup.subtree_control.
func prepareV2Parent() ([]string, error) {
	avail, err := v2Available()
	if err != nil {
		return nil, err
	}
	parent := filepath.Join(unifiedRoot, parentName)
	if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("mkdir %s: %w", parent, err)
	}
	// "No internal processes": a non-root group with member processes cannot
	// enable controllers for its children (EBUSY). Say so instead of EBUSY.
	if pids, _ := readPids(filepath.Join(parent, "cgroup.procs")); len(pids) > 0 {
		return nil, fmt.Errorf("%s holds processes %v; v2 forbids enabling controllers below a group with members (no internal processes rule)", parent, pids)
	}
	for _, dir := range []string{unifiedRoot, parent} {
		if err := enableControllers(dir, avail); err != nil {
			return nil, err
		}
	}
	return avail, nil
}

func enableControllers(dir string, ctrls []string) error {
	f := filepath.Join(dir, "cgroup.subtree_control")
	cur, err := os.ReadFile(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", f, err)
	}
	on := strings.Fields(string(cur))
	for _, c := range ctrls {
		if contains(on, c) {
			continue
		}
		if err := os.WriteFile(f, []byte("+"+c), 0); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("enable %s in %s: %w (the group has member processes: v2's no-internal-processes rule)", c, f, err)
			}
			return fmt.Errorf("enable %s in %s: %w", c, f, err)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func createV2(name string, l Limits) (*Cgroup, error) {
	avail, err := prepareV2Parent()
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	dir := filepath.Join(unifiedRoot, parentName, name)
	if pids := busy(dir); len(pids) > 0 {
		return nil, fmt.Errorf("create cgroup %s: %s already exists and holds processes %v", name, dir, pids)
	}
	return newV2(name, defaultRels(name, v2PathMap(dir, avail)), avail, l, nil)
}

// newV2 makes (or takes) the v2 cgroup at rels and applies l; undo as in
// newV1.
func newV2(name string, rels Rels, avail []string, l Limits, undo func()) (*Cgroup, error) {
	rel := rels.v2()
	dir := filepath.Join(unifiedRoot, rel)
	c := &Cgroup{name: name, mode: V2, v2dir: dir, paths: v2PathMap(dir, avail), rels: rels}
	if undo == nil {
		undo = c.undo
	}
	res, err := v2Resources(dir, avail, l)
	if err != nil {
		undo()
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	c.v2, err = cgroup2.NewManager(unifiedRoot, rel, res)
	if err == nil {
		err = c.applyV2Extras(l)
	}
	if err == nil {
		err = c.setDevices(l)
	}
	if err != nil {
		undo()
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	return c, nil
}

// undo removes the directories of a Create that failed half-way.
func (c *Cgroup) undo() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.removeDirs(ctx)
}

func v2PathMap(dir string, avail []string) map[string]string {
	m := map[string]string{"freezer": dir, "devices": dir}
	for _, c := range avail {
		m[c] = dir
	}
	return m
}

// Open returns the existing cgroup name; it fails with an error wrapping
// os.ErrNotExist when no hierarchy has it.
func Open(name string) (*Cgroup, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	switch Effective() {
	case V1:
		m := new(v1Mounts)
		paths, err := v1Paths(m, name)
		if err != nil {
			return nil, fmt.Errorf("open cgroup %s: %w", name, err)
		}
		return openRels(m, name, defaultRels(name, paths))
	case V2:
		dir := filepath.Join(unifiedRoot, parentName, name)
		if _, err := os.Stat(dir); err != nil {
			if exists(scopeDir(name)) { // started with the systemd driver
				return OpenSystemd(name)
			}
			return nil, fmt.Errorf("open cgroup %s: %w", name, err)
		}
		avail, _ := v2Available()
		return openRels(new(v1Mounts), name, defaultRels(name, v2PathMap(dir, avail)))
	default:
		return nil, fmt.Errorf("open cgroup %s: no cgroup filesystem mounted", name)
	}
}

// Add moves process pid (all its threads) into the cgroup in every hierarchy.
func (c *Cgroup) Add(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("add pid %d to cgroup %s: invalid pid", pid, c.name)
	}
	var err error
	if c.mode == V1 {
		err = c.v1.AddProc(uint64(pid))
	} else {
		err = c.v2.AddProc(uint64(pid))
	}
	if err != nil {
		return fmt.Errorf("add pid %d to cgroup %s: %w", pid, c.name, err)
	}
	return nil
}

// dirs returns the distinct directories of the cgroup (co-mounted v1
// hierarchies such as cpu,cpuacct share one).
func (c *Cgroup) dirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range c.paths {
		real := p
		if r, err := filepath.EvalSymlinks(p); err == nil {
			real = r
		}
		if !seen[real] {
			seen[real] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Procs lists the processes in the cgroup and its sub-groups, in any
// hierarchy (a v1 process could have been moved in one hierarchy only).
func (c *Cgroup) Procs() ([]int, error) {
	set := map[int]bool{}
	found := false
	for _, d := range c.dirs() {
		pids, err := procsIn(d)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("procs of cgroup %s: %w", c.name, err)
		}
		found = true
		for _, p := range pids {
			set[p] = true
		}
	}
	if !found {
		return nil, fmt.Errorf("procs of cgroup %s: %w", c.name, os.ErrNotExist)
	}
	out := make([]int, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Ints(out)
	return out, nil
}

// procsIn reads cgroup.procs of dir and of every group below it.
func procsIn(dir string) ([]int, error) {
	var out []int
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, os.ErrNotExist) {
				return nil // a sub-group vanished while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := readPids(filepath.Join(p, "cgroup.procs"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		out = append(out, pids...)
		return nil
	})
	return out, err
}

func readPids(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", file, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// List returns the names of the ctlab cgroups that exist in any hierarchy.
func List() ([]string, error) {
	var parents []string
	switch Effective() {
	case V1:
		roots, err := v1Roots()
		if err != nil {
			return nil, fmt.Errorf("list cgroups: %w", err)
		}
		for _, r := range roots {
			parents = append(parents, filepath.Join(r, parentName))
		}
	case V2:
		parents = []string{filepath.Join(unifiedRoot, parentName)}
	default:
		return nil, nil
	}
	set := map[string]bool{}
	for _, n := range listScopes() {
		set[n] = true
	}
	for _, p := range parents {
		ents, err := os.ReadDir(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("list cgroups: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() && ValidName(e.Name()) == nil {
				set[e.Name()] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Remove kills the processes of cgroup name and removes its directories in
// every hierarchy (used by `ctlab cleanup`). A missing cgroup is not an error.
// The name check keeps it inside /ctlab/.
func Remove(ctx context.Context, name string) error {
	if ValidName(name) == nil && exists(scopeDir(name)) {
		// The systemd driver's scope (also after ctlab itself was killed);
		// systemd would wait 90 s after its SIGTERM to a container's PID 1.
		return RemoveScope(ctx, name, ctlabScope(name))
	}
	if removeEmpty(name) {
		return nil
	}
	c, err := Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return c.Delete(ctx)
}

// Prune removes the /ctlab parent directories when no ctlab cgroup is left.
// A parent that still has children is kept (rmdir fails with EBUSY), so it is
// safe while other containers run.
func Prune() error {
	var parents []string
	switch Effective() {
	case V1:
		roots, err := v1Roots()
		if err != nil {
			return err
		}
		for _, r := range roots {
			parents = append(parents, filepath.Join(r, parentName))
		}
	case V2:
		parents = []string{filepath.Join(unifiedRoot, parentName)}
	}
	var errs []error
	for _, p := range parents {
		if err := unix.Rmdir(p); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// removeEmpty is Remove's fast path for the common case of a container
// whose processes have all exited: rmdir of the leaf in every hierarchy
// succeeds only when the cgroup is empty and has no children, which is
// exactly when nothing needs killing. It reports false (having removed
// whatever it could) when the slow path must finish the job.
func removeEmpty(name string) bool {
	if ValidName(name) != nil {
		return false
	}
	var dirs []string
	switch Effective() {
	case V1:
		paths, err := v1Paths(new(v1Mounts), name)
		if err != nil {
			return false
		}
		for _, p := range paths {
			dirs = append(dirs, p)
		}
	case V2:
		dirs = []string{filepath.Join(unifiedRoot, parentName, name)}
	default:
		return false
	}
	ok := true
	for _, d := range dirs {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			ok = false
		}
	}
	return ok
}
