package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// Keys of the C stage's configuration (sandbox/nsexec), which reaches it on
// an inherited pipe, never through the environment (an exec's environment
// is the image's); the whole protocol is described in docs/start-path.md,
// "The init protocol".
const (
	cfgInitStage = "init"    // "pid", "time S NS S NS": what the C stage unshares
	cfgCgroupV2  = "cg_v2"   // v2 cgroup dir the C stage clone3s the init into
	cfgCgroupV1  = "cg_join" // v1 "tasks" files the init writes itself into, ':'-separated
)

// stageConfig is the configuration of a C stage: "key=value" lines.
type stageConfig map[string]string

// pipe returns the read end of a pipe that holds the configuration and
// EOF. It fits the pipe's buffer (the C stage reads at most 16 KiB), so
// writing does not wait for the reader.
func (sc stageConfig) pipe() (*os.File, error) {
	var b strings.Builder
	for k, v := range sc {
		if strings.ContainsAny(v, "\n\x00") {
			return nil, fmt.Errorf("stage config %s: value contains a newline or NUL", k)
		}
		b.WriteString(k + "=" + v + "\n")
	}
	if b.Len() >= 16384 {
		return nil, fmt.Errorf("stage config of %d bytes is too long", b.Len())
	}
	return dataPipe([]byte(b.String()))
}

// dataPipe returns the read end of a pipe that holds b and then EOF. b
// must fit the pipe's buffer (64 KiB), so the write does not wait for a
// reader.
func dataPipe(b []byte) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, err = w.Write(b)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("write config pipe: %w", err)
	}
	return r, nil
}

// placement is how a container's init gets into its cgroup: the one seam
// between Start and the cgroup driver. Start calls prepare on the init's
// command, then clone instead of cmd.Start, then (after sending the init
// its configuration, so the two overlap) attach with the init's pid.
// Exactly one placement serves a start; choosePlacement picks it, and
// docs/start-path.md explains why each one exists.
//
// The implementations:
//
//	cloneIntoCgroup  v2: born in the cgroup, clone3(CLONE_INTO_CGROUP), by
//	                 Go's os/exec or, with a C stage, by sandbox/nsexec
//	initMovesItself  v1 with a C stage: the init writes "0" to each
//	                 hierarchy's tasks file before the Go runtime starts
//	cloneFromThread  v1 without a C stage: cloned from a Go thread that
//	                 moved itself into the cgroups first
//	attachByPid      the parent writes the pid to cgroup.procs (v2 with a
//	                 user namespace, or when the others cannot be used)
//
// A new driver (for example systemd, asking for a transient scope) is one
// more implementation and one more case in choosePlacement.
type placement interface {
	// prepare sets what the clone needs on cmd (SysProcAttr) and in the C
	// stage's config; it runs before clone.
	prepare(cmd *exec.Cmd, stage stageConfig) error
	// clone starts cmd; an error means no process was left running.
	clone(cmd *exec.Cmd) error
	// attach puts the init (pid) into the cgroup if it is not there yet;
	// attached says it had to (so Start times it as "cgroup attach").
	attach(pid int) (attached bool, err error)
}

// choosePlacement picks the placement for a start. stage says the init has
// a C stage (a pid or time namespace); owner is the host uid of the
// container's root (0 without a user namespace).
func choosePlacement(cg *cgroups.Cgroup, stage, userns bool, owner int) placement {
	if d := cg.V2Dir(); d != "" {
		// From inside a user namespace v2 refuses the C stage's clone3 (the
		// move needs write access to cgroup.procs of the common ancestor,
		// the root); Go's clone3 runs before the child enters it.
		if !stage || !userns {
			return &cloneIntoCgroup{dir: d, byStage: stage, fallback: attachByPid{cg}}
		}
		return attachByPid{cg}
	}
	if stage {
		if tasks, err := cgroupTasksFor(cg, owner); err == nil && len(tasks) > 0 {
			return initMovesItself{tasks}
		}
	}
	if cgroups.Effective() == cgroups.V1 {
		return &cloneFromThread{cg: cg}
	}
	return attachByPid{cg}
}

// attachByPid: the parent writes the init's pid to the cgroup after the
// clone. Costs an RCU grace period on the first move after an idle spell.
type attachByPid struct{ cg *cgroups.Cgroup }

func (attachByPid) prepare(*exec.Cmd, stageConfig) error { return nil }
func (attachByPid) clone(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("clone container init: %w", err)
	}
	return nil
}
func (a attachByPid) attach(pid int) (bool, error) { return true, a.cg.Add(pid) }

// cloneIntoCgroup: cgroup v2, the init is born in its cgroup. Without a C
// stage Go's clone3 does it (SysProcAttr.CgroupFD); with one, the C stage's
// fork does (cfgCgroupV2). If the directory cannot be opened, it falls back
// to attaching by pid.
type cloneIntoCgroup struct {
	dir      string
	byStage  bool
	fallback attachByPid
	fd       *os.File // open during the clone (Go's clone3)
	attachIt bool     // fell back
}

func (p *cloneIntoCgroup) prepare(cmd *exec.Cmd, stage stageConfig) error {
	if p.byStage {
		stage[cfgCgroupV2] = p.dir
		return nil
	}
	fd, err := os.Open(p.dir)
	if err != nil {
		p.attachIt = true
		return nil
	}
	p.fd = fd
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(fd.Fd())
	return nil
}

func (p *cloneIntoCgroup) clone(cmd *exec.Cmd) error {
	if p.fd != nil {
		defer p.fd.Close()
	}
	return p.fallback.clone(cmd)
}

func (p *cloneIntoCgroup) attach(pid int) (bool, error) {
	if p.attachIt {
		return p.fallback.attach(pid)
	}
	return false, nil
}

// initMovesItself: cgroup v1 with a C stage. The init writes "0" to each
// hierarchy's tasks file (chowned to the container's root by
// cgroupTasksFor) before anything else runs: a thread moving itself skips
// the lock that makes a move by pid wait for an RCU grace period.
type initMovesItself struct{ tasks []string }

func (p initMovesItself) prepare(_ *exec.Cmd, stage stageConfig) error {
	stage[cfgCgroupV1] = strings.Join(p.tasks, ":")
	return nil
}
func (initMovesItself) clone(cmd *exec.Cmd) error { return attachByPid{}.clone(cmd) }
func (initMovesItself) attach(int) (bool, error)  { return false, nil }

// cloneFromThread: cgroup v1 without a C stage. The goroutine locks its OS
// thread, moves that thread alone into the container's cgroups, clones
// the init from it (a child is born in its parent thread's cgroups) and
// moves the thread back. If the thread cannot move, the init is attached
// by pid instead.
type cloneFromThread struct {
	cg       *cgroups.Cgroup
	attachIt bool
}

func (*cloneFromThread) prepare(*exec.Cmd, stageConfig) error { return nil }

func (p *cloneFromThread) clone(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	back, err := enterCgroupThread(p.cg)
	if err != nil {
		runtime.UnlockOSThread()
		p.attachIt = true
		return attachByPid{}.clone(cmd)
	}
	err = cmd.Start()
	if berr := back(); berr != nil {
		// This thread must not run ctlab's work inside the container's
		// limits: leave it locked, so it dies with its goroutine.
		if err == nil {
			cmd.Process.Kill()
		}
		return fmt.Errorf("move back from the container's cgroup: %w", berr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("clone container init: %w", err)
	}
	return nil
}

func (p *cloneFromThread) attach(pid int) (bool, error) {
	if p.attachIt {
		return true, p.cg.Add(pid)
	}
	return false, nil
}

// enterCgroupThread moves the calling OS thread — only it — into the
// container's v1 cgroups, so that a child cloned from it is born there.
// A thread moving itself ("0" to a v1 "tasks" file) skips the global
// cgroup_threadgroup_rwsem the kernel takes to move a pid, and with it the
// RCU grace period (5-10 ms) the first such move after an idle spell waits
// for. It returns the function that moves the thread back, and the cgroup
// directories it came from.
//
// Preconditions: the goroutine is locked to its thread; cgroup v1.
func enterCgroupThread(cg *cgroups.Cgroup) (back func() error, err error) {
	own, err := cgroups.ReadProcCgroup("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	ownPath := map[string]string{} // controller -> this thread's path in its hierarchy
	for _, m := range own {
		for _, ctrl := range m.Controllers {
			ownPath[ctrl] = m.Path
		}
	}
	hs, err := hierarchies(cg)
	if err != nil {
		return nil, err
	}
	var join, home []string
	for _, h := range hs {
		root, ok := cg.Root(h.ctrl)
		p, known := ownPath[h.ctrl]
		if !ok || !known {
			return nil, fmt.Errorf("no own cgroup for %s", h.ctrl)
		}
		join = append(join, filepath.Join(h.dir, "tasks"))
		home = append(home, filepath.Join(root, p, "tasks"))
	}
	writeSelf := func(files []string) error {
		for _, f := range files {
			if err := os.WriteFile(f, []byte("0"), 0); err != nil {
				return fmt.Errorf("move thread to %s: %w", f, err)
			}
		}
		return nil
	}
	back = func() error { return writeSelf(home) }
	if err := writeSelf(join); err != nil {
		back()
		return nil, err
	}
	return back, nil
}

// cgroupTasksFor returns the v1 "tasks" files of the container's cgroup,
// one per hierarchy, made writable for the container's root (uid owner on
// the host) so that the init can move itself in before anything else runs
// (see nsexec.c). The container never sees these files: it has no cgroupfs
// of its own, and v1 cannot be mounted from a user namespace.
func cgroupTasksFor(cg *cgroups.Cgroup, owner int) ([]string, error) {
	if cgroups.Effective() != cgroups.V1 {
		return nil, nil
	}
	hs, err := hierarchies(cg)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range hs {
		f := filepath.Join(h.real, "tasks")
		if owner != 0 {
			if err := os.Chown(f, owner, owner); err != nil {
				return nil, err
			}
		}
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

// hierarchy is one distinct v1 hierarchy of a cgroup: a controller in it,
// the cgroup's directory there, and that directory with symlinks resolved
// (co-mounted controllers such as cpu,cpuacct share one).
type hierarchy struct{ ctrl, dir, real string }

func hierarchies(cg *cgroups.Cgroup) ([]hierarchy, error) {
	seen := map[string]bool{}
	var out []hierarchy
	for ctrl, dir := range cg.Paths() {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return nil, err
		}
		if !seen[real] {
			seen[real] = true
			out = append(out, hierarchy{ctrl, dir, real})
		}
	}
	return out, nil
}

// cgroupAt makes the cgroup at Config.CgroupPath (see cgroups.ResolvePath),
// journalling its directories and each one it makes before the kernel
// sees them, and picks the placement as for ctlab/<name>.
func (s *starter) cgroupAt() error {
	rels, err := cgroups.ResolvePath(s.cfg.CgroupPath)
	if err != nil {
		return &InputError{Problem: err.Error(), Fix: "give the cgroup path as /a/b or a/b, without \"..\", outside /ctlab"}
	}
	cg, err := cgroups.CreateAt(s.cfg.Name, rels, s.cfg.Limits, cgroups.Intents{
		Leaf:  func(ctrl, dir string) error { return s.j.intend(Record{Kind: recCgroupLeaf, Name: ctrl, Path: dir}) },
		Mkdir: func(dir string) error { return s.j.intend(Record{Kind: recCgroupDir, Path: dir}) },
	})
	if err != nil {
		return fmt.Errorf("create cgroup at %s: %w", s.cfg.CgroupPath, err)
	}
	s.cg = cg
	s.c.CgroupPath = s.cfg.CgroupPath
	s.place = choosePlacement(cg, s.stage != "", s.userns, s.owner)
	s.t0 = s.tl.Since("cgroup create", s.t0)
	failpoint("after-cgroup")
	return nil
}

// readBackCgroup records where the init of a container at a CgroupPath
// is, as the kernel says once it has exec'd (with a C stage the init moves
// itself), and fails if that is not the cgroup made for it.
func (s *starter) readBackCgroup() error {
	if s.cfg.CgroupPath == "" {
		return nil
	}
	if p, ok := s.place.(*systemdScope); ok {
		s.cg = p.cg
	}
	want := s.cg.Paths()
	cg, err := cgroups.OpenPid(s.cfg.Name, s.c.Pid, want)
	if err != nil {
		return err
	}
	got := cg.Paths()
	for ctrl, d := range want {
		if got[ctrl] != d {
			return fmt.Errorf("the init is in %s, not in its cgroup %s (%s)", got[ctrl], d, ctrl)
		}
	}
	s.c.CgroupDirs = got
	return s.c.State.save()
}

// removeCgroupAt undoes a cgroup at a CgroupPath as the journal names it:
// the processes in its leaf and the directories ctlab made, or its systemd
// scope.
func removeCgroupAt(ctx context.Context, name string, recs []Record) []error {
	leaves, made := map[string]string{}, []string(nil)
	var errs []error
	for _, r := range recs {
		switch r.Kind {
		case recCgroupLeaf:
			leaves[r.Name] = r.Path
		case recCgroupDir:
			made = append(made, r.Path)
		case recScope:
			if err := cgroups.RemoveScope(ctx, name, cgroups.Scope{Slice: r.Path, Unit: r.Name}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(leaves)+len(made) > 0 {
		if err := cgroups.RemoveAt(ctx, name, leaves, made); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
