package image

import (
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Info is what a report shows about an image: its run configuration,
// history, and per layer its size and what it changed (like `dive`).
type Info struct {
	Ref        string            `json:"ref"`
	Format     Format            `json:"format"`
	Digest     string            `json:"digest"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        []string          `json:"env,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	User       string            `json:"user,omitempty"`
	Ports      []string          `json:"exposed_ports,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	History    []History         `json:"history,omitempty"`
	Layers     []LayerInfo       `json:"layers"`
	// Size is the sum of the layers' stored sizes; Unpacked of their tar streams.
	Size     int64 `json:"size"`
	Unpacked int64 `json:"unpacked"`
}

// History is one Dockerfile step as recorded in the config.
type History struct {
	Created    time.Time `json:"created,omitzero"`
	CreatedBy  string    `json:"created_by,omitempty"`
	Comment    string    `json:"comment,omitempty"`
	EmptyLayer bool      `json:"empty_layer,omitempty"`
	Layer      int       `json:"layer"` // index into Layers, -1 for metadata-only steps
}

// LayerInfo describes one layer, bottom first.
type LayerInfo struct {
	Index     int      `json:"index"`
	DiffID    string   `json:"diff_id"`
	Digest    string   `json:"digest,omitempty"`
	Size      int64    `json:"size"`     // stored (usually compressed) size, 0 if unknown
	Unpacked  int64    `json:"unpacked"` // tar stream size
	CreatedBy string   `json:"created_by,omitempty"`
	Changes   *Changes `json:"changes,omitempty"`
}

// ChangeKind is the dive vocabulary.
type ChangeKind string

// Change kinds.
const (
	Added    ChangeKind = "added"
	Modified ChangeKind = "modified"
	Deleted  ChangeKind = "deleted"
)

// Change is one path a layer added, modified or deleted.
type Change struct {
	Path string     `json:"path"`
	Kind ChangeKind `json:"kind"`
	Type EntryKind  `json:"type,omitempty"`
	Size int64      `json:"size,omitempty"`
}

// Changes lists a layer's changes (directories that merely exist as
// parents are not listed) and counts them.
type Changes struct {
	Added    int      `json:"added"`
	Modified int      `json:"modified"`
	Deleted  int      `json:"deleted"`
	List     []Change `json:"list,omitempty"`
	// Truncated is set when List was cut to the limit given to Describe.
	Truncated bool `json:"truncated,omitempty"`
}

// Describe builds Info. layers are the unpacked layers, bottom first (as
// Unpack returns them); maxList bounds each layer's change list.
func (im *Image) Describe(layers []*Unpacked, maxList int) (*Info, error) {
	c := im.Config.Config
	info := &Info{
		Ref: im.Ref, Format: im.Format, Digest: im.Digest.String(),
		Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User,
		Labels: c.Labels,
	}
	for p := range c.ExposedPorts {
		info.Ports = append(info.Ports, p)
	}
	sort.Strings(info.Ports)
	li := 0
	for _, h := range im.Config.History {
		e := History{Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer, Layer: -1}
		if !h.EmptyLayer {
			e.Layer = li
			li++
		}
		info.History = append(info.History, e)
	}
	for i, u := range layers {
		l := LayerInfo{Index: i, DiffID: u.DiffID.String(), Unpacked: u.Meta.StreamBytes}
		if im.Manifest != nil && i < len(im.Manifest.Layers) && im.Format != FormatDockerArchive {
			l.Digest = im.Manifest.Layers[i].Digest.String()
			l.Size = im.Manifest.Layers[i].Size
		} else {
			l.Size = u.Meta.StreamBytes
		}
		for _, h := range info.History {
			if h.Layer == i {
				l.CreatedBy = h.CreatedBy
			}
		}
		info.Size += l.Size
		info.Unpacked += l.Unpacked
		info.Layers = append(info.Layers, l)
	}
	changes, err := LayerChanges(layers, maxList)
	if err != nil {
		return nil, err
	}
	for i := range info.Layers {
		info.Layers[i].Changes = changes[i]
	}
	return info, nil
}

// LayerChanges computes, for each layer (bottom first), what it added,
// modified and deleted relative to the layers below it, from the entry lists
// recorded at unpack time (no file is read).
func LayerChanges(layers []*Unpacked, maxList int) ([]*Changes, error) {
	lower := map[string]EntryKind{} // merged view of the layers below
	out := make([]*Changes, len(layers))
	for i, u := range layers {
		ch := &Changes{}
		var entries []Entry
		if err := u.Entries(func(e Entry) error { entries = append(entries, e); return nil }); err != nil {
			return nil, err
		}
		present := map[string]bool{}
		for _, e := range entries {
			if e.Kind != KindWhiteout && e.Kind != KindOpaque && e.Kind != KindDropped {
				present[e.Path] = true
			}
		}
		add := func(c Change) {
			switch c.Kind {
			case Added:
				ch.Added++
			case Modified:
				ch.Modified++
			case Deleted:
				ch.Deleted++
			}
			if len(ch.List) < maxList {
				ch.List = append(ch.List, c)
			} else {
				ch.Truncated = true
			}
		}
		var removed []string
		for _, e := range entries {
			switch e.Kind {
			case KindWhiteout:
				if _, ok := lower[e.Path]; ok && !present[e.Path] {
					add(Change{Path: "/" + e.Path, Kind: Deleted, Type: lower[e.Path]})
					removed = append(removed, e.Path)
				}
			case KindOpaque:
				prefix := e.Path + "/"
				if e.Path == "." {
					prefix = ""
				}
				var gone []string
				for p := range lower {
					if strings.HasPrefix(p, prefix) && p != e.Path && !present[p] && !strings.Contains(p[len(prefix):], "/") {
						gone = append(gone, p)
					}
				}
				sort.Strings(gone)
				for _, p := range gone {
					add(Change{Path: "/" + p, Kind: Deleted, Type: lower[p]})
				}
				removed = append(removed, gone...)
			}
		}
		for _, e := range entries {
			switch e.Kind {
			case KindWhiteout, KindOpaque, KindDropped:
				continue
			}
			if e.Path == "." {
				continue
			}
			prev, existed := lower[e.Path]
			switch {
			case !existed:
				add(Change{Path: "/" + e.Path, Kind: Added, Type: e.Kind, Size: e.Size})
			case e.Kind == KindDir && prev == KindDir:
				// a parent directory repeated in the tar: not a change worth listing
			default:
				add(Change{Path: "/" + e.Path, Kind: Modified, Type: e.Kind, Size: e.Size})
			}
		}
		for _, p := range removed {
			delete(lower, p)
			prefix := p + "/"
			for q := range lower {
				if strings.HasPrefix(q, prefix) {
					delete(lower, q)
				}
			}
		}
		for _, e := range entries {
			if e.Kind == KindWhiteout || e.Kind == KindOpaque || e.Kind == KindDropped {
				continue
			}
			lower[e.Path] = e.Kind
		}
		out[i] = ch
	}
	return out, nil
}

// LowerDirs turns unpacked layers (bottom first) into an overlay lowerdir
// list (top-most first).
func LowerDirs(layers []*Unpacked) []string {
	out := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		out = append(out, layers[i].Dir)
	}
	return out
}

// DiffIDHex is a helper for reports.
func DiffIDHex(h v1.Hash) string { return h.Hex }
