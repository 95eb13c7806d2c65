package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// tail keeps the last lines written through it (for a failing RUN's error).
type tail struct {
	mu    sync.Mutex
	w     io.Writer
	lines []string
	part  string
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.part + string(p)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	t.lines = append(t.lines, parts[:len(parts)-1]...)
	if len(t.lines) > 10 {
		t.lines = t.lines[len(t.lines)-10:]
	}
	return t.w.Write(p)
}

func (t *tail) last() string {
	l := t.lines
	if t.part != "" {
		l = append(l, t.part)
	}
	return strings.Join(l, "\n")
}

// runEnv is RUN's environment: the image's ENV plus the stage's ARGs (as
// docker passes them), ENV winning.
func (st *stage) runEnv() []string {
	env := append([]string(nil), st.cfg.Config.Env...)
	var keys []string
	for k := range st.args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !hasEnv(env, k) {
			env = append(env, k+"="+st.args[k])
		}
	}
	if !hasEnv(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return env
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

// run executes RUN in a ctlab container whose rootfs is an overlay of the
// stage's layers; the upperdir, written as an OCI layer tar, is the layer.
func (b *builder) run(ctx context.Context, st *stage, c *instructions.RunCommand) error {
	if len(c.FlagsUsed) > 0 {
		return inputErr("%s:%d: RUN --%s is not supported by ctlab build", b.dfName, line(c), c.FlagsUsed[0])
	}
	if len(c.CmdLine) == 0 || strings.TrimSpace(strings.Join(c.CmdLine, "")) == "" {
		return inputErr("%s:%d: RUN needs a command", b.dfName, line(c))
	}
	if len(c.Files) > 0 {
		return inputErr("%s:%d: RUN with a here-document is not supported by ctlab build", b.dfName, line(c))
	}
	args := st.cmdline(c.ShellDependantCmdLine)
	env := st.runEnv()
	createdBy := strings.Join(args, " ")
	if !c.PrependShell {
		createdBy = "RUN " + c.String()[4:]
	}
	key := chainKey(st.key, c.String(), strings.Join(env, "\x00"), st.cfg.Config.WorkingDir, st.cfg.Config.User, b.opt.Network)
	if l, ok := b.cache.get(key); ok && !b.opt.NoCache {
		b.res.Cached++
		return b.addLayer(ctx, st, l, key, true, nil)
	}
	tmp, changes, err := b.runContainer(ctx, st, args, env, c)
	if err != nil {
		return err
	}
	hf, err := b.cache.putFile(key, tmp, createdBy)
	if err != nil {
		return err
	}
	return b.addLayer(ctx, st, hf, key, false, changes)
}

func (b *builder) runContainer(ctx context.Context, st *stage, args, env []string, c *instructions.RunCommand) (*hashFile, []string, error) {
	ns := []sandbox.Namespace{sandbox.NSMount, sandbox.NSUTS, sandbox.NSIPC, sandbox.NSPID, sandbox.NSCgroup}
	if b.opt.Network == "none" {
		ns = append(ns, sandbox.NSNet) // a network namespace with only lo
	}
	out := &tail{w: b.opt.Log}
	name := fmt.Sprintf("build-%s-%d", b.id, b.step)
	layers := st.lowerdirs(b)
	if b.opt.Network == "host" {
		// docker build's RUN sees the host's resolv.conf, never stored in
		// the layer: here it is a top lowerdir of its own (apt-get works).
		if dns, err := b.resolvLayer(); err == nil {
			layers = append([]string{dns}, layers...)
		}
	}
	cfg := sandbox.Config{
		Name: name, Namespaces: ns, Hostname: "ctlab-build", Layers: layers,
		Args: WrapUser(st.cfg.Config.User, args), Env: env, Cwd: st.cfg.Config.WorkingDir, Stdout: out, Stderr: out,
	}
	// RUN after USER: ctlab's own as-user step switches ids inside.
	cfg.MountSelf = len(cfg.Args) != len(args)
	selfMark := cfg.MountSelf && !b.inLowers(st, "/.ctlab")
	t0 := time.Now()
	ctr, err := sandbox.Start(ctx, cfg)
	if err != nil {
		return nil, nil, &Error{Status: 1, Msg: fmt.Sprintf("%s:%d: RUN could not start: %v", b.dfName, line(c), err)}
	}
	defer ctr.Remove(context.WithoutCancel(ctx), true)
	b.logf(" --> container %s (pid %d on the host; %d lowerdirs, upperdir %s, network %s)", name, ctr.Pid, len(cfg.Layers), ctr.Layout.Upper, b.opt.Network)
	b.event(EventRun, name)
	code, err := ctr.Wait(ctx)
	if err != nil {
		return nil, nil, err
	}
	if code != 0 {
		return nil, nil, &Error{Status: 1, Msg: fmt.Sprintf("%s:%d: RUN %s: exit status %d; last lines of its output:\n%s",
			b.dfName, line(c), strings.Join(args, " "), code, out.last())}
	}
	if selfMark {
		// The mount point of /.ctlab/ctlab is the sandbox's, not the step's.
		if err := os.RemoveAll(filepath.Join(ctr.Layout.Upper, ".ctlab")); err != nil {
			return nil, nil, err
		}
	}
	diff, err := overlay.Diff(ctr.Layout)
	if err != nil {
		return nil, nil, fmt.Errorf("read upperdir: %w", err)
	}
	changes := make([]string, 0, len(diff))
	for _, d := range diff {
		changes = append(changes, symbol(d.Kind)+" "+d.Path)
	}
	hf, err := newHashFile(b.tmp)
	if err != nil {
		return nil, nil, err
	}
	if err := overlay.CommitTar(ctr.Layout, hf); err != nil {
		hf.f.Close()
		os.Remove(hf.f.Name())
		return nil, nil, err
	}
	b.logf(" --> exit status 0 after %s; upperdir: %d changes (+ added, ~ modified, - whiteout, opaque)", time.Since(t0).Round(time.Millisecond), len(changes))
	return hf, changes, nil
}

func symbol(k overlay.ChangeKind) string {
	switch k {
	case overlay.Added:
		return "+"
	case overlay.Modified:
		return "~"
	case overlay.Deleted:
		return "-"
	}
	return "opaque"
}

// resolvLayer is a one-file lowerdir holding the host's /etc/resolv.conf.
func (b *builder) resolvLayer() (string, error) {
	dir := filepath.Join(b.tmp, "resolv")
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return "", err
	}
	tmp := dir + ".tmp"
	if err := os.MkdirAll(filepath.Join(tmp, "etc"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "etc", "resolv.conf"), data, 0o644); err != nil {
		return "", err
	}
	return dir, os.Rename(tmp, dir)
}

// inLowers reports whether p exists in the stage's layers.
func (b *builder) inLowers(st *stage, p string) bool {
	m, err := image.NewMerged(st.lowerdirs(b))
	if err != nil {
		return false
	}
	defer m.Close()
	_, err = m.Lstat(p)
	return err == nil
}
