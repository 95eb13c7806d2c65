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
			return &InputError{Problem: fmt.Sprintf("unknown namespace kind %q", ns), Fix: "use " + namespaceList}
		}
		if _, err := os.Stat("/proc/self/ns/" + string(ns)); err != nil {
			return &InputError{Problem: fmt.Sprintf("this kernel has no %s namespace", ns), Fix: "leave it out of --ns (see ctlab doctor)"}
		}
	}
	if err := cfg.validateJoin(); err != nil {
		return err
	}
	if !Has(cfg.Namespaces, NSMount) && Has(cfg.Namespaces, NSUser) {
		return &InputError{Problem: "a new user namespace needs a new mount namespace: its root may not mount in ctlab's", Fix: "include mnt in --ns"}
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
// silently ignoring them. Without such a limit nothing is asked of the
// host (the listing scans mountinfo, and creating the cgroup scans it again).
func checkControllers(l cgroups.Limits) error {
	limits := []struct {
		set        bool
		ctrl, flag string
	}{
		{l.MemoryMax > 0, "memory", "--memory"},
		{l.CPUs > 0 || l.CPUWeight > 0, "cpu", "--cpus"},
		{l.PidsMax > 0, "pids", "--pids"},
		{len(l.IOReadBPS)+len(l.IOWriteBPS) > 0, "io", "--io-read-bps"},
	}
	var have map[string]bool
	for _, n := range limits {
		if !n.set {
			continue
		}
		if have == nil {
			list, err := cgroups.Controllers()
			if err != nil {
				return &InputError{Problem: "cannot read cgroup controllers: " + err.Error(), Fix: "mount cgroupfs (see ctlab doctor)"}
			}
			have = map[string]bool{}
			for _, c := range list {
				have[c] = true
			}
		}
		if !have[n.ctrl] && !(n.ctrl == "io" && have["blkio"]) {
			return &InputError{Problem: fmt.Sprintf("%s needs the %s cgroup controller, which this host lacks", n.flag, n.ctrl), Fix: "drop " + n.flag + " or enable the controller (see ctlab doctor)"}
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
// It runs the phases of docs/start-path.md in order: validate, lower dirs,
// journal, dirs, cgroup (and its placement strategy), rootfs, clone,
// handshake, network, go. Each phase journals its object before making it,
// so a failure or a kill -9 at any point is undone by cleanupOne.
//
// Preconditions: root; the host passes `ctlab doctor` for the requested
// namespaces and limits.
func Start(ctx context.Context, cfg Config) (c *Container, err error) {
	s := &starter{ctx: ctx, cfg: cfg, tl: cfg.Timeline}
	if err := s.validate(); err != nil {
		return nil, err
	}
	defer func() {
		for _, f := range s.joins {
			f.Close()
		}
	}()
	lk, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer lk.Close()
	s.t0 = time.Now()
	if err := s.lowerDirs(); err != nil {
		return nil, err
	}
	if s.j, err = openJournal(s.cfg.Name); err != nil {
		return nil, err
	}
	defer s.j.close()
	s.c = s.newContainer()

	// From here on every failure must undo what was made. The journal knows.
	defer func() {
		if err != nil {
			err = s.undo(err)
			c = nil
		}
	}()
	defer s.closeAll() // before the undo: the init sees its pipes close
	for _, phase := range []func() error{
		s.dirs, s.cgroup, s.rootfs, s.clone, s.handshake, s.network, s.goAhead,
	} {
		if err = phase(); err != nil {
			return s.c, err
		}
	}
	s.c.cg = s.cg
	return s.c, nil
}

// starter carries one Start through its phases.
type starter struct {
	ctx    context.Context
	cfg    Config
	tl     *Timeline
	t0     time.Time // end of the previous timed phase
	userns bool
	owner  int // host uid (and gid) of the container's root
	lowers []string
	j      *journal
	c      *Container
	cg     *cgroups.Cgroup
	place  placement
	stage  string // what the init's C stage unshares; "" = no C stage
	cmd    *exec.Cmd
	// joins are the checked namespace files of Config.Join; tree is the
	// detached rootfs a container without a mount namespace of its own
	// attaches at sharedRoot (nsjoin_linux.go).
	joins      map[Namespace]*os.File
	joinUser   bool // the new kinds are made by the C stage, in the joined user namespace
	tree       *os.File
	treeFD     int
	sharedRoot string

	// The init reads its configuration and, later, a go-ahead from ctlR; it
	// reports errors and its own phase timings on statusW, which closes on
	// exec (O_CLOEXEC), so EOF means "the command is running". See
	// "The init protocol" in docs/start-path.md.
	ctlR, ctlW, statusR, statusW *os.File
	status                       *bufio.Reader
	closers                      []io.Closer
}

// validate fills in the defaults and refuses bad input before anything is
// made.
func (s *starter) validate() error {
	cfg := &s.cfg
	if cfg.Namespaces == nil {
		cfg.Namespaces = append([]Namespace(nil), AllNamespaces...)
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	s.userns = Has(cfg.Namespaces, NSUser)
	if cfg.UIDBase == 0 && s.userns {
		cfg.UIDBase = DefaultUIDBase
	}
	if s.userns {
		s.owner = cfg.UIDBase
	}
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.Name
	}
	if cfg.Env == nil {
		cfg.Env = DefaultEnv()
	}
	s.stage = initStage(*cfg)
	if _, err := cStageBinary(InitBinary); err != nil {
		return err // before anything is made
	}
	if _, err := cgroupDriver(*cfg); err != nil {
		return err
	}
	if err := ensureDirs(); err != nil {
		return err
	}
	// Last: the files stay open until Start returns.
	var err error
	if s.joins, err = openJoins(cfg.Join); err != nil {
		return err
	}
	if f, ok := s.joins[NSUser]; ok {
		s.joinUser = true
		// The init becomes this uid: it must reach its files.
		if s.owner, err = userNSRoot(f); err != nil {
			return err
		}
	}
	return nil
}

// lock takes the name's lock and refuses a name that is in use, or whose
// killed run has not been cleaned up yet.
func (s *starter) lock() (*os.File, error) {
	name := s.cfg.Name
	lk, err := lockName(name)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if old, err := Load(name); err == nil {
		lk.Close()
		if old.Running() {
			return nil, &InputError{Problem: fmt.Sprintf("the name %q is already in use by a running container", name), Fix: "ctlab rm -f " + name + " or pick another --name"}
		}
		// An exited container of the same name: remove it first, as its
		// upper layer and cgroup would otherwise be reused.
		return nil, &InputError{Problem: fmt.Sprintf("the name %q is used by an exited container", name), Fix: "ctlab rm " + name}
	}
	if _, err := os.Stat(filepath.Join(journalDir(), name+".jsonl")); err == nil {
		lk.Close()
		return nil, &InputError{Problem: fmt.Sprintf("a killed run left objects named %q behind", name), Fix: "ctlab cleanup"}
	}
	return lk, nil
}

// lowerDirs finds (or, the first time, builds) the overlay's lower layers:
// image layers, a cached base rootfs, or a directory.
func (s *starter) lowerDirs() error {
	cfg := s.cfg
	switch {
	case len(cfg.Layers) > 0:
		s.lowers = cfg.Layers
	case cfg.Rootfs == "" || cfg.Rootfs == "default" || cfg.Rootfs == "busybox" || cfg.Rootfs == "host":
		kind := cfg.Rootfs
		if kind == "" {
			kind = "default"
		}
		dir, err := rootfs.Ensure(s.ctx, kind, filepath.Join(DataDir, "rootfs"), rootfs.Owner{UID: s.owner, GID: s.owner})
		if err != nil {
			return fmt.Errorf("prepare %s rootfs: %w", kind, err)
		}
		s.lowers = []string{dir}
	default:
		abs, _ := filepath.Abs(cfg.Rootfs)
		s.lowers = []string{abs}
	}
	s.t0 = s.tl.Since("rootfs", s.t0)
	return nil
}

// rootDesc names the root filesystem for the state file.
func (cfg *Config) rootDesc() string {
	switch {
	case len(cfg.Layers) > 0:
		return "image"
	case cfg.Rootfs == "":
		return "default"
	}
	return cfg.Rootfs
}

func (s *starter) newContainer() *Container {
	cfg := s.cfg
	st := State{
		Name: cfg.Name, Created: time.Now(), Namespaces: cfg.Namespaces, Hostname: cfg.Hostname,
		Rootfs: cfg.rootDesc(), Args: cfg.Args, Env: cfg.Env, Limits: cfg.Limits, Detached: cfg.Detach,
		Harden: cfg.Harden,
	}
	if s.userns {
		st.UIDBase = cfg.UIDBase
	}
	if !cfg.Detach {
		me := os.Getpid()
		ms, _ := procStartTime(me)
		st.Owner = &Owner{Pid: me, Start: ms}
	}
	return &Container{State: st}
}

// undo removes whatever a failed start made, as the journal names it.
func (s *starter) undo(err error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	if cerr := cleanupOne(rctx, s.cfg.Name); cerr != nil {
		return fmt.Errorf("%w (and cleanup failed: %v)", err, cerr)
	}
	return err
}

// closeAll closes the pipes and files the start opened, once it is over.
func (s *starter) closeAll() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i].Close()
	}
}

func (s *starter) keep(c io.Closer) { s.closers = append(s.closers, c) }

// dirs creates the container's directory (0710, group = its root's gid),
// upper and work, and writes the first state file.
func (s *starter) dirs() error {
	c := s.c
	dir := filepath.Join(containersDir(), s.cfg.Name)
	if err := s.j.intend(Record{Kind: recDir, Path: dir}); err != nil {
		return err
	}
	c.Dir = dir
	c.Layout = overlay.Layout{Lower: s.lowers, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Merged: filepath.Join(dir, "merged"), Volatile: true}
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return fmt.Errorf("create container dir: %w", err)
	}
	if err := os.Chown(dir, 0, s.owner); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o710); err != nil {
		return err
	}
	if s.cfg.RootfsDirect {
		// No overlay: no upper, work or merged dir to make, nor to remove.
		c.Layout = overlay.Layout{Lower: s.lowers}
		return c.State.save()
	}
	if s.cfg.UpperLimit > 0 {
		if err := s.upperTmpfs(); err != nil {
			return err
		}
	}
	if err := prepareUpper(c.Layout, s.owner); err != nil {
		return err
	}
	return c.State.save()
}

// upperTmpfs mounts a tmpfs of UpperLimit bytes at DIR/rw (journalled
// first) and moves the upper and work dirs onto it.
func (s *starter) upperTmpfs() error {
	rw := filepath.Join(s.c.Dir, "rw")
	if err := s.j.intend(Record{Kind: recMount, Path: rw}); err != nil {
		return err
	}
	if err := os.Mkdir(rw, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", rw, err)
	}
	opts := fmt.Sprintf("size=%d,mode=0755,nr_inodes=%d", s.cfg.UpperLimit, max(s.cfg.UpperLimit/4096, 1024))
	if err := unix.Mount("ctlab-upper", rw, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount the upper layer's tmpfs (%s): %w", opts, err)
	}
	s.c.Layout.Upper, s.c.Layout.Work = filepath.Join(rw, "upper"), filepath.Join(rw, "work")
	return nil
}

// cgroup creates ctlab/NAME with its limits and picks how the init will
// get into it (see placement_linux.go).
func (s *starter) cgroup() error {
	if err := s.j.intend(Record{Kind: recCgroup, Name: s.cfg.Name}); err != nil {
		return err
	}
	if d, err := cgroupDriver(s.cfg); err != nil || d == cgroups.DriverSystemd {
		// The scope is made at attach, with the init's pid (placement_systemd_linux.go).
		s.place = &systemdScope{ctx: s.ctx, name: s.cfg.Name, limits: s.cfg.Limits}
		if err == nil && s.cfg.CgroupPath != "" {
			err = s.scopeAt()
		}
		return err
	}
	if s.cfg.CgroupPath != "" {
		return s.cgroupAt()
	}
	cg, err := cgroups.Create(s.cfg.Name, s.cfg.Limits)
	if err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	s.cg = cg
	s.place = choosePlacement(cg, s.stage != "", s.userns || s.joinUser, s.owner)
	s.t0 = s.tl.Since("cgroup create", s.t0)
	failpoint("after-cgroup")
	return nil
}

// rootfs mounts the container's overlay on the host (see "The overlay is
// mounted by the parent" in docs/start-path.md).
func (s *starter) rootfs() error {
	if err := s.rootfsOverlay(); err != nil {
		return err
	}
	if Has(s.cfg.Namespaces, NSMount) {
		return nil
	}
	// No mount namespace of its own: the init attaches a copy of the root
	// at DIR/rootfs in the one it shares and chroots there.
	s.sharedRoot = filepath.Join(s.c.Dir, "rootfs")
	if err := s.j.intend(Record{Kind: recMount, Path: s.sharedRoot}); err != nil {
		return err
	}
	if err := os.Mkdir(s.sharedRoot, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", s.sharedRoot, err)
	}
	root := s.c.Layout.Merged
	if s.cfg.RootfsDirect {
		root = s.lowers[0]
	}
	tree, err := openRootTree(root)
	if err != nil {
		return err
	}
	s.tree = tree
	s.keep(tree)
	return nil
}

// rootfsOverlay mounts the overlay (unless the root is used directly).
func (s *starter) rootfsOverlay() error {
	if s.cfg.RootfsDirect {
		return nil // the init binds the directory in its own mount namespace
	}
	if err := s.j.intend(Record{Kind: recMount, Path: s.c.Layout.Merged}); err != nil {
		return err
	}
	l := s.c.Layout
	if s.userns && len(s.cfg.Layers) > 0 {
		// Image layers are unpacked with their real owners; in a user
		// namespace they are shown shifted to the container's range (the
		// built-in rootfs is a chowned copy per owner instead).
		lowers, done, err := idmappedLowers(s.ctx, l.Lower, s.cfg.UIDBase, s.c.Dir, func(p string) error {
			return s.j.intend(Record{Kind: recMount, Path: p})
		})
		if err != nil {
			return fmt.Errorf("image layers in a user namespace: %w", err)
		}
		defer done()
		l.Lower = lowers
	}
	if err := overlay.Mount(l); err != nil {
		return fmt.Errorf("mount overlay rootfs: %w", err)
	}
	s.t0 = s.tl.Since("overlay mount", s.t0)
	failpoint("after-mount")
	return nil
}

// initCommand builds the init's command: ctlab-init exec'd through fd 5,
// the pipes on fds 3 and 4, the namespaces to clone into, the id maps and
// stdio. The protocol is described in docs/start-path.md ("The init
// protocol").
func (s *starter) initCommand() (*exec.Cmd, error) {
	cfg := s.cfg
	var err error
	if s.ctlR, s.ctlW, err = os.Pipe(); err != nil {
		return nil, err
	}
	s.keep(s.ctlR)
	s.keep(s.ctlW)
	if s.statusR, s.statusW, err = os.Pipe(); err != nil {
		return nil, err
	}
	s.keep(s.statusR)
	s.keep(s.statusW)
	// Exec'd through an fd opened here: with a user namespace the exec
	// happens as the container's root, an unprivileged uid on the host,
	// which may not traverse the directory ctlab is installed in.
	initBin, err := cStageBinary(InitBinary)
	if err != nil {
		return nil, err
	}
	initFile, err := os.Open(initBin)
	if err != nil {
		return nil, fmt.Errorf("open the init binary: %w", err)
	}
	s.keep(initFile)
	cmd := exec.Command("/proc/self/fd/5", initArg)
	cmd.Args[0] = filepath.Base(initBin)
	cmd.ExtraFiles = []*os.File{s.ctlR, s.statusW, initFile} // fds 3, 4, 5
	cmd.Env = []string{}                                     // the init gets its environment over the pipe
	var flags uintptr
	for _, ns := range cfg.Namespaces {
		flags |= cloneFlags[ns]
	}
	if s.joinUser {
		flags = 0 // the C stage makes them once it has joined (unshareAfterJoin)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
	if s.userns {
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: cfg.UIDBase, Size: IDRange}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: cfg.UIDBase, Size: IDRange}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		if len(cfg.UIDMappings) > 0 {
			cmd.SysProcAttr.UidMappings = cfg.UIDMappings
		}
		if len(cfg.GIDMappings) > 0 {
			cmd.SysProcAttr.GidMappings = cfg.GIDMappings
		}
		// Become uid 0 *inside* before the execve, or the re-executed init
		// would be the unmapped overflow uid and lose every capability.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	// Every container gets its own session, so a `kill -TERM 0` inside
	// reaches only its own processes, never ctlab or the caller's shell;
	// except a learner's interactive shell in an unhardened container, which
	// keeps the terminal (their own root on their own machine).
	hardened := cfg.Harden != (Hardening{})
	cmd.SysProcAttr.Setsid = cfg.Detach || hardened || !isTerminal(cfg.Stdin)
	if cfg.Detach && cfg.DetachedStdio {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	} else if cfg.Detach {
		logf, err := os.OpenFile(filepath.Join(s.c.Dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		s.keep(logf)
		cmd.Stdout, cmd.Stderr = logf, logf
	} else {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	}
	return cmd, nil
}

// clone starts the init in its new namespaces, placed in its cgroup as the
// placement strategy says, and journals its pid.
func (s *starter) clone() error {
	cmd, err := s.initCommand()
	if err != nil {
		return err
	}
	stage := stageConfig{}
	if err := s.place.prepare(cmd, stage); err != nil {
		return err
	}
	if s.stage != "" {
		// The C stage's config: fd 6, announced by argv ("__ctlab_init
		// stage"), then the namespace files it joins.
		stage[cfgInitStage] = s.stage
		spec, files := joinSpec(s.joins, 3+len(cmd.ExtraFiles)+1)
		if spec != "" {
			stage[cfgJoin] = spec
		}
		if s.joinUser {
			stage[cfgUnshare] = unshareAfterJoin(s.cfg)
		}
		if s.cfg.Reparent {
			stage[cfgReparent] = "1"
		}
		f, err := stage.pipe()
		if err != nil {
			return err
		}
		s.keep(f)
		cmd.ExtraFiles = append(append(cmd.ExtraFiles, f), files...)
		cmd.Args = append(cmd.Args, "stage")
	}
	if s.tree != nil {
		s.treeFD = 3 + len(cmd.ExtraFiles)
		cmd.ExtraFiles = append(cmd.ExtraFiles, s.tree)
	}
	if err := s.place.clone(cmd); err != nil {
		return err
	}
	if s.userns {
		chownStdio(cmd.Process.Pid, s.cfg.UIDBase)
	}
	s.ctlR.Close()
	s.statusW.Close()
	s.t0 = s.tl.Since("clone", s.t0)
	s.cmd = cmd
	c := s.c
	c.cmd = cmd
	c.Pid = cmd.Process.Pid
	c.Start, _ = procStartTime(c.Pid)
	if err := s.j.intend(Record{Kind: recProcess, Pid: c.Pid, Start: c.Start}); err != nil {
		cmd.Process.Kill()
		return err
	}
	s.status = bufio.NewReader(s.statusR)
	if s.stage == "" {
		return nil
	}
	// The C stage forked the real init; its first word is that pid.
	if c.Pid, err = readInitPid(s.status); err != nil {
		cmd.Process.Kill()
		return err
	}
	c.Start, _ = procStartTime(c.Pid)
	if err := s.j.intend(Record{Kind: recProcess, Pid: c.Pid, Start: c.Start}); err != nil || !s.cfg.Reparent {
		return err
	}
	return reapStage(cmd)
}

// handshake sends the init its configuration, starts the reaper and
// completes the cgroup placement. The init may prepare its mounts
// meanwhile (the first cgroup v1 attach after an idle spell waits for an
// RCU grace period); it execs nothing before the go-ahead.
func (s *starter) handshake() error {
	cfg, c := s.cfg, s.c
	self := ""
	if cfg.MountSelf {
		var err error
		if self, err = selfCopy(); err != nil {
			return err
		}
	}
	root := c.Layout.Merged
	if cfg.RootfsDirect {
		root = s.lowers[0]
	}
	ids, err := resolveUser(root, cfg.User, s.userns)
	if err != nil {
		return err
	}
	if s.sharedRoot != "" {
		root = s.sharedRoot // where the init attaches the tree
	}
	c.User = ids
	ic := initConfig{
		Namespaces: cfg.Namespaces, Hostname: cfg.Hostname, Rootfs: root,
		Args: cfg.Args, Env: cfg.Env, Cwd: cfg.Cwd, Time: cfg.Time, Harden: cfg.Harden,
		Self: self, UserNS: s.userns, Mounts: cfg.Mounts, User: ids, RootTree: s.treeFD,
	}
	if err := json.NewEncoder(s.ctlW).Encode(ic); err != nil {
		return fmt.Errorf("send config to init: %w", err)
	}
	// The reaper keeps its own pointer: on failure the deferred cleanup
	// sets Start's result to nil while the reaper may still run.
	cc, cmd, reparented := c, s.cmd, s.stage != "" && cfg.Reparent
	cc.waited = make(chan struct{})
	go func() {
		if reparented {
			cc.exit, cc.werr = waitReparented(cc.Pid, cc.Start)
		} else {
			werr := cmd.Wait()
			cc.exit, cc.werr = exitCode(cmd, werr)
		}
		close(cc.waited)
	}()
	attached, err := s.place.attach(c.Pid)
	if err != nil {
		return fmt.Errorf("place init in cgroup: %w", err)
	}
	if attached {
		s.t0 = s.tl.Since("cgroup attach", s.t0)
	}
	failpoint("after-cgroup-attach")
	return nil
}

// network gives the container its veth pair (with --net), journalled
// first, then saves the state file.
func (s *starter) network() error {
	if s.cfg.Net && s.cfg.NetPrivate {
		// Nothing is made in the host's namespace: nothing to journal.
		att, probe, err := network.SetupPrivate(s.ctx, s.cfg.Name, s.c.Pid)
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		s.c.Net, s.c.probe = att, probe
		s.t0 = s.tl.Since("veth setup", s.t0)
	} else if s.cfg.Net {
		host, _ := network.LinkNames(s.cfg.Name)
		if err := s.j.intend(Record{Kind: recLink, Name: host}); err != nil {
			return err
		}
		att, err := network.Setup(s.ctx, s.cfg.Name, s.c.Pid)
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		s.c.Net = att
		s.t0 = s.tl.Since("veth setup", s.t0)
		failpoint("after-veth")
	}
	return s.c.State.save()
}

// goAhead releases the init and waits until its command has been exec'd.
func (s *starter) goAhead() error {
	if _, err := s.ctlW.Write([]byte{'G'}); err != nil {
		return fmt.Errorf("release init: %w", err)
	}
	s.ctlW.Close()
	if err := readStatus(s.ctx, s.status, s.tl); err != nil {
		return err
	}
	s.tl.Since("init until exec", s.t0)
	if err := s.readBackCgroup(); err != nil {
		return err
	}
	failpoint("after-start")
	return nil
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
	if len(cfg.Join) > 0 {
		// setns must run single-threaded (mnt, user) and before the fork
		// (pid, time): the C stage does it; it ignores this word.
		parts = append(parts, "join")
	}
	return strings.Join(parts, " ")
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
	if err := json.Unmarshal(line, &m); err == nil && m.Error != "" {
		return 0, fmt.Errorf("container %s", m.Error)
	}
	if err != nil || m.Pid <= 0 {
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
		if code, ok := shellCode(ws); ok {
			return code, nil
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return -1, err
}

// shellCode is a wait status as a shell reports it: the exit code, or
// 128+signal for a killed process; ok is false for any other state.
func shellCode(ws syscall.WaitStatus) (code int, ok bool) {
	switch {
	case ws.Exited():
		return ws.ExitStatus(), true
	case ws.Signaled():
		return 128 + int(ws.Signal()), true
	}
	return -1, false
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
