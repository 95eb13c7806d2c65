package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/ctlab/ctlab/sandbox/image"
)

var buildTime = time.Now().UTC().Truncate(time.Second)

func chainKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// from starts a stage: an earlier stage by name, scratch, an image in the
// store, or one pulled from its registry.
func (b *builder) from(ctx context.Context, idx int, ds instructions.Stage) (*stage, error) {
	b.step++
	env := []string{}
	for k, v := range b.globals {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	r, err := b.lex.ProcessWordWithMatches(ds.BaseName, shell.EnvsFromSlice(env))
	if err != nil {
		return nil, inputErr("%s:%d: FROM: %v", b.dfName, fromLine(ds), err)
	}
	baseName := r.Result
	b.logf("STEP %d/%d: FROM %s%s", b.step, b.total, baseName, asName(ds.Name))
	b.event(EventStep, "FROM "+baseName+asName(ds.Name))
	st := &stage{name: ds.Name, index: idx, args: map[string]string{}, shell: []string{"/bin/sh", "-c"}}
	for _, prev := range b.stages {
		if prev.name != "" && strings.EqualFold(prev.name, baseName) {
			cp := *prev
			cp.name, cp.index, cp.args, cp.cmdSet = ds.Name, idx, map[string]string{}, false
			cp.layers = append([]newLayer(nil), prev.layers...)
			cp.dirs = append([]string(nil), prev.dirs...)
			cp.hist = append([]v1.History(nil), prev.hist...)
			cp.cfg = *prev.cfg.DeepCopy()
			return &cp, nil
		}
	}
	if strings.EqualFold(baseName, "scratch") {
		st.base = image.EmptyOCI()
		st.key = chainKey("scratch")
		st.cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		return st, nil
	}
	im, err := b.openImage(ctx, baseName)
	if err != nil {
		return nil, inputErr("%s:%d: FROM %s: %v", b.dfName, fromLine(ds), baseName, err)
	}
	if st.dirs, err = b.opt.Store.Unpack(ctx, im); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", baseName, err)
	}
	st.base, _, _ = b.opt.Store.Resolve(baseName)
	st.cfg = *im.Config.DeepCopy()
	st.key = chainKey("from", im.Digest.String())
	b.logf(" --> %s %s: %d layers (overlay lowerdirs in %s)", baseName, im.Digest, len(st.dirs), b.opt.Store.Cache.Root)
	b.event(EventDone, fmt.Sprintf("%d layers", len(st.dirs)))
	return st, nil
}

// openImage finds ref in the store, pulling it first if it is not there.
func (b *builder) openImage(ctx context.Context, ref string) (*image.Image, error) {
	im, err := b.opt.Store.Open(ref)
	if err == nil || !errors.Is(err, image.ErrNotInStore) {
		return im, err
	}
	b.logf(" --> %s is not in the store: pulling it", ref)
	o := b.opt.Remote
	o.Progress = &image.Progress{W: b.opt.Log}
	if _, perr := b.opt.Store.Pull(ctx, ref, o); perr != nil {
		return nil, fmt.Errorf("not in the store (ctlab images), and the pull failed: %v", perr)
	}
	return b.opt.Store.Open(ref)
}

func fromLine(ds instructions.Stage) int {
	if len(ds.Location) > 0 {
		return ds.Location[0].Start.Line
	}
	return 0
}

func asName(n string) string {
	if n == "" {
		return ""
	}
	return " AS " + n
}

// meta records a config-only step in the history and the cache chain.
func (b *builder) meta(st *stage, c instructions.Command) {
	text := c.(fmt.Stringer).String()
	st.hist = append(st.hist, v1.History{Created: v1.Time{Time: buildTime}, CreatedBy: "/bin/sh -c #(nop) " + text, EmptyLayer: true})
	st.key = chainKey(st.key, text)
	b.logf(" --> config only (no layer)")
	b.event(EventDone, "config only")
}

// dispatch runs one instruction.
func (b *builder) dispatch(ctx context.Context, st *stage, c instructions.Command) error {
	cfg := &st.cfg.Config
	switch c := c.(type) {
	case *instructions.RunCommand:
		return b.run(ctx, st, c)
	case *instructions.CopyCommand:
		return b.copy(ctx, st, c.SourcesAndDest, c.From, c.Chown, c.Chmod, c.Link || c.Parents || len(c.ExcludePatterns) > 0, false, c)
	case *instructions.AddCommand:
		return b.copy(ctx, st, c.SourcesAndDest, "", c.Chown, c.Chmod, c.Link || c.Checksum != "" || len(c.ExcludePatterns) > 0, true, c)
	case *instructions.ArgCommand:
		return b.arg(st, c)
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.WorkdirCommand:
		return b.workdir(ctx, st, c)
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.CmdCommand:
		cfg.Cmd = st.cmdline(c.ShellDependantCmdLine)
		st.cmdSet = true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = st.cmdline(c.ShellDependantCmdLine)
		if !st.cmdSet {
			cfg.Cmd = nil // docker: ENTRYPOINT resets a CMD inherited from the base
		}
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		// EXPOSE is not expanded by the parser's Expand: do it here.
		ports, err := b.lex.ProcessWords(strings.Join(c.Ports, " "), shell.EnvsFromSlice(st.env()))
		if err != nil {
			return inputErr("%s:%d: EXPOSE: %v", b.dfName, line(c), err)
		}
		for _, p := range ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.HealthCheckCommand:
		hc := v1.HealthConfig{}
		raw, _ := json.Marshal(c.Health)
		_ = json.Unmarshal(raw, &hc)
		cfg.Healthcheck = &hc
	case *instructions.ShellCommand:
		st.shell = append([]string(nil), c.Shell...)
		cfg.Shell = st.shell
	case *instructions.MaintainerCommand:
		st.cfg.Author = c.Maintainer
	default:
		return inputErr("%s:%d: %s is not supported by ctlab build", b.dfName, line(c), strings.ToUpper(c.Name()))
	}
	b.meta(st, c)
	return nil
}

func (st *stage) cmdline(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(append([]string(nil), st.shell...), strings.Join(c.CmdLine, " "))
	}
	return append([]string(nil), c.CmdLine...)
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// arg declares build arguments for the stage: the --build-arg value, else
// the ARG's default, else the global ARG's value.
func (b *builder) arg(st *stage, c *instructions.ArgCommand) error {
	for _, kv := range c.Args {
		var v *string
		if kv.Value != nil {
			x, err := b.expand(st, *kv.Value)
			if err != nil {
				return inputErr("%s:%d: ARG: %v", b.dfName, line(c), err)
			}
			v = &x
		} else if g, ok := b.globals[kv.Key]; ok {
			v = g
		}
		if bv, ok := b.opt.BuildArgs[kv.Key]; ok {
			v, b.used[kv.Key] = &bv, true
		}
		if v != nil {
			st.args[kv.Key] = *v
		}
	}
	st.key = chainKey(st.key, c.String(), fmt.Sprint(st.args))
	b.logf(" --> build args only (no layer, not in the image config)")
	b.event(EventDone, "build args only")
	return nil
}

// workdir sets WorkingDir and, like docker, creates the directory (a layer)
// when the image does not have it.
func (b *builder) workdir(ctx context.Context, st *stage, c *instructions.WorkdirCommand) error {
	p := c.Path
	if !path.IsAbs(p) {
		p = path.Join("/", st.cfg.Config.WorkingDir, p)
	}
	st.cfg.Config.WorkingDir = p
	m, err := image.NewMerged(st.lowerdirs(b))
	if err != nil {
		return err
	}
	_, serr := m.Stat(p)
	m.Close()
	if serr == nil {
		b.meta(st, c)
		return nil
	}
	return b.layerFrom(ctx, st, "WORKDIR "+p, chainKey(st.key, "WORKDIR "+p), func(lw *layerWriter) error {
		return lw.dir(p, 0o755, 0, 0)
	})
}

// lowerdirs are the directories an overlay of the stage stacks.
func (st *stage) lowerdirs(b *builder) []string {
	if len(st.dirs) == 0 {
		return []string{b.emptyLD}
	}
	return st.dirs
}

// parseChown resolves --chown=USER[:GROUP] against the stage's passwd and
// group files (names) or takes numbers as they are.
func parseChown(m *image.Merged, spec string) (uid, gid int, err error) {
	if spec == "" {
		return 0, 0, nil
	}
	u, g, hasG := strings.Cut(spec, ":")
	if uid, err = lookupID(m, "/etc/passwd", u); err != nil {
		return 0, 0, err
	}
	gid = uid
	if hasG {
		gid, err = lookupID(m, "/etc/group", g)
	} else if _, nerr := strconv.Atoi(u); nerr != nil {
		gid, err = primaryGID(m, u)
	}
	return uid, gid, err
}

func lookupID(m *image.Merged, file, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	data, _, err := m.ReadFile(file, 1<<20)
	if err != nil {
		return 0, fmt.Errorf("--chown %s: no %s in the image", name, file)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 3 && f[0] == name {
			return strconv.Atoi(f[2])
		}
	}
	return 0, fmt.Errorf("--chown: %s has no entry %q", file, name)
}

func primaryGID(m *image.Merged, user string) (int, error) {
	data, _, _ := m.ReadFile("/etc/passwd", 1<<20)
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 4 && f[0] == user {
			return strconv.Atoi(f[3])
		}
	}
	return 0, fmt.Errorf("--chown: no user %q", user)
}
