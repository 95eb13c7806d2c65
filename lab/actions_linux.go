package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/kstate"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// idleCommand keeps a container alive when its spec names no command.
var idleCommand = []string{"sleep", "2147483647"}

// maxOutput bounds what an action's output event carries.
const maxOutput = 64 << 10

// bgProc is a process started by `exec ... background: true`.
type bgProc struct {
	cmd  *exec.Cmd
	pid  int // the process inside (the exec helper's child), 0 until known
	done chan struct{}
	out  *limitedBuffer
	in   string // the scenario container it was exec'd into
}

// standaloneOverlay is one `mount_overlay`.
type standaloneOverlay struct {
	dir    string
	layout overlay.Layout
}

func (e *Engine) container(name string) *sandbox.Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.containers[name]
}

// labDir holds a scenario's stand-alone overlays and committed layers.
func (e *Engine) labDir() string { return sandbox.LabDir(e.s.ID) }

func (e *Engine) doActions(ctx context.Context, st *Step, acts []*Action, solve bool) error {
	for _, a := range acts {
		start := time.Now()
		out, code, err := e.act(ctx, a)
		ev := ActionDone{Time: time.Now(), Step: st.ID, Action: a.Kind(), Desc: a.String(), Solve: solve,
			Duration: time.Since(start), Output: truncate(out, maxOutput), ExitCode: code}
		if err != nil {
			ev.Err = err.Error()
		}
		e.emit(ev)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Kind(), err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n[... output truncated]"
}

func (e *Engine) running(name string) (*sandbox.Container, error) {
	c := e.container(name)
	if c == nil {
		return nil, fmt.Errorf("container %s is not started", name)
	}
	if !c.Running() {
		return nil, fmt.Errorf("container %s is not running", e.ContainerName(name))
	}
	return c, nil
}

// act performs one action and returns its output and exit code (for
// commands).
func (e *Engine) act(ctx context.Context, a *Action) (string, *int, error) {
	switch {
	case a.Start != nil:
		return "", nil, e.start(ctx, a.Start.Container)
	case a.Exec != nil:
		x := a.Exec
		if x.Background {
			return "", nil, e.background(x.In, x.As, x.HelperAs, x.Argv)
		}
		want := 0
		if x.ExpectExit != nil {
			want = *x.ExpectExit
		}
		return e.execIn(ctx, x.In, x.Argv, x.Stdin, x.Timeout, &want)
	case a.WriteFile != nil:
		w := a.WriteFile
		redir := ">"
		if w.Append {
			redir = ">>"
		}
		zero := 0
		// The file is written by a process inside, so it lands where the
		// container sees it (its mount namespace, its upper layer).
		return e.execIn(ctx, w.In, []string{"/bin/sh", "-c", `cat ` + redir + ` "$1"`, "write_file", w.Path}, w.Content, 0, &zero)
	case a.SetLimit != nil:
		c, err := e.running(a.SetLimit.In)
		if err != nil {
			return "", nil, err
		}
		l, err := e.sandboxLimits(c.Limits, a.SetLimit.Limits)
		if err != nil {
			return "", nil, err
		}
		cg, err := c.Cgroup()
		if err != nil {
			return "", nil, err
		}
		if err := cg.Update(l); err != nil {
			return "", nil, err
		}
		c.Limits = l // the base for the next set_limit
		return "", nil, nil
	case a.Freeze != nil:
		c, err := e.running(a.Freeze.In)
		if err != nil {
			return "", nil, err
		}
		return "", nil, c.Pause(ctx)
	case a.Thaw != nil:
		c, err := e.running(a.Thaw.In)
		if err != nil {
			return "", nil, err
		}
		return "", nil, c.Unpause(ctx)
	case a.Kill != nil:
		sig := syscall.SIGKILL
		if a.Kill.Signal != "" {
			sig = signalNum(a.Kill.Signal)
		}
		e.mu.Lock()
		bp := e.procs[a.Kill.In]
		e.mu.Unlock()
		if bp != nil {
			if bp.pid > 0 {
				syscall.Kill(bp.pid, sig)
			}
			return "", nil, bp.cmd.Process.Signal(sig)
		}
		e.mu.Lock()
		hp := e.hostProcs[a.Kill.In]
		e.mu.Unlock()
		if hp != nil {
			if !hp.alive() {
				return "", nil, fmt.Errorf("process %s (pid %d) has exited", a.Kill.In, hp.pid)
			}
			return "", nil, syscall.Kill(hp.pid, sig)
		}
		c, err := e.running(a.Kill.In)
		if err != nil {
			return "", nil, err
		}
		return "", nil, c.Kill(sig)
	case a.Load != nil:
		return e.load(ctx, a.Load)
	case a.MountOverlay != nil:
		return "", nil, e.mountOverlay(a.MountOverlay)
	case a.CommitLayer != nil:
		return e.commitLayer(a.CommitLayer)
	case a.Link != nil:
		c, err := e.running(a.Link.In)
		if err != nil {
			return "", nil, err
		}
		att, err := sandbox.LinkContainer(ctx, c)
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("%+v", *att), nil, nil
	case a.Remove != nil:
		c := e.container(a.Remove.In)
		if c == nil {
			return "", nil, fmt.Errorf("container %s is not started", a.Remove.In)
		}
		err := c.Remove(ctx, true)
		e.mu.Lock()
		delete(e.containers, a.Remove.In)
		e.mu.Unlock()
		// A pair added by `link` is not in the container's state; delete
		// its host end now rather than when the kernel gets round to the
		// dead namespace (idempotent).
		return "", nil, errors.Join(err, network.Teardown(c.Name))
	case a.Host != nil:
		if !e.opt.Trust {
			return "", nil, &TrustError{Scenario: e.s.ID, Steps: e.s.TrustSteps()}
		}
		return e.host(ctx, a.Host)
	case a.HostProcess != nil:
		if !e.opt.Trust {
			return "", nil, &TrustError{Scenario: e.s.ID, Steps: e.s.TrustSteps()}
		}
		return e.hostProcess(ctx, a.HostProcess)
	case a.WriteBundle != nil:
		return e.writeBundle(a.WriteBundle)
	case a.Sleep != nil:
		select {
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-time.After(a.Sleep.For):
			return "", nil, nil
		}
	case a.WaitFor != nil:
		timeout := a.WaitFor.Timeout
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		deadline := time.Now().Add(timeout)
		for {
			ev := e.Evaluate(ctx, []*Check{a.WaitFor.Check})
			if ev[0].Pass {
				return ev[0].Actual, nil, nil
			}
			if time.Now().After(deadline) {
				return "", nil, fmt.Errorf("%s still fails after %s: expected %s, actual %s %s", ev[0].Desc, timeout, ev[0].Expected, ev[0].Actual, ev[0].Err)
			}
			select {
			case <-ctx.Done():
				return "", nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return "", nil, fmt.Errorf("unknown action %s", a.Kind())
}

func signalNum(name string) syscall.Signal {
	switch name {
	case "TERM":
		return syscall.SIGTERM
	case "INT":
		return syscall.SIGINT
	case "HUP":
		return syscall.SIGHUP
	case "STOP":
		return syscall.SIGSTOP
	case "CONT":
		return syscall.SIGCONT
	case "USR1":
		return syscall.SIGUSR1
	case "USR2":
		return syscall.SIGUSR2
	}
	return syscall.SIGKILL
}

// start starts the scenario container spec name as "<id>-<name>".
func (e *Engine) start(ctx context.Context, name string) error {
	spec := e.s.Containers[name]
	if spec == nil {
		return fmt.Errorf("no container %q", name)
	}
	full := e.ContainerName(name)
	// A container of this name left by an earlier run is ours to remove.
	if old, err := sandbox.Load(full); err == nil {
		if err := old.Remove(ctx, true); err != nil {
			return fmt.Errorf("remove leftover %s: %w", full, err)
		}
	}
	nss, err := sandbox.ParseNamespaces(strings.Join(spec.Namespaces, ","))
	if err != nil {
		return err
	}
	if len(spec.Namespaces) == 0 {
		nss = []sandbox.Namespace{}
	}
	l, err := e.sandboxLimits(cgroups.Limits{}, spec.Limits)
	if err != nil {
		return err
	}
	args := spec.Command
	if len(args) == 0 {
		args = idleCommand
	}
	cfg := sandbox.Config{
		Name: full, Namespaces: nss, Hostname: spec.Hostname, Rootfs: spec.Rootfs, Args: args,
		Env: spec.Env, Limits: l, Net: spec.Net, MountSelf: spec.MountSelf,
		Time: sandbox.TimeOffsets{Monotonic: spec.Time.Monotonic, Boottime: spec.Time.Boottime},
	}
	if spec.Hostname == "" {
		cfg.Hostname = name
	}
	if spec.Harden {
		cfg.Harden = sandbox.Hardening{DropCaps: true, NoNewPrivs: true, MaskPaths: true, Seccomp: true}
	}
	c, err := sandbox.Start(ctx, cfg)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.containers[name] = c
	e.mu.Unlock()
	if h, err := hostnameOf(c.Pid); err == nil {
		e.mu.Lock()
		if _, ok := e.hostname0[name]; !ok {
			e.hostname0[name] = h
		}
		e.mu.Unlock()
	}
	return nil
}

// sandboxLimits converts scenario limits (human units) into the sandbox's,
// on top of base (set_limit keeps what it does not mention).
func (e *Engine) sandboxLimits(base cgroups.Limits, l Limits) (cgroups.Limits, error) {
	out := base
	if l.Memory != "" {
		n, err := ParseBytes(l.Memory)
		if err != nil {
			return out, err
		}
		if n < 0 {
			n = 0
		}
		out.MemoryMax = n
	}
	if l.CPU != 0 {
		out.CPUs = l.CPU
	}
	if l.CPUWeight != 0 {
		out.CPUWeight = l.CPUWeight
	}
	if l.Pids != 0 {
		out.PidsMax = l.Pids
	}
	if l.ReadBPS != "" || l.WriteBPS != "" {
		maj, min, err := containerDisk()
		if err != nil {
			return out, fmt.Errorf("find the disk for an io limit: %w", err)
		}
		if l.ReadBPS != "" {
			n, err := ParseBytes(l.ReadBPS)
			if err != nil {
				return out, err
			}
			out.IOReadBPS = []cgroups.IOLimit{{Major: maj, Minor: min, Rate: uint64(max(n, 0))}}
		}
		if l.WriteBPS != "" {
			n, err := ParseBytes(l.WriteBPS)
			if err != nil {
				return out, err
			}
			out.IOWriteBPS = []cgroups.IOLimit{{Major: maj, Minor: min, Rate: uint64(max(n, 0))}}
		}
	}
	switch l.Devices {
	case "deny-all":
		out.DenyDefault = true
	case "allow-all":
		out.Devices = []cgroups.DeviceRule{{Allow: true, Type: 'a', Major: -1, Minor: -1, Access: "rwm"}}
	}
	for _, d := range l.DenyDev {
		typ, maj, min, err := ParseDevice(d)
		if err != nil {
			return out, err
		}
		out.DenyDevices = append(out.DenyDevices, cgroups.DeviceRule{Type: typ[0], Major: maj, Minor: min, Access: "rwm"})
	}
	return out, nil
}

// containerDisk is the block device (whole disk) that holds containers'
// layers -- what a read inside a container ends up reading -- found from
// ctlab's data directory, else the first of its parents or / that is on a
// real disk (not tmpfs or overlay).
func containerDisk() (major, minor uint32, err error) {
	var first error
	for _, p := range []string{sandbox.DataDir, filepath.Dir(sandbox.DataDir), "/var/tmp", "/"} {
		major, minor, err = cgroups.BlockDevice(p)
		if err == nil {
			return major, minor, nil
		}
		if first == nil {
			first = err
		}
	}
	return 0, 0, first
}

// execIn runs argv in a container and checks its exit code against want
// (nil = any).
func (e *Engine) execIn(ctx context.Context, name string, argv []string, stdin string, timeout time.Duration, want *int) (string, *int, error) {
	c, err := e.running(name)
	if err != nil {
		return "", nil, err
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &limitedBuffer{max: maxOutput}
	code, err := c.Exec(ctx, sandbox.ExecConfig{Args: argv, Stdin: strings.NewReader(stdin), Stdout: out, Stderr: out})
	if err != nil {
		return out.String(), nil, err
	}
	if want != nil && code != *want {
		return out.String(), &code, fmt.Errorf("%s exited with %d, want %d: %s", strings.Join(argv, " "), code, *want, strings.TrimSpace(truncate(out.String(), 500)))
	}
	return out.String(), &code, nil
}

// background starts argv in a container without waiting and names it as.
// The exec helper joins the namespaces and forks (a pid namespace applies
// to children only); the named process is that child, the one really
// inside.
func (e *Engine) background(name, as, helperAs string, argv []string) error {
	c, err := e.running(name)
	if err != nil {
		return err
	}
	out := &limitedBuffer{max: maxOutput}
	cmd, release, err := c.Command(sandbox.ExecConfig{Args: argv, Stdout: out, Stderr: out})
	if err != nil {
		return err
	}
	err = cmd.Start()
	release()
	if err != nil {
		return fmt.Errorf("start %v in %s: %w", argv, name, err)
	}
	bp := &bgProc{cmd: cmd, done: make(chan struct{}), out: out, in: name}
	go func() { cmd.Wait(); close(bp.done) }()
	deadline := time.Now().Add(5 * time.Second)
	for bp.pid == 0 {
		if d, err := kstate.Descendants(cmd.Process.Pid); err == nil {
			for _, p := range d {
				if p.PPid == cmd.Process.Pid { // the helper's own child
					bp.pid = p.Pid
					break
				}
			}
			if bp.pid != 0 {
				break
			}
		}
		select {
		case <-bp.done:
			return fmt.Errorf("%v in %s exited at once: %s", argv, name, strings.TrimSpace(out.String()))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return fmt.Errorf("%v in %s: the process inside did not appear", argv, name)
		}
	}
	if as == "" {
		as = fmt.Sprintf("bg-%d", bp.pid)
	}
	e.mu.Lock()
	e.procs[as] = bp
	if helperAs != "" {
		// The helper is the process we started: it joined the namespaces
		// (setns) and forked bp.pid; it shares bp's lifetime.
		e.procs[helperAs] = &bgProc{cmd: cmd, pid: cmd.Process.Pid, done: bp.done, out: out, in: name}
	}
	e.mu.Unlock()
	return nil
}

// load runs a built-in load generator inside the container.
func (e *Engine) load(ctx context.Context, l *LoadAction) (string, *int, error) {
	argv := []string{"/.ctlab/ctlab", "load", l.Kind}
	switch l.Kind {
	case "mem":
		argv = append(argv, l.Size)
	case "fork":
		argv = append(argv, strconv.Itoa(l.Count))
	case "io":
		file := l.File
		if file == "" {
			file = "/var/tmp/ctlab-io"
		}
		argv = append(argv, file, l.Size)
	case "count":
		argv = append(argv, l.File)
	case "shm":
		argv = append(argv, l.Key)
	}
	if l.Threads > 0 {
		argv = append(argv, "--threads", strconv.Itoa(l.Threads))
	}
	if l.Seconds > 0 {
		argv = append(argv, "--seconds", strconv.Itoa(l.Seconds))
	}
	if l.Background {
		return "", nil, e.background(l.In, l.As, "", argv)
	}
	timeout := l.Timeout
	if timeout == 0 {
		timeout = time.Duration(l.Seconds)*time.Second + 60*time.Second
	}
	// A load that gets OOM-killed or refused a fork is the lesson, not an
	// error: the exit code is reported and checks judge the effect.
	out, code, err := e.execIn(ctx, l.In, argv, "", timeout, l.ExpectExit)
	if err == nil && l.ExpectRate != "" {
		err = checkRate(out, l.ExpectRate)
	}
	return out, code, err
}

// host runs a host command (trusted scenarios only).
func (e *Engine) host(ctx context.Context, h *HostAction) (string, *int, error) {
	timeout := h.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &limitedBuffer{max: maxOutput}
	cmd := exec.CommandContext(ctx, h.Argv[0], h.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	// A command that leaves a detached child holding our output pipe (runc
	// run -d without redirections) must not hang the lesson: stop waiting
	// for the pipe shortly after the command itself exits.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil {
		return out.String(), &code, fmt.Errorf("host %v: %w", h.Argv, err)
	}
	return out.String(), &code, nil
}

// mountOverlay builds the layers from inline files and mounts an overlay
// under the scenario's lab directory.
func (e *Engine) mountOverlay(m *MountOverlay) error {
	dir := filepath.Join(e.labDir(), m.As)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	l := overlay.Layout{Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Merged: filepath.Join(dir, "merged")}
	for i, layer := range m.Lower {
		ld := filepath.Join(dir, fmt.Sprintf("lower%d", i))
		for name, content := range layer {
			rel := filepath.Clean("/" + name)[1:]
			p := filepath.Join(ld, rel)
			if strings.HasSuffix(name, "/") {
				if err := os.MkdirAll(p, 0o755); err != nil {
					return err
				}
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(ld, 0o755); err != nil {
			return err
		}
		l.Lower = append([]string{ld}, l.Lower...) // top-most first
	}
	for _, d := range []string{l.Upper, l.Work, l.Merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := sandbox.MountOverlay(e.s.ID, l); err != nil {
		return err
	}
	e.mu.Lock()
	e.overlays[m.As] = &standaloneOverlay{dir: dir, layout: l}
	e.mu.Unlock()
	return nil
}

// commitLayer copies an upperdir into a new layer directory (kernel
// format: whiteouts stay 0/0 devices, opaque dirs keep their xattr).
func (e *Engine) commitLayer(c *CommitLayer) (string, *int, error) {
	l, err := e.layoutOf(c.In)
	if err != nil {
		return "", nil, err
	}
	dst := filepath.Join(e.labDir(), "layers", c.As)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", nil, err
	}
	os.RemoveAll(dst)
	if err := sandbox.Commit(e.s.ID, l, dst); err != nil {
		return "", nil, err
	}
	e.mu.Lock()
	e.layers[c.As] = dst
	e.mu.Unlock()
	changes, _, _ := kstate.Upper(l)
	var b strings.Builder
	for _, ch := range changes {
		fmt.Fprintf(&b, "%s %s\n", ch.Kind.Symbol(), ch.Path)
	}
	return b.String(), nil, nil
}

// layoutOf returns the overlay layout of a container, stand-alone overlay
// or (as an upper-only layout) a committed layer.
func (e *Engine) layoutOf(name string) (overlay.Layout, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.containers[name]; c != nil {
		return c.Layout, nil
	}
	if o := e.overlays[name]; o != nil {
		return o.layout, nil
	}
	if d := e.layers[name]; d != "" {
		return overlay.Layout{Upper: d}, nil
	}
	return overlay.Layout{}, fmt.Errorf("%s has no overlay (not started?)", name)
}

// removeAll removes every kernel object of this scenario: its containers
// (by name, also those an earlier run left), background processes,
// stand-alone overlays and committed layers.
func (e *Engine) removeAll(ctx context.Context) error {
	var errs []error
	if e.opt.Trust {
		// Best effort: what the scenario's host commands made may already
		// be gone (or never have been made).
		for _, a := range e.s.Cleanup {
			if a.Host != nil {
				e.host(ctx, a.Host)
			}
		}
	}
	e.mu.Lock()
	procs := e.procs
	e.procs = map[string]*bgProc{}
	e.containers = map[string]*sandbox.Container{}
	e.overlays = map[string]*standaloneOverlay{}
	e.layers = map[string]string{}
	e.bundles = map[string]string{}
	e.hostProcs = map[string]*hostProc{} // the trusted command's cleanup stops them
	e.mu.Unlock()
	// Bundles first: their rootfs/ binds hold the containers' overlays.
	keep, err := unmountBundles(e.labDir())
	if err != nil {
		errs = append(errs, err)
	}
	for _, bp := range procs {
		if bp.pid > 0 {
			syscall.Kill(bp.pid, syscall.SIGKILL)
		}
		bp.cmd.Process.Kill()
	}
	for name := range e.s.Containers {
		c, err := sandbox.Load(e.ContainerName(name))
		if errors.Is(err, sandbox.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.Remove(ctx, true); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", c.Name, err))
		}
	}
	// The kernel destroys a dead net namespace (and with it the host end
	// of its veth pair) asynchronously; delete our end now so a reset is
	// complete when it returns. Only links named for these containers.
	for name := range e.s.Containers {
		if err := network.Teardown(e.ContainerName(name)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, bp := range procs {
		select {
		case <-bp.done:
		case <-time.After(5 * time.Second):
		}
	}
	dir := e.labDir()
	if ents, err := os.ReadDir(dir); err == nil {
		for _, ent := range ents {
			merged := filepath.Join(dir, ent.Name(), "merged")
			if ok, _ := overlay.IsMounted(merged); ok {
				if err := overlay.Unmount(merged); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, ent := range ents {
			if keep[ent.Name()] {
				// never recurse through a mount into a container's files
				errs = append(errs, fmt.Errorf("%s/rootfs is still mounted: not removed", filepath.Join(dir, ent.Name())))
				continue
			}
			if err := os.RemoveAll(filepath.Join(dir, ent.Name())); err != nil {
				errs = append(errs, err)
			}
		}
		if len(keep) == 0 {
			if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := sandbox.CleanupLab(ctx, e.s.ID); err != nil { // what the lab journal still names
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reset scenario %s: %w", e.s.ID, err)
	}
	return nil
}

// limitedBuffer keeps the first max bytes written and discards the rest
// (a chatty command must not fill memory).
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }

var _ io.Writer = (*limitedBuffer)(nil)
