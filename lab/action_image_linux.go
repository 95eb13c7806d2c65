package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/build"
	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/sandbox/overlay"
	"github.com/ctlab/ctlab/sandbox/rootfs"
)

// Actions on images: make a base offline, build a Dockerfile, run, tag and
// remove an image. An image a scenario makes is named "<scenario>-<tag>"
// in ctlab's store (what `ctlab images` lists), so a reset removes exactly
// the scenario's images; the lesson's Dockerfiles use those full names.

// imageName is the store name of a scenario image: "<id>-<tag>:latest".
func (e *Engine) imageName(tag string) string { return e.s.ID + "-" + tag + ":latest" }

// defineImage records tag as an image name of the scenario.
func defineImage(v *validator, tag string) {
	if !nameRE.MatchString(tag) || v.targets[tag] != "" && v.targets[tag] != "image" {
		v.errf("image %q: want a new lower-case name", tag)
		return
	}
	v.targets[tag] = "image"
}

// ImageImport makes a base image without a registry, as `ctlab image
// import-packages` does: layer 1 the default rootfs, layer 2 the host's
// installed packages (none: the rootfs alone).
type ImageImport struct {
	Tag      string   `yaml:"tag" json:"tag"`
	Packages []string `yaml:"packages,omitempty" json:"packages,omitempty"`
}

func (a *ImageImport) validate(v *validator) { defineImage(v, a.Tag) }

func (a *ImageImport) imply(r *implied) { r.Root, r.Overlay = true, true }

func (a *ImageImport) do(ctx context.Context, e *Engine) (string, *int, error) {
	s, err := image.OpenStore("", nil)
	if err != nil {
		return "", nil, err
	}
	base, err := rootfs.Ensure(ctx, "default", filepath.Join(sandbox.DataDir, "rootfs"), rootfs.Owner{})
	if err != nil {
		return "", nil, err
	}
	tmp, err := os.MkdirTemp(s.Root, ".import-")
	if err != nil {
		return "", nil, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(tmp)
	b, err := image.PackageImport{Packages: a.Packages, RootfsDir: base, TmpDir: tmp}.Import(ctx)
	if err != nil {
		return "", nil, err
	}
	img, err := b.Image()
	if err != nil {
		return "", nil, err
	}
	ent, err := s.Put(ctx, img, []string{e.imageName(a.Tag)}, nil)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("%s %s (%d layers, %s)\n", ent.Name, ent.ShortID(), ent.Layers, image.HumanSize(ent.Size)), nil, nil
}

// BuildAction is `ctlab build -t <scenario>-TAG CONTEXT`: the context is
// written from inline files (dockerfile is its Dockerfile) or copied out
// of a directory inside a running container (context_from), under the
// scenario's lab directory. RUN steps get a network namespace of their own
// (--network none): lessons build offline.
type BuildAction struct {
	Tag         string            `yaml:"tag" json:"tag"`
	Dockerfile  string            `yaml:"dockerfile,omitempty" json:"dockerfile,omitempty"`
	Files       map[string]string `yaml:"files,omitempty" json:"files,omitempty"`
	ContextFrom *PathCheck        `yaml:"context_from,omitempty" json:"context_from,omitempty"`
	// Cache uses the layer cache; by default every step runs (--no-cache),
	// so a lesson always shows each RUN's container and upperdir.
	Cache bool `yaml:"cache,omitempty" json:"cache,omitempty"`
}

func (a *BuildAction) validate(v *validator) {
	if a.Dockerfile == "" && a.ContextFrom == nil {
		v.errf("give dockerfile (with files), context_from, or both")
	}
	if a.ContextFrom != nil && len(a.Files) > 0 {
		v.errf("files and context_from: give one of them")
	}
	if a.ContextFrom != nil {
		v.running(a.ContextFrom.In)
		v.absPath("context_from path", a.ContextFrom.Path)
	}
	for f := range a.Files {
		if !fs.ValidPath(f) || f == "Dockerfile" {
			v.errf("file %q: want a relative path inside the context (the Dockerfile is dockerfile)", f)
		}
	}
	defineImage(v, a.Tag)
}

func (a *BuildAction) imply(r *implied) { r.Root, r.Overlay = true, true }

func (a *BuildAction) do(ctx context.Context, e *Engine) (string, *int, error) {
	dir := filepath.Join(e.labDir(), "build-"+a.Tag)
	if err := os.RemoveAll(dir); err != nil {
		return "", nil, err
	}
	if err := sandbox.MakeLabDir(e.s.ID, dir); err != nil {
		return "", nil, err
	}
	files := map[string]string{"Dockerfile": a.Dockerfile}
	for n, c := range a.Files {
		files[n] = c
	}
	if a.ContextFrom != nil {
		var err error
		if files, err = e.contextFrom(a.ContextFrom); err != nil {
			return "", nil, err
		}
		if a.Dockerfile != "" { // files copied out (docker cp), the lab's Dockerfile
			files["Dockerfile"] = a.Dockerfile
		} else if _, ok := files["Dockerfile"]; !ok {
			return "", nil, fmt.Errorf("no Dockerfile in %s:%s", a.ContextFrom.In, a.ContextFrom.Path)
		}
	}
	if err := writeLayer(dir, files); err != nil {
		return "", nil, fmt.Errorf("write build context: %w", err)
	}
	s, err := image.OpenStore("", nil)
	if err != nil {
		return "", nil, err
	}
	var log bytes.Buffer
	_, err = build.Build(ctx, build.Options{Context: dir, Tags: []string{e.imageName(a.Tag)}, Store: s,
		Network: "none", NoCache: !a.Cache, Log: &log})
	var be *build.Error
	if errors.As(err, &be) {
		return log.String(), &be.Status, fmt.Errorf("ctlab build: %s", be.Msg)
	}
	return log.String(), nil, err
}

// contextFrom reads the regular files of a directory inside a running
// container (through /proc/<pid>/root, never leaving it): the context a
// learner wrote in the shell.
func (e *Engine) contextFrom(p *PathCheck) (map[string]string, error) {
	pid, err := e.pidOf(p.In)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(fmt.Sprintf("/proc/%d/root", pid))
	if err != nil {
		return nil, fmt.Errorf("open %s's root: %w", p.In, err)
	}
	defer root.Close()
	sub := strings.TrimPrefix(filepath.Clean(p.Path), "/")
	if sub == "" {
		sub = "."
	}
	out := map[string]string{}
	total := 0
	err = fs.WalkDir(root.FS(), sub, func(name string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := fs.ReadFile(root.FS(), name)
		if total += len(b); total > 16<<20 {
			return fmt.Errorf("build context in %s:%s is over 16 MiB", p.In, p.Path)
		}
		rel, _ := filepath.Rel(sub, name)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read build context %s:%s: %w", p.In, p.Path, err)
	}
	return out, nil
}

// ImageRun is `ctlab run -d IMAGE`: a container declared under `containers`
// (its namespaces, limits, net) started from the image's layers as its
// overlay lowerdirs, with the image's ENTRYPOINT+CMD (unless the
// container gives a command), ENV and WORKDIR.
type ImageRun struct {
	Image     string `yaml:"image" json:"image"`
	Container string `yaml:"container" json:"container"`
}

func (a *ImageRun) validate(v *validator) {
	v.target(a.Image, "image")
	(&StartAction{Container: a.Container}).validate(v) // declared, not yet started
}

func (a *ImageRun) do(ctx context.Context, e *Engine) (string, *int, error) {
	s, err := image.OpenStore("", nil)
	if err != nil {
		return "", nil, err
	}
	im, err := s.Open(e.imageName(a.Image))
	if err != nil {
		return "", nil, err
	}
	// The layers stay share-locked until the container's overlay is
	// mounted; from then on the mount keeps the cache from evicting them.
	defer im.Close()
	layers, err := s.Unpack(ctx, im)
	if err != nil {
		return "", nil, err
	}
	c := im.Config.Config
	spec := e.s.Containers[a.Container]
	err = e.start(ctx, a.Container, func(cfg *sandbox.Config) error {
		cfg.Layers, cfg.Cwd = layers, c.WorkingDir
		if len(spec.Command) == 0 {
			cfg.Args = append(append([]string(nil), c.Entrypoint...), c.Cmd...)
		}
		if len(cfg.Args) == 0 {
			return fmt.Errorf("image %s has no ENTRYPOINT or CMD and the container no command", a.Image)
		}
		cfg.Env = append(append([]string(nil), c.Env...), spec.Env...)
		cfg.Detach = true // `run -d`: its output goes to the log `ctlab logs` reads
		return nil
	})
	return fmt.Sprintf("%d layers as lowerdirs, command %q\n", len(layers), c.Entrypoint), nil, err
}

// ImageTag is `ctlab tag`: a second name for the same manifest.
type ImageTag struct {
	Image string `yaml:"image" json:"image"`
	As    string `yaml:"as" json:"as"`
}

func (a *ImageTag) validate(v *validator) {
	v.target(a.Image, "image")
	defineImage(v, a.As)
}

func (a *ImageTag) do(ctx context.Context, e *Engine) (string, *int, error) {
	s, err := image.OpenStore("", nil)
	if err != nil {
		return "", nil, err
	}
	ent, err := s.Tag(ctx, e.imageName(a.Image), e.imageName(a.As))
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("%s -> %s\n", ent.Name, ent.Digest), nil, nil
}

// ImageRemove is `ctlab rmi`: the name leaves the store's index.json.
type ImageRemove struct {
	Image string `yaml:"image" json:"image"`
}

func (a *ImageRemove) validate(v *validator) { v.target(a.Image, "image") }

func (a *ImageRemove) do(ctx context.Context, e *Engine) (string, *int, error) {
	s, err := image.OpenStore("", nil)
	if err != nil {
		return "", nil, err
	}
	names, err := s.Remove(ctx, e.imageName(a.Image), false)
	return fmt.Sprintf("Untagged: %s\n", strings.Join(names, ", ")), nil, err
}

// scenarioImages lists the store names the scenario's actions can make.
func (s *Scenario) scenarioImages() []string {
	seen := map[string]bool{}
	for _, st := range s.Steps {
		for _, a := range append(append([]*Action(nil), st.Do...), st.Solve...) {
			switch b := a.body.(type) {
			case *ImageImport:
				seen[b.Tag] = true
			case *BuildAction:
				seen[b.Tag] = true
			case *ImageTag:
				seen[b.As] = true
			case *ImagePull:
				seen[b.As] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, s.ID+"-"+t+":latest")
	}
	sort.Strings(out)
	return out
}

// removeImages removes the scenario's images from the store and stops its
// registries (a reset).
// Their blobs and unpacked layers stay for `ctlab image prune`, like rmi.
func (e *Engine) removeImages(ctx context.Context) error {
	e.stopRegistries()
	names := e.s.scenarioImages()
	if len(names) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(image.StoreRoot, "index.json")); err != nil {
		return nil // no store yet: nothing to remove
	}
	s, err := image.OpenStore("", nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if _, err := s.Remove(ctx, n, false); err != nil && !errors.Is(err, image.ErrNotInStore) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CleanupImages removes the store images of shipped scenarios that no run
// holds (their lock is free): what a killed run (kill -9) left in the
// store, for `ctlab cleanup`. A running scenario's images are kept. It
// returns the names it removed.
func CleanupImages(ctx context.Context) ([]string, error) {
	if _, err := os.Stat(filepath.Join(image.StoreRoot, "index.json")); err != nil {
		return nil, nil
	}
	list, err := Shipped()
	if err != nil {
		return nil, err
	}
	s, err := image.OpenStore("", nil)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, ent := range all {
		have[ent.Name] = true
	}
	try, cancel := context.WithCancel(ctx)
	cancel() // lockScenario tries once before it looks at the context
	var removed []string
	var errs []error
	for _, sc := range list {
		names := slices.DeleteFunc(sc.scenarioImages(), func(n string) bool { return !have[n] })
		if len(names) == 0 {
			continue
		}
		lk, err := lockScenario(try, sc.ID)
		if err != nil {
			continue // a run holds it: its images are in use
		}
		for _, n := range names {
			if _, err := s.Remove(ctx, n, false); err != nil && !errors.Is(err, image.ErrNotInStore) {
				errs = append(errs, err)
			} else if err == nil {
				removed = append(removed, n)
			}
		}
		lk.Close()
	}
	return removed, errors.Join(errs...)
}

// ContainerStart is `ctlab start NAME` of an exited container: its
// upperdir is committed into a saved layer (whiteouts kept, as
// overlay.CommitDir does for `ctlab start`), the old container is removed,
// and a new one with the same config gets that layer stacked over its old
// lowerdirs, so the files it wrote survive while the process, its pid and
// its namespaces are new.
type ContainerStart Target

func (a *ContainerStart) validate(v *validator) { v.running(a.In) }

func (a *ContainerStart) imply(r *implied) { r.Root, r.Overlay = true, true }

func (a *ContainerStart) do(ctx context.Context, e *Engine) (string, *int, error) {
	c := e.container(a.In)
	if c == nil {
		return "", nil, fmt.Errorf("container %s is not started", a.In)
	}
	if c.Running() {
		return "", nil, fmt.Errorf("container %s still runs (pid %d): stop it first", a.In, c.Pid)
	}
	if len(c.Layout.Lower) == 0 || c.Layout.Upper == "" {
		return "", nil, fmt.Errorf("container %s has no overlay upperdir to keep", a.In)
	}
	e.mu.Lock()
	last := e.configs[a.In]
	e.mu.Unlock()
	dir := filepath.Join(e.labDir(), "saved-"+a.In)
	if err := sandbox.MakeLabDir(e.s.ID, dir); err != nil {
		return "", nil, err
	}
	// Earlier saved layers are already among the old lowerdirs.
	dst := filepath.Join(dir, fmt.Sprintf("layer-%d", len(c.Layout.Lower)))
	if err := overlay.CommitDir(c.Layout, dst); err != nil {
		return "", nil, fmt.Errorf("save %s's upperdir: %w", a.In, err)
	}
	lowers := append([]string{dst}, c.Layout.Lower...)
	old, limits, detach := c.Pid, c.Limits, c.Detached
	err := e.start(ctx, a.In, func(cfg *sandbox.Config) error {
		if last.Name != "" { // else the spec's config, as e.start built it
			*cfg = last
		}
		cfg.Layers, cfg.Rootfs, cfg.Limits, cfg.Detach = lowers, "", limits, detach
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("old pid %d (exited), new pid %d; upperdir saved as %s, over %d lowerdirs\n", old, e.container(a.In).Pid, dst, len(c.Layout.Lower)), nil, nil
}
