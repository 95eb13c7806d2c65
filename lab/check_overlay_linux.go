package lab

import (
	"context"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Checks of overlay filesystems: what a write, a delete or a replaced
// directory leaves in the upper layer of a container, a stand-alone
// overlay or a committed layer.

// PathCheck names a path inside a container's (or overlay's) filesystem.
type PathCheck struct {
	In   string `yaml:"in" json:"in"`
	Path string `yaml:"path" json:"path"`
}

// FileInUpper: the path is in the upperdir (copied up or new).
type FileInUpper PathCheck

// WhiteoutExists: the path is a whiteout (a 0/0 character device).
type WhiteoutExists PathCheck

// OpaqueDir: the path is a directory marked trusted.overlay.opaque=y.
type OpaqueDir PathCheck

func (t *FileInUpper) validate(v *validator)    { (*PathCheck)(t).validate(v) }
func (t *WhiteoutExists) validate(v *validator) { (*PathCheck)(t).validate(v) }
func (t *OpaqueDir) validate(v *validator)      { (*PathCheck)(t).validate(v) }

func (p *PathCheck) validate(v *validator) {
	v.target(p.In, "container", "overlay", "layer")
	v.absPath("path", p.Path)
}

func (t *FileInUpper) eval(_ context.Context, e *Engine) Evidence {
	return (*PathCheck)(t).upper(e, "a file in the upperdir (copied up or new)", "",
		func(u kstate.UpperFile) bool { return u.Exists && !u.Whiteout })
}

func (t *WhiteoutExists) eval(_ context.Context, e *Engine) Evidence {
	return (*PathCheck)(t).upper(e, "a whiteout (character device 0/0)", "",
		func(u kstate.UpperFile) bool { return u.Whiteout })
}

func (t *OpaqueDir) eval(_ context.Context, e *Engine) Evidence {
	return (*PathCheck)(t).upper(e, "an opaque directory (trusted.overlay.opaque=y)", " (xattr trusted.overlay.opaque)",
		func(u kstate.UpperFile) bool { return u.Opaque })
}

// upper looks the path up in the target's upperdir and judges it with ok.
func (p *PathCheck) upper(e *Engine, want, srcNote string, ok func(kstate.UpperFile) bool) Evidence {
	l, err := e.layoutOf(p.In)
	if err != nil {
		return Evidence{Target: p.In, Source: "upperdir", Actual: "(unreadable)", Err: err.Error()}
	}
	u, src, err := kstate.UpperEntry(l, p.Path)
	if err != nil {
		return Evidence{Target: p.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	actual := "absent from the upperdir"
	switch {
	case u.Whiteout:
		actual = "whiteout (char 0/0)"
	case u.Opaque:
		actual = "directory, opaque"
	case u.Exists && u.Mode.IsDir():
		actual = "directory, not opaque"
	case u.Exists:
		actual = u.Mode.String()
	}
	return Evidence{Target: p.In, Source: src + srcNote, Expected: want, Actual: actual, Pass: ok(u)}
}
