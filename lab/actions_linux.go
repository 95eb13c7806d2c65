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
		out, code, err := a.body.do(ctx, e)
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

// start starts the scenario container spec name as "<id>-<name>"; mods
// adjust its config (image_run: the image's layers and command).
func (e *Engine) start(ctx context.Context, name string, mods ...func(*sandbox.Config) error) error {
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
		Env: spec.Env, Limits: l, Net: spec.Net, MountSelf: spec.MountSelf, CgroupDriver: spec.CgroupDriver,
		Time: sandbox.TimeOffsets{Monotonic: spec.Time.Monotonic, Boottime: spec.Time.Boottime},
	}
	if spec.Hostname == "" {
		cfg.Hostname = name
	}
	if spec.Harden {
		cfg.Harden = sandbox.Hardening{DropCaps: true, NoNewPrivs: true, MaskPaths: true, Seccomp: true}
	}
	for _, m := range mods {
		if err := m(&cfg); err != nil {
			return err
		}
	}
	c, err := sandbox.Start(ctx, cfg)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.containers[name] = c
	e.configs[name] = cfg
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
		n, err := cgroups.ParseSize(l.Memory)
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
			n, err := cgroups.ParseSize(l.ReadBPS)
			if err != nil {
				return out, err
			}
			out.IOReadBPS = []cgroups.IOLimit{{Major: maj, Minor: min, Rate: uint64(max(n, 0))}}
		}
		if l.WriteBPS != "" {
			n, err := cgroups.ParseSize(l.WriteBPS)
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
		r, err := denyRule(d)
		if err != nil {
			return out, err
		}
		out.DenyDevices = append(out.DenyDevices, r)
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
			a.body.do(ctx, e)
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
	// Daemons first: they write into the lab dir, and their mounts hold files there.
	if err := e.stopOCI(ctx); err != nil {
		errs = append(errs, err)
	}
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
	if err := e.removeImages(ctx); err != nil { // build, image_import, image_tag
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
