package lab

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ctlab/ctlab/lab/grade"
	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/scenarios/homework"
)

// Checks of images in ctlab's store (/var/lib/ctlab/images, an OCI
// layout): read from index.json, the manifests, configs and layer blobs
// there, never from what the lab asked the builder to do.

// resolveImage opens a scenario image from the store.
func (e *Engine) resolveImage(tag string) (v1.Image, image.StoreEntry, error) {
	s, err := image.OpenStore("", nil)
	if err != nil {
		return nil, image.StoreEntry{}, err
	}
	return s.Resolve(e.imageName(tag))
}

// ImageExists: the store's index.json names the image.
type ImageExists struct {
	Image string `yaml:"image" json:"image"`
}

func (c *ImageExists) validate(v *validator) { v.target(c.Image, "image") }

func (c *ImageExists) eval(_ context.Context, e *Engine) Evidence {
	ev := Evidence{Target: e.imageName(c.Image), Source: image.StoreRoot + "/index.json", Expected: "listed"}
	_, ent, err := e.resolveImage(c.Image)
	switch {
	case errors.Is(err, image.ErrNotInStore):
		ev.Actual = "not in the store"
	case err != nil:
		return failed(ev.Target, ev.Source, err)
	default:
		ev.Actual, ev.Pass = fmt.Sprintf("%s (id %s)", ent.Name, ent.ShortID()), true
	}
	return ev
}

// ImageLayerCount compares the number of layers in the image's manifest.
type ImageLayerCount struct {
	Image string `yaml:"image" json:"image"`
	Op    string `yaml:"op,omitempty" json:"op,omitempty" vocab:"=="`
	Value int    `yaml:"value" json:"value"`
}

func (c *ImageLayerCount) validate(v *validator) {
	v.target(c.Image, "image")
	if c.Op == "" {
		c.Op = "=="
	}
	v.numericOp(c.Op)
}

func (c *ImageLayerCount) eval(_ context.Context, e *Engine) Evidence {
	name := e.imageName(c.Image)
	_, ent, err := e.resolveImage(c.Image)
	if err != nil {
		return failed(name, "manifest", err)
	}
	ok, _ := compareNum(float64(ent.Layers), c.Op, float64(c.Value))
	return Evidence{Target: name, Source: "manifest " + ent.Digest.String() + " layers[]",
		Expected: fmt.Sprintf("%s %d", c.Op, c.Value), Actual: fmt.Sprint(ent.Layers), Pass: ok}
}

// ImageSize compares the image's size as `ctlab images` shows it (its
// stored, compressed layer blobs) with a size or with another image's.
type ImageSize struct {
	Image string `yaml:"image" json:"image"`
	Op    string `yaml:"op" json:"op"`
	Value string `yaml:"value,omitempty" json:"value,omitempty"`
	Than  string `yaml:"than,omitempty" json:"than,omitempty"`
}

func (c *ImageSize) validate(v *validator) {
	v.target(c.Image, "image")
	v.numericOp(c.Op)
	switch {
	case (c.Value == "") == (c.Than == ""):
		v.errf("give value (a size) or than (another image), not both")
	case c.Value != "":
		v.size("value", c.Value)
	default:
		v.target(c.Than, "image")
	}
}

func (c *ImageSize) eval(_ context.Context, e *Engine) Evidence {
	name := e.imageName(c.Image)
	_, ent, err := e.resolveImage(c.Image)
	if err != nil {
		return failed(name, "manifest", err)
	}
	want, wantDesc := int64(0), c.Value
	if c.Than != "" {
		_, other, err := e.resolveImage(c.Than)
		if err != nil {
			return failed(name, "manifest", err)
		}
		want, wantDesc = other.Size, fmt.Sprintf("%s (%s)", image.HumanSize(other.Size), other.Name)
	} else if want, err = cgroups.ParseSize(c.Value); err != nil {
		return failed(name, "value", err)
	}
	ok, _ := compareNum(float64(ent.Size), c.Op, float64(want))
	return Evidence{Target: name, Source: "manifest " + ent.Digest.String() + " layers[].size (the SIZE of ctlab images)",
		Expected: c.Op + " " + wantDesc, Actual: fmt.Sprintf("%s (%d bytes)", image.HumanSize(ent.Size), ent.Size), Pass: ok}
}

// LayerHasWhiteout: a layer's tar holds the OCI whiteout .wh.NAME for path.
type LayerHasWhiteout struct {
	Image string `yaml:"image" json:"image"`
	Layer int    `yaml:"layer,omitempty" json:"layer,omitempty" vocab:"top"`
	Path  string `yaml:"path" json:"path"`
}

func (c *LayerHasWhiteout) validate(v *validator) {
	v.target(c.Image, "image")
	v.absPath("path", c.Path)
	if c.Layer < 0 {
		v.errf("layer %d: count from 1 (the bottom), or leave it out for the top", c.Layer)
	}
}

func (c *LayerHasWhiteout) eval(_ context.Context, e *Engine) Evidence {
	name := e.imageName(c.Image)
	img, _, err := e.resolveImage(c.Image)
	if err != nil {
		return failed(name, "manifest", err)
	}
	ls, err := img.Layers()
	if err != nil {
		return failed(name, "manifest", err)
	}
	i := len(ls)
	if c.Layer > 0 {
		i = c.Layer
	}
	if i < 1 || i > len(ls) {
		return failed(name, "manifest", fmt.Errorf("layer %d: the image has %d", i, len(ls)))
	}
	dir, base := path.Split(strings.TrimPrefix(path.Clean(c.Path), "/"))
	want := dir + ".wh." + base
	digest, _ := ls[i-1].Digest()
	ev := Evidence{Target: name, Source: fmt.Sprintf("layer %d of %d, blob %s (tar)", i, len(ls), digest),
		Expected: "entry " + want, Actual: "no such entry"}
	found, err := tarHas(ls[i-1], want)
	if err != nil {
		return failed(name, ev.Source, err)
	}
	if found {
		ev.Actual, ev.Pass = "entry "+want, true
	}
	return ev
}

// tarHas reports whether the layer's tar has an entry called name.
func tarHas(l v1.Layer, name string) (bool, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if strings.TrimPrefix(path.Clean(h.Name), "./") == name {
			return true, nil
		}
	}
}

// HistoryContains: a history entry's created_by in the image config.
type HistoryContains struct {
	Image string `yaml:"image" json:"image"`
	Value string `yaml:"value" json:"value"`
}

func (c *HistoryContains) validate(v *validator) {
	v.target(c.Image, "image")
	if c.Value == "" {
		v.errf("value: want the text to find")
	}
}

func (c *HistoryContains) eval(_ context.Context, e *Engine) Evidence {
	name := e.imageName(c.Image)
	img, _, err := e.resolveImage(c.Image)
	if err != nil {
		return failed(name, "config", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return failed(name, "config", err)
	}
	ev := Evidence{Target: name, Source: "config history[].created_by", Expected: "contains " + c.Value,
		Actual: fmt.Sprintf("%d entries, none matches", len(cf.History))}
	for _, h := range cf.History {
		if strings.Contains(h.CreatedBy, c.Value) {
			ev.Actual, ev.Pass = h.CreatedBy, true
			break
		}
	}
	return ev
}

// GradePasses: `ctlab grade HOMEWORK IMAGE` gives every point.
type GradePasses struct {
	Homework string `yaml:"homework" json:"homework"`
	Image    string `yaml:"image" json:"image"`
}

func (c *GradePasses) validate(v *validator) {
	v.target(c.Image, "image")
	if f, err := homework.Open(c.Homework); err != nil {
		v.errf("%v", err)
	} else {
		f.Close()
	}
}

func (c *GradePasses) eval(ctx context.Context, e *Engine) Evidence {
	name := e.imageName(c.Image)
	src := "ctlab grade " + c.Homework + " " + name
	r, err := GradeHomework(ctx, c.Homework, name, e.Lang())
	if err != nil {
		return failed(name, src, err)
	}
	ev := Evidence{Target: name, Source: src, Expected: "pass, all points",
		Actual: fmt.Sprintf("%s, %d/%d points", r.Status, r.Points, r.MaxPoints)}
	if r.Message != "" {
		ev.Actual += ": " + r.Message
	}
	for _, cr := range r.Criteria {
		if cr.Status != grade.Pass && !cr.Informative {
			ev.Actual += "; failed " + cr.ID
		}
	}
	ev.Pass = r.Status == grade.Pass && r.Points == r.MaxPoints
	return ev
}

// LogContains: what a container started by image_run (detached, like
// `ctlab run -d`) wrote to stdout/stderr, from the log file `ctlab logs`
// prints.
type LogContains struct {
	In    string `yaml:"in" json:"in"`
	Value string `yaml:"value" json:"value"`
}

func (c *LogContains) validate(v *validator) {
	v.target(c.In, "container")
	if c.Value == "" {
		v.errf("value: want the text to find")
	}
}

func (c *LogContains) eval(_ context.Context, e *Engine) Evidence {
	ctr := e.container(c.In)
	if ctr == nil {
		return failed(c.In, "log", fmt.Errorf("container %s is not started", c.In))
	}
	src := filepath.Join(ctr.Dir, "log")
	b, err := readCapped(src, 1<<20)
	if err != nil {
		return failed(c.In, src, err)
	}
	got := strings.TrimSpace(string(b))
	if len(got) > 200 {
		got = "…" + got[len(got)-200:]
	}
	return Evidence{Target: c.In, Source: src, Expected: "contains " + c.Value, Actual: got, Pass: strings.Contains(string(b), c.Value)}
}

// readCapped reads at most max bytes of a file (a chatty container's log
// must not fill memory).
func readCapped(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}
