package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
	"github.com/ctlab/ctlab/sandbox/rootfs"
)

// cloneFlags maps the kinds created at clone time. The others are made
// later, each at the one moment it can be: pid and time by the init's C
// stage (package nsexec: both only apply to children, and time offsets must
// be written before anyone enters), cgroup by the Go init once it has been
// placed in its cgroup (so its cgroup root is its own cgroup).
var cloneFlags = map[Namespace]uintptr{
	NSMount: unix.CLONE_NEWNS,
	NSUTS:   unix.CLONE_NEWUTS,
	NSIPC:   unix.CLONE_NEWIPC,
	NSNet:   unix.CLONE_NEWNET,
	NSUser:  unix.CLONE_NEWUSER,
}

// validate checks everything about cfg that can be checked without making
// a kernel object, so bad input changes nothing.
func (cfg *Config) validate() error {
	if os.Geteuid() != 0 {
		return &InputError{Problem: "ctlab must run as root to create namespaces, cgroups and mounts", Fix: "run it with sudo"}
	}
	if err := ValidName(cfg.Name); err != nil {
		return err
	}
	if len(cfg.Args) == 0 {
		return &InputError{Problem: "no command given", Fix: "put the command after --, e.g. ctlab run -- /bin/sh"}
	}
	for _, ns := range cfg.Namespaces {
		if !ns.Valid() {
			return &InputError{Problem: fmt.Sprintf("unknown namespace kind %q", ns), Fix: "use mnt,uts,ipc,pid,net,user,cgroup,time"}
		}
		if _, err := os.Stat("/proc/self/ns/" + string(ns)); err != nil {
			return &InputError{Problem: fmt.Sprintf("this kernel has no %s namespace", ns), Fix: "leave it out of --ns (see ctlab doctor)"}
		}
	}
	if !Has(cfg.Namespaces, NSMount) {
		return &InputError{Problem: "a container needs its own mount namespace for its root filesystem", Fix: "include mnt in --ns"}
	}
	if cfg.Net && !Has(cfg.Namespaces, NSNet) {
		return &InputError{Problem: "--net needs a network namespace", Fix: "include net in --ns"}
	}
	if len(cfg.Layers) == 0 {
		switch cfg.Rootfs {
		case "", "default", "busybox", "host":
		default:
			fi, err := os.Stat(cfg.Rootfs)
			if err != nil || !fi.IsDir() {
				return &InputError{Problem: fmt.Sprintf("rootfs %q is not a directory", cfg.Rootfs), Fix: "use --rootfs default, busybox, or an existing directory"}
			}
		}
	}
	for _, l := range cfg.Layers {
		if fi, err := os.Stat(l); err != nil || !fi.IsDir() {
			return &InputError{Problem: fmt.Sprintf("layer %q is not a directory", l), Fix: "unpack the image first"}
		}
	}
	if cfg.Harden.Seccomp && !cfg.Harden.NoNewPrivs {
		return &InputError{Problem: "a seccomp filter needs no_new_privs", Fix: "set Harden.NoNewPrivs too"}
	}
	if cfg.Time != (TimeOffsets{}) && !Has(cfg.Namespaces, NSTime) {
		return &InputError{Problem: "time offsets need a time namespace", Fix: "include time in --ns"}
	}
	return checkControllers(cfg.Limits)
}

// checkControllers refuses limits this host cannot enforce instead of
// silently ignoring them.
func checkControllers(l cgroups.Limits) error {
	have, err := cgroups.Controllers()
	if err != nil {
		return &InputError{Problem: "cannot read cgroup controllers: " + err.Error(), Fix: "mount cgroupfs (see ctlab doctor)"}
	}
	set := map[string]bool{}
	for _, c := range have {
		set[c] = true
	}
	need := func(ok bool, ctrl, flag string) error {
		if !ok || set[ctrl] || (ctrl == "io" && set["blkio"]) || (ctrl == "blkio" && set["io"]) {
			return nil
		}
		return &InputError{Problem: fmt.Sprintf("%s needs the %s cgroup controller, which this host lacks", flag, ctrl), Fix: "drop " + flag + " or enable the controller (see ctlab doctor)"}
	}
	for _, e := range []error{
		need(l.MemoryMax > 0, "memory", "--memory"),
		need(l.CPUs > 0 || l.CPUWeight > 0, "cpu", "--cpus"),
		need(l.PidsMax > 0, "pids", "--pids"),
		need(len(l.IOReadBPS)+len(l.IOWriteBPS) > 0, "io", "--io-read-bps"),
	} {
		if e != nil {
			return e
		}
	}
	return nil
}

// lockName takes an exclusive per-name lock so two starts of the same name
// cannot interleave. The lock is released when the returned file is closed
// (or the process dies).
func lockName(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(lockDir(), name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Start creates a container and returns once its command has been exec'd
// (or has failed to start, in which case nothing is left behind).
//
// Preconditions: root; the host passes `ctlab doctor` for the requested
// namespaces and limits.
func Start(ctx context.Context, cfg Config) (c *Container, err error) {
	if cfg.Namespaces == nil {
		cfg.Namespaces = append([]Namespace(nil), AllNamespaces...)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ensureDirs(); err != nil {
		return nil, err
	}
	lk, err := lockName(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", cfg.Name, err)
	}
	defer lk.Close()
	if old, err := Load(cfg.Name); err == nil {
		if old.Running() {
			return nil, &InputError{Problem: fmt.Sprintf("the name %q is already in use by a running container", cfg.Name), Fix: "ctlab rm -f " + cfg.Name + " or pick another --name"}
		}
		// An exited container of the same name: remove it first, as its
		// upper layer and cgroup would otherwise be reused.
		return nil, &InputError{Problem: fmt.Sprintf("the name %q is used by an exited container", cfg.Name), Fix: "ctlab rm " + cfg.Name}
	}
	if _, err := os.Stat(filepath.Join(journalDir(), cfg.Name+".jsonl")); err == nil {
		return nil, &InputError{Problem: fmt.Sprintf("a killed run left objects named %q behind", cfg.Name), Fix: "ctlab cleanup"}
	}

	userns := Has(cfg.Namespaces, NSUser)
	if cfg.UIDBase == 0 && userns {
		cfg.UIDBase = DefaultUIDBase
	}
	owner := 0
	if userns {
		owner = cfg.UIDBase
	}
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.Name
	}
	if cfg.Env == nil {
		cfg.Env = DefaultEnv()
	}

	tl := cfg.Timeline
	t0 := time.Now()

	// The base rootfs is cached; building it is only slow the first time.
	var lowers []string
	rootDesc := cfg.Rootfs
	switch {
	case len(cfg.Layers) > 0:
		lowers = cfg.Layers
		rootDesc = "image"
	case cfg.Rootfs == "" || cfg.Rootfs == "default" || cfg.Rootfs == "busybox" || cfg.Rootfs == "host":
		kind := cfg.Rootfs
		if kind == "" {
			kind = "default"
		}
		dir, err := rootfs.Ensure(ctx, kind, filepath.Join(DataDir, "rootfs"), rootfs.Owner{UID: owner, GID: owner})
		if err != nil {
			return nil, fmt.Errorf("prepare %s rootfs: %w", kind, err)
		}
		lowers = []string{dir}
		rootDesc = kind
	default:
		abs, _ := filepath.Abs(cfg.Rootfs)
		lowers = []string{abs}
	}
	t0 = tl.Since("rootfs", t0)

	j, err := openJournal(cfg.Name)
	if err != nil {
		return nil, err
	}
	defer j.close()

	st := State{
		Name: cfg.Name, Created: time.Now(), Namespaces: cfg.Namespaces, Hostname: cfg.Hostname,
		Rootfs: rootDesc, Args: cfg.Args, Env: cfg.Env, Limits: cfg.Limits, Detached: cfg.Detach,
	}
	if userns {
		st.UIDBase = cfg.UIDBase
	}
	if !cfg.Detach {
		me := os.Getpid()
		ms, _ := procStartTime(me)
		st.Owner = &Owner{Pid: me, Start: ms}
	}
	c = &Container{State: st}

	// From here on every failure must undo what was made. The journal knows.
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if cerr := cleanupOne(rctx, cfg.Name); cerr != nil {
				err = fmt.Errorf("%w (and cleanup failed: %v)", err, cerr)
			}
			c = nil
		}
	}()

	dir := filepath.Join(containersDir(), cfg.Name)
	if err = j.intend(Record{Kind: recDir, Path: dir}); err != nil {
		return c, err
	}
	c.Dir = dir
	c.Layout = overlay.Layout{Lower: lowers, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Merged: filepath.Join(dir, "merged"), Volatile: true}
	if err = os.MkdirAll(dir, 0o710); err != nil {
		return c, fmt.Errorf("create container dir: %w", err)
	}
	if err = os.Chown(dir, 0, owner); err != nil {
		return c, err
	}
	if err = os.Chmod(dir, 0o710); err != nil {
		return c, err
	}
	if err = prepareUpper(c.Layout, owner); err != nil {
		return c, err
	}
	if err = c.State.save(); err != nil {
		return c, err
	}
	if err = j.intend(Record{Kind: recCgroup, Name: cfg.Name}); err != nil {
		return c, err
	}
	cg, err := cgroups.Create(cfg.Name, cfg.Limits)
	if err != nil {
		return c, fmt.Errorf("create cgroup: %w", err)
	}
	t0 = tl.Since("cgroup create", t0)
	failpoint("after-cgroup")

	if err = j.intend(Record{Kind: recMount, Path: c.Layout.Merged}); err != nil {
		return c, err
	}
	if err = overlay.Mount(c.Layout); err != nil {
		return c, fmt.Errorf("mount overlay rootfs: %w", err)
	}
	t0 = tl.Since("overlay mount", t0)
	failpoint("after-mount")

	// The init reads its configuration and, later, a go-ahead from ctlR; it
	// reports errors and its own phase timings on statusW, which closes on
	// exec (O_CLOEXEC), so EOF means "the command is running".
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return c, err
	}
	defer ctlR.Close()
	defer ctlW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return c, err
	}
	defer statusR.Close()
	defer statusW.Close()

	// The init is exec'd through an fd opened here: with a user namespace
	// the exec happens as the container's root, an unprivileged uid on the
	// host, which may not traverse the directory ctlab is installed in
	// (/proc/self/fd/N, like /proc/self/exe, skips that walk).
	initFile, err := os.Open(InitBinary)
	if err != nil {
		return c, fmt.Errorf("open the init binary: %w", err)
	}
	defer initFile.Close()
	cmd := exec.Command("/proc/self/fd/5", initArg)
	cmd.Args[0] = filepath.Base(InitBinary)
	cmd.ExtraFiles = []*os.File{ctlR, statusW, initFile} // fds 3, 4, 5
	cmd.Env = []string{}                                 // the init gets its environment over the pipe
	stage := initStage(cfg)
	joined := false // born in its cgroup: no attach needed
	if stage != "" {
		cmd.Env = append(cmd.Env, "_CTLAB_INIT="+stage)
		if d := cg.V2Dir(); d != "" && !userns {
			// clone3 into the cgroup (nsexec.c). From inside a user
			// namespace v2 refuses it (the move needs write access to
			// cgroup.procs of the common ancestor, the root): then the
			// parent attaches the init by pid below.
			cmd.Env = append(cmd.Env, "_CTLAB_CG_V2="+d)
			joined = true
		} else if tasks, terr := cgroupTasksFor(cg, owner); terr == nil && len(tasks) > 0 {
			cmd.Env = append(cmd.Env, "_CTLAB_CG_JOIN="+strings.Join(tasks, ":")) // the init moves itself (nsexec.c)
			joined = true
		}
	}
	var flags uintptr
	for _, ns := range cfg.Namespaces {
		flags |= cloneFlags[ns]
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
	// On cgroup v2 the child is born in its cgroup (clone3 with
	// CLONE_INTO_CGROUP); on v1 the parent moves it before releasing it.
	intoCgroup := false
	if d := cg.V2Dir(); d != "" && stage == "" {
		if cgfd, oerr := os.Open(d); oerr == nil {
			defer cgfd.Close()
			cmd.SysProcAttr.UseCgroupFD = true
			cmd.SysProcAttr.CgroupFD = int(cgfd.Fd())
			intoCgroup = true
		}
	}
	if userns {
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: cfg.UIDBase, Size: IDRange}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: cfg.UIDBase, Size: IDRange}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		// Become uid 0 *inside* before the execve, or the re-executed init
		// would be the unmapped overflow uid and lose every capability.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	if cfg.Detach {
		cmd.SysProcAttr.Setsid = true
		logf, lerr := os.OpenFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if lerr != nil {
			return c, lerr
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
	} else {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	}

	if !joined && !intoCgroup && cgroups.Effective() == cgroups.V1 {
		// Clone from a thread already in the container's cgroups.
		runtime.LockOSThread()
		back, terr := enterCgroupThread(cg)
		if terr == nil {
			err = cmd.Start()
			if berr := back(); berr != nil {
				// This thread must not run ctlab's work inside the container's
				// limits: leave it locked, so it dies with its goroutine.
				if err == nil {
					cmd.Process.Kill()
				}
				return c, fmt.Errorf("move back from the container's cgroup: %w", berr)
			}
			runtime.UnlockOSThread()
			joined = true
		} else {
			runtime.UnlockOSThread()
			err = cmd.Start()
		}
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return c, fmt.Errorf("clone container init: %w", err)
	}
	ctlR.Close()
	statusW.Close()
	t0 = tl.Since("clone", t0)
	c.cmd = cmd
	c.Pid = cmd.Process.Pid
	c.Start, _ = procStartTime(c.Pid)
	if err = j.intend(Record{Kind: recProcess, Pid: c.Pid, Start: c.Start}); err != nil {
		cmd.Process.Kill()
		return c, err
	}
	status := bufio.NewReader(statusR)
	if stage != "" {
		// The C stage forked the real init; its first word is that pid.
		if c.Pid, err = readInitPid(status); err != nil {
			cmd.Process.Kill()
			return c, err
		}
		c.Start, _ = procStartTime(c.Pid)
		if err = j.intend(Record{Kind: recProcess, Pid: c.Pid, Start: c.Start}); err != nil {
			return c, err
		}
	}
	self := ""
	if cfg.MountSelf {
		if self, err = selfCopy(); err != nil {
			return c, err
		}
	}
	ic := initConfig{
		Namespaces: cfg.Namespaces, Hostname: cfg.Hostname, Rootfs: c.Layout.Merged,
		Args: cfg.Args, Env: cfg.Env, Cwd: cfg.Cwd, Time: cfg.Time, Harden: cfg.Harden,
		Self: self, UserNS: userns,
	}
	// The init may prepare its mounts while we place it in its cgroup and
	// network (the first cgroup v1 attach after an idle spell waits for an
	// RCU grace period); it execs nothing before the go-ahead below.
	if err = json.NewEncoder(ctlW).Encode(ic); err != nil {
		return c, fmt.Errorf("send config to init: %w", err)
	}
	// The reaper keeps its own pointer: on failure the deferred cleanup
	// sets the named result c to nil while the reaper may still run.
	cc := c
	cc.waited = make(chan struct{})
	go func() {
		werr := cmd.Wait()
		cc.exit, cc.werr = exitCode(cmd, werr)
		close(cc.waited)
	}()

	if !intoCgroup && !joined {
		if err = cg.Add(c.Pid); err != nil {
			return c, fmt.Errorf("place init in cgroup: %w", err)
		}
		t0 = tl.Since("cgroup attach", t0)
	}
	failpoint("after-cgroup-attach")

	if cfg.Net {
		host, _ := network.LinkNames(cfg.Name)
		if err = j.intend(Record{Kind: recLink, Name: host}); err != nil {
			return c, err
		}
		c.Net, err = network.Setup(ctx, cfg.Name, c.Pid)
		if err != nil {
			return c, fmt.Errorf("network: %w", err)
		}
		t0 = tl.Since("veth setup", t0)
		failpoint("after-veth")
	}
	if err = c.State.save(); err != nil {
		return c, err
	}

	if _, err = ctlW.Write([]byte{'G'}); err != nil {
		return c, fmt.Errorf("release init: %w", err)
	}
	ctlW.Close()

	if err = readStatus(ctx, status, tl); err != nil {
		return c, err
	}
	tl.Since("init until exec", t0)
	failpoint("after-start")
	return c, nil
}

// initStage says what the init's C stage must unshare before the Go
// runtime starts ("" = nothing, no stage).
func initStage(cfg Config) string {
	var parts []string
	if Has(cfg.Namespaces, NSPID) {
		parts = append(parts, "pid")
	}
	if Has(cfg.Namespaces, NSTime) {
		t := cfg.Time
		parts = append(parts, fmt.Sprintf("time %d %d %d %d",
			int64(t.Monotonic/time.Second), int64(t.Monotonic%time.Second),
			int64(t.Boottime/time.Second), int64(t.Boottime%time.Second)))
	}
	return strings.Join(parts, " ")
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
	own, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	ownPath := map[string]string{} // controller -> this thread's path in its hierarchy
	for _, line := range strings.Split(string(own), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] != "" {
			for _, ctrl := range strings.Split(parts[1], ",") {
				ownPath[ctrl] = parts[2]
			}
		}
	}
	seen := map[string]bool{}
	var join, home []string
	for ctrl, dir := range cg.Paths() {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return nil, err
		}
		if seen[real] {
			continue
		}
		seen[real] = true
		root, ok := strings.CutSuffix(dir, "/ctlab/"+cg.Name())
		p, known := ownPath[ctrl]
		if !ok || !known {
			return nil, fmt.Errorf("no own cgroup for %s", ctrl)
		}
		join = append(join, filepath.Join(dir, "tasks"))
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
	seen := map[string]bool{}
	var out []string
	for _, dir := range cg.Paths() {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return nil, err
		}
		if seen[real] {
			continue
		}
		seen[real] = true
		f := filepath.Join(real, "tasks")
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

// readInitPid reads the {"pid":N} line the C stage writes first.
func readInitPid(r *bufio.Reader) (int, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return 0, fmt.Errorf("container init stage: no pid (%v)", err)
	}
	var m struct {
		Pid   int    `json:"pid"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(line, &m); err != nil || m.Pid <= 0 {
		return 0, fmt.Errorf("container init stage: %q", line)
	}
	return m.Pid, nil
}

// readStatus reads the init's messages until the pipe closes on exec.
func readStatus(ctx context.Context, r io.Reader, tl *Timeline) error {
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var m statusMsg
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				continue
			}
			if m.Error != "" {
				done <- fmt.Errorf("container init: %s", m.Error)
				return
			}
			for _, p := range m.Phases {
				tl.Add(p.Name, p.Duration)
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// prepareUpper creates upper and work. The upper's root directory becomes
// the merged root's, so it must carry the lower root's mode and belong to
// container root, or root in a user namespace could not write to "/".
func prepareUpper(l overlay.Layout, owner int) error {
	for _, d := range []string{l.Upper, l.Work, l.Merged} {
		if err := os.MkdirAll(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	mode := os.FileMode(0o755)
	if fi, err := os.Stat(l.Lower[0]); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := os.Chmod(l.Upper, mode); err != nil {
		return err
	}
	return os.Lchown(l.Upper, owner, owner)
}

// DefaultEnv is the environment of a container command when none is given.
func DefaultEnv() []string {
	term := os.Getenv("TERM")
	if term == "" {
		term = "xterm"
	}
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.ctlab", "HOME=/root", "TERM=" + term}
}

func exitCode(cmd *exec.Cmd, err error) (int, error) {
	if cmd.ProcessState == nil {
		return -1, err
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited():
			return ws.ExitStatus(), nil
		case ws.Signaled():
			return 128 + int(ws.Signal()), nil
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return -1, err
}

// failpoint lets the crash tests kill ctlab at a chosen step:
// CTLAB_FAILPOINT=after-mount makes the process SIGKILL itself there.
func failpoint(name string) {
	if fp := os.Getenv("CTLAB_FAILPOINT"); fp != "" && fp == name {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

// selfCopy returns a copy of the running binary under DataDir/bin, made
// once per binary version. Containers get this copy bound at /.ctlab/ctlab,
// never the real binary: a container cannot overwrite ctlab through it
// (CVE-2019-5736), and root of a user namespace can reach it (the real one
// may sit in a directory only host root can enter).
func selfCopy() (string, error) {
	src, err := os.Open(Binary)
	if err != nil {
		return "", err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return "", err
	}
	st := fi.Sys().(*syscall.Stat_t)
	dst := filepath.Join(binDir(), fmt.Sprintf("ctlab-%x-%x-%x", st.Ino, fi.Size(), fi.ModTime().UnixNano()))
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	tmp, err := os.CreateTemp(binDir(), ".ctlab-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return "", fmt.Errorf("copy ctlab binary: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp.Name(), dst)
}
