// Package build is ctlab's Dockerfile builder: the classic builder made
// visible. Docker's own parser reads the Dockerfile; each RUN is a ctlab
// container (sandbox.Start) over an overlay of the stage's layers so far,
// and its upperdir becomes the next layer (OCI whiteouts, opaque markers).
// COPY and ADD write a layer from the build context the same way. Layers
// are cached by parent + instruction + content; the result goes into the
// image store. It is mechanism only: the CLI prints and parses flags.
package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/ctlab/ctlab/sandbox/image"
)

// DefaultCacheDir holds the build cache: keys/<key> names a layer tar in
// layers/<diffID>.tar.
const DefaultCacheDir = "/var/lib/ctlab/build-cache"

// Options describe one build (docker build's flags).
type Options struct {
	Context    string            // the build context directory
	Dockerfile string            // default Context/Dockerfile
	Target     string            // stage to build (default: the last)
	BuildArgs  map[string]string // --build-arg
	NoCache    bool
	Network    string // "host" (default) or "none" for RUN
	Tags       []string
	Store      *image.Store
	Remote     image.RemoteOptions // for FROM of an image not in the store
	CacheDir   string              // default DefaultCacheDir
	Log        io.Writer           // the build log (required)
	// Progress, when set, also receives each step's milestones: what a
	// compact live view (ctlab build --progress auto) draws.
	Progress func(Event)
}

// Event is one milestone of a build step for a live view.
type Event struct {
	Kind  EventKind
	Step  int    // 1-based, of Total
	Total int    //
	Text  string // the instruction (EventStep), container name (EventRun), result (EventDone)
}

// EventKind says what an Event reports.
type EventKind int

const (
	EventStep EventKind = iota // a step starts
	EventRun                   // its RUN container started
	EventDone                  // its layer (or config change) is made
)

// Error is a build failure with the exit status the CLI should use: 2 for
// bad input (Dockerfile, context, names), 1 for a RUN that failed.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func inputErr(format string, a ...any) error {
	return &Error{Status: 2, Msg: fmt.Sprintf(format, a...)}
}

// Result is what a build produced.
type Result struct {
	Entry  image.StoreEntry
	Steps  int
	Cached int
}

// builder holds one build's state.
type builder struct {
	opt     Options
	id      string // random, part of RUN container names
	dfName  string // Dockerfile name for messages
	lex     *shell.Lex
	stages  []*stage
	globals map[string]*string // global ARGs (before the first FROM)
	used    map[string]bool    // build args some ARG consumed
	cache   *layerCache
	tmp     string
	step    int
	total   int
	res     Result
	emptyLD string // an empty lowerdir for FROM scratch
}

// stage is one FROM ... section being built.
type stage struct {
	name   string
	index  int
	base   v1.Image // FROM image (empty.Image for scratch)
	cfg    v1.ConfigFile
	layers []newLayer
	dirs   []string // lowerdirs, top-most first
	key    string   // cache chain key
	args   map[string]string
	shell  []string
	cmdSet bool         // CMD set in this stage (ENTRYPOINT keeps it)
	hist   []v1.History // new history entries
}

type newLayer struct {
	tar       string
	diffID    v1.Hash
	createdBy string
}

// Build runs the Dockerfile and stores the target stage's image.
func Build(ctx context.Context, opt Options) (*Result, error) {
	b, dfStages, err := prepare(opt)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.tmp)
	target := len(dfStages) - 1
	if opt.Target != "" {
		target = -1
		for i, s := range dfStages {
			if strings.EqualFold(s.Name, opt.Target) {
				target = i
			}
		}
		if target < 0 {
			return nil, inputErr("--target %q: no stage of that name in %s", opt.Target, b.dfName)
		}
	}
	for i := 0; i <= target; i++ {
		b.total += 1 + len(dfStages[i].Commands)
	}
	for i := 0; i <= target; i++ {
		st, err := b.runStage(ctx, i, dfStages[i])
		if err != nil {
			return nil, err
		}
		b.stages = append(b.stages, st)
	}
	for k := range opt.BuildArgs {
		if !b.used[k] {
			fmt.Fprintf(opt.Log, "[warning] build arg %s was not consumed by any ARG\n", k)
		}
	}
	return b.commit(ctx, b.stages[target])
}

func prepare(opt Options) (*builder, []instructions.Stage, error) {
	if opt.Store == nil || opt.Log == nil {
		return nil, nil, errors.New("build: Options.Store and Options.Log are required")
	}
	ctxDir, err := filepath.Abs(opt.Context)
	if err != nil {
		return nil, nil, err
	}
	if st, err := os.Stat(ctxDir); err != nil || !st.IsDir() {
		return nil, nil, inputErr("build context %s is not a directory", opt.Context)
	}
	opt.Context = ctxDir
	if opt.Dockerfile == "" {
		opt.Dockerfile = filepath.Join(ctxDir, "Dockerfile")
	}
	if opt.Network == "" {
		opt.Network = "host"
	}
	if opt.Network != "host" && opt.Network != "none" {
		return nil, nil, inputErr("--network %q: use host or none", opt.Network)
	}
	for _, t := range opt.Tags {
		if _, err := image.NormalizeName(t); err != nil {
			return nil, nil, inputErr("-t %s: %v", t, err)
		}
	}
	stages, meta, err := parseDockerfile(opt.Dockerfile)
	if err != nil {
		return nil, nil, err
	}
	if opt.CacheDir == "" {
		opt.CacheDir = DefaultCacheDir
	}
	cache, err := openLayerCache(opt.CacheDir)
	if err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp(opt.CacheDir, ".build-")
	if err != nil {
		return nil, nil, err
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	b := &builder{opt: opt, id: hex.EncodeToString(id), dfName: filepath.Base(opt.Dockerfile), lex: shell.NewLex('\\'),
		globals: map[string]*string{}, used: map[string]bool{}, cache: cache, tmp: tmp}
	b.emptyLD = filepath.Join(tmp, "empty")
	if err := os.Mkdir(b.emptyLD, 0o755); err != nil {
		return nil, nil, err
	}
	for _, a := range meta {
		for _, kv := range a.Args {
			v := kv.Value
			if bv, ok := opt.BuildArgs[kv.Key]; ok {
				v, b.used[kv.Key] = &bv, true
			}
			b.globals[kv.Key] = v
		}
	}
	return b, stages, nil
}

// parseDockerfile parses with buildkit's parser; errors carry file:line.
func parseDockerfile(path string) ([]instructions.Stage, []instructions.ArgCommand, error) {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, inputErr("cannot read the Dockerfile: %v", err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return nil, nil, locErr(name, err)
	}
	stages, meta, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, nil, locErr(name, err)
	}
	if len(stages) == 0 {
		return nil, nil, inputErr("%s: no FROM instruction", name)
	}
	return stages, meta, nil
}

func locErr(file string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return inputErr("%s:%d: %v", file, le.Locations[0][0].Start.Line, le.Unwrap())
	}
	return inputErr("%s: %v", file, err)
}

func line(c instructions.Command) int {
	if l := c.Location(); len(l) > 0 {
		return l[0].Start.Line
	}
	return 0
}

// event reports a milestone to the live view, if any.
func (b *builder) event(k EventKind, text string) {
	if b.opt.Progress != nil {
		b.opt.Progress(Event{Kind: k, Step: b.step, Total: b.total, Text: text})
	}
}

// logf writes one line of the build log.
func (b *builder) logf(format string, a ...any) {
	fmt.Fprintf(b.opt.Log, format+"\n", a...)
}

// env is what ${VAR} sees: the stage's ARGs, overridden by its ENV.
func (st *stage) env() []string {
	var out []string
	for k, v := range st.args {
		out = append(out, k+"="+v)
	}
	return append(out, st.cfg.Config.Env...)
}

func (b *builder) expand(st *stage, word string) (string, error) {
	r, err := b.lex.ProcessWordWithMatches(word, shell.EnvsFromSlice(st.env()))
	return r.Result, err
}

// runStage resolves FROM and runs the stage's instructions.
func (b *builder) runStage(ctx context.Context, idx int, ds instructions.Stage) (*stage, error) {
	st, err := b.from(ctx, idx, ds)
	if err != nil {
		return nil, err
	}
	for _, c := range ds.Commands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b.step++
		if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
			if _, isArg := c.(*instructions.ArgCommand); !isArg {
				if err := ex.Expand(func(w string) (string, error) { return b.expand(st, w) }); err != nil {
					return nil, inputErr("%s:%d: %s: %v", b.dfName, line(c), strings.ToUpper(c.Name()), err)
				}
			}
		}
		b.logf("STEP %d/%d: %s", b.step, b.total, c.(fmt.Stringer).String())
		b.event(EventStep, c.(fmt.Stringer).String())
		if err := b.dispatch(ctx, st, c); err != nil {
			var be *Error
			if errors.As(err, &be) || ctx.Err() != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%s:%d: %s: %w", b.dfName, line(c), strings.ToUpper(c.Name()), err)
		}
	}
	return st, nil
}

// commit assembles the target stage's image (base layers plus its own) and
// puts it in the store under the tags.
func (b *builder) commit(ctx context.Context, st *stage) (*Result, error) {
	// New layers take the base's flavour: a Docker v2 manifest (a pulled
	// docker.io image) must not list OCI layers, registries refuse the mix.
	lmt := types.OCILayer
	if mt, err := st.base.MediaType(); err == nil && mt == types.DockerManifestSchema2 {
		lmt = types.DockerLayer
	}
	var adds []mutate.Addendum
	for _, l := range st.layers {
		layer, err := l.layer(lmt)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: layer, MediaType: lmt})
	}
	img, err := mutate.Append(st.base, adds...)
	if err != nil {
		return nil, fmt.Errorf("assemble image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = st.cfg.Config
	cf.History = append(append([]v1.History(nil), st.cfg.History...), st.hist...)
	cf.Created = v1.Time{Time: buildTime}
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	e, err := b.opt.Store.Put(ctx, img, b.opt.Tags, nil)
	if err != nil {
		return nil, err
	}
	b.res.Entry, b.res.Steps = e, b.step
	b.logf("COMMIT %s", strings.Join(b.opt.Tags, " "))
	b.logf("Successfully built %s", e.ShortID())
	for _, t := range b.opt.Tags {
		n, _ := image.NormalizeName(t)
		b.logf("Successfully tagged %s", n)
	}
	return &b.res, nil
}
