package lab

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/kstate"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// Actions on overlay filesystems and bundles: a stand-alone overlay from
// inline layers, a committed layer, an OCI bundle of a container. Each
// lives under the scenario's lab directory, sandbox.LabDir(id).

// MountOverlay mounts a stand-alone overlay (lower layers given as inline
// files) so a lesson can show lower/upper/merged without a container.
type MountOverlay struct {
	As    string              `yaml:"as" json:"as"`
	Lower []map[string]string `yaml:"lower" json:"lower"` // one map path->content per layer, bottom first
}

func (a *MountOverlay) validate(v *validator) {
	if !nameRE.MatchString(a.As) || a.As == "layers" || v.targets[a.As] != "" {
		v.errf("as %q: want a new lower-case name", a.As)
	}
	if len(a.Lower) == 0 {
		v.errf("lower needs at least one layer")
	}
	for _, layer := range a.Lower {
		for f := range layer {
			if !fs.ValidPath(strings.TrimPrefix(f, "/")) || strings.HasSuffix(f, "/") && len(f) == 1 {
				v.errf("file %q: want a relative path inside the layer", f)
			}
		}
	}
	v.targets[a.As] = "overlay"
	v.started[a.As] = true
}

func (a *MountOverlay) imply(r *implied) { r.Root, r.Overlay = true, true }

func (a *MountOverlay) do(_ context.Context, e *Engine) (string, *int, error) {
	return "", nil, e.mountOverlay(a)
}

// layout is where the overlay of scenario id lives: lower0.. (bottom
// first), upper, work, merged under <lab dir>/<as>.
func (a *MountOverlay) layout(id string) overlay.Layout {
	dir := filepath.Join(sandbox.LabDir(id), a.As)
	l := overlay.Layout{Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Merged: filepath.Join(dir, "merged")}
	for i := len(a.Lower) - 1; i >= 0; i-- { // top-most first
		l.Lower = append(l.Lower, filepath.Join(dir, fmt.Sprintf("lower%d", i)))
	}
	return l
}

// OverlayLayouts lists the stand-alone overlays (mount_overlay) the scenario
// makes, by name, where the engine mounts them -- for a state pane that
// shows one without asking a running engine.
func (s *Scenario) OverlayLayouts() map[string]overlay.Layout {
	out := map[string]overlay.Layout{}
	for _, st := range s.Steps {
		for _, a := range slices.Concat(st.Do, st.Solve) {
			if m, ok := a.body.(*MountOverlay); ok {
				out[m.As] = m.layout(s.ID)
			}
		}
	}
	return out
}

// mountOverlay builds the layers from inline files and mounts an overlay
// under the scenario's lab directory.
func (e *Engine) mountOverlay(m *MountOverlay) error {
	l := m.layout(e.s.ID)
	dir := filepath.Dir(l.Upper)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for i, layer := range m.Lower {
		if err := writeLayer(filepath.Join(dir, fmt.Sprintf("lower%d", i)), layer); err != nil {
			return err
		}
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

// writeLayer writes one inline layer (path -> content; a path ending in /
// is a directory) into dir.
func writeLayer(dir string, layer map[string]string) error {
	for name, content := range layer {
		p := filepath.Join(dir, filepath.Clean("/" + name)[1:])
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
	return os.MkdirAll(dir, 0o755)
}

// CommitLayer turns a container's (or overlay's) upperdir into a new layer
// directory, what `docker commit` and each Dockerfile RUN do.
type CommitLayer struct {
	In string `yaml:"in" json:"in"`
	As string `yaml:"as" json:"as"`
}

func (a *CommitLayer) validate(v *validator) {
	if t := v.targets[a.In]; t != "container" && t != "overlay" {
		v.errf("%q is not a container or overlay of this scenario", a.In)
	}
	if !nameRE.MatchString(a.As) || v.targets[a.As] != "" {
		v.errf("as %q: want a new lower-case name", a.As)
	}
	v.targets[a.As] = "layer"
}

func (a *CommitLayer) do(_ context.Context, e *Engine) (string, *int, error) {
	return e.commitLayer(a)
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

// WriteBundle writes an OCI runtime bundle of a running container:
// config.json (runtime-spec 1.x, from the container's configuration) and
// rootfs/ (a bind mount of its overlay's merged directory), in the
// scenario's lab directory (/var/lib/ctlab/lab/<scenario>/<as>). A reset
// unmounts and removes it. As names it as a check target
// (file_contains {in: AS, path: /config.json}).
type WriteBundle struct {
	In string `yaml:"in" json:"in"`
	As string `yaml:"as" json:"as"`
}

func (a *WriteBundle) validate(v *validator) {
	if v.targets[a.In] != "container" {
		v.errf("%q is not a container of this scenario", a.In)
	} else {
		v.running(a.In)
	}
	// "layers" is the lab directory's folder of committed layers
	if !nameRE.MatchString(a.As) || a.As == "layers" || v.targets[a.As] != "" && v.targets[a.As] != "bundle" {
		v.errf("as %q: want a new lower-case name", a.As)
	} else {
		v.targets[a.As] = "bundle"
	}
}

func (a *WriteBundle) do(_ context.Context, e *Engine) (string, *int, error) {
	return e.writeBundle(a)
}
