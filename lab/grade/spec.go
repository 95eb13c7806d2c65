// Package grade checks students' container images against a homework spec (YAML criteria with points) and reports the results as text, JSON, JUnit, TAP or a roster CSV.
package grade

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Text is a message in both course languages.
type Text struct {
	En string `yaml:"en"`
	Zh string `yaml:"zh"`
}

// In returns the text in lang, falling back to English.
func (t Text) In(lang string) string {
	if lang == "zh" && t.Zh != "" {
		return t.Zh
	}
	return t.En
}

// Spec is a homework: what to check in a submitted image, and for how many
// points. An instructor writes the next assignment as one of these.
type Spec struct {
	ID       string      `yaml:"id"`
	Title    Text        `yaml:"title"`
	Summary  Text        `yaml:"summary"`
	Criteria []Criterion `yaml:"criteria"`
}

// Criterion is one graded item: all its checks must pass to earn Points.
// Informative criteria (layer diff) never fail and carry no points.
type Criterion struct {
	ID          string  `yaml:"id"`
	Points      int     `yaml:"points"`
	Informative bool    `yaml:"informative"`
	Title       Text    `yaml:"title"`
	Pass        Text    `yaml:"pass"`
	Fail        Text    `yaml:"fail"`
	Checks      []Check `yaml:"checks"`
}

// Check is a typed test; exactly one field is set. The vocabulary is
// deliberately small and declarative: a spec can never run a host command.
type Check struct {
	FileExists      *FileExists      `yaml:"file_exists"`
	FileContains    *FileText        `yaml:"file_contains"`
	FileNotContains *FileText        `yaml:"file_not_contains"`
	HistoryMentions *HistoryMentions `yaml:"history_mentions"`
	Serves          *Serves          `yaml:"serves"`
	LayerDiff       *LayerDiff       `yaml:"layer_diff"`
}

// FileExists: a path exists in the merged image filesystem.
type FileExists struct {
	Path       string `yaml:"path"`
	Type       string `yaml:"type"` // file (default), dir, symlink, any
	Executable bool   `yaml:"executable"`
}

// FileText: a file in the merged filesystem contains (or not) a string.
type FileText struct {
	Path       string `yaml:"path"`
	Text       string `yaml:"text"`
	IgnoreCase bool   `yaml:"ignore_case"`
}

// HistoryMentions: one of the words appears in the image history
// (created_by, comment), its environment or its labels.
type HistoryMentions struct {
	Any        []string `yaml:"any"`
	IgnoreCase bool     `yaml:"ignore_case"`
}

// Serves: the image's own entrypoint+cmd, run in the sandbox, answers an
// HTTP GET on Port/Path with Status and a body containing BodyContains.
type Serves struct {
	Port            int      `yaml:"port"`
	Path            string   `yaml:"path"`
	Status          int      `yaml:"status"`
	BodyContains    string   `yaml:"body_contains"`
	BodyNotContains string   `yaml:"body_not_contains"`
	Timeout         Duration `yaml:"timeout"`
	MemoryMB        int      `yaml:"memory_mb"`
	Pids            int      `yaml:"pids"`
}

// LayerDiff (informative): what the student's own layers changed.
type LayerDiff struct {
	// BaseEndsAt is a regexp matched against history created_by; the first
	// matching step ends the base image, later layers are the student's.
	BaseEndsAt string `yaml:"base_ends_at"`
	MaxFiles   int    `yaml:"max_files"`
}

// Duration is a time.Duration written as "15s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// maxSpecBytes bounds a spec file: a homework is a page of YAML, not 100 MB.
const maxSpecBytes = 1 << 20

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ParseSpec reads a spec strictly: unknown keys are errors (with their
// line), the size is capped, and yaml.v3 panics on hostile input are
// turned into errors.
func ParseSpec(r io.Reader) (s *Spec, err error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	if len(data) > maxSpecBytes {
		return nil, fmt.Errorf("spec larger than %d bytes", maxSpecBytes)
	}
	// Aliases are never needed in a homework spec and are the "billion
	// laughs" vector; refuse them before decoding.
	if bytes.Contains(data, []byte("*")) {
		var probe yaml.Node
		if err := yaml.Unmarshal(data, &probe); err == nil && hasAlias(&probe, 0) {
			return nil, errors.New("spec uses YAML aliases (*name); write the values out")
		}
	}
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("malformed spec: %v", p)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var spec Spec
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return &spec, nil
}

func hasAlias(n *yaml.Node, depth int) bool {
	if depth > 64 {
		return true
	}
	if n.Kind == yaml.AliasNode {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c, depth+1) {
			return true
		}
	}
	return false
}

// Validate checks the spec's own consistency.
func (s *Spec) Validate() error {
	if !idPattern.MatchString(s.ID) {
		return fmt.Errorf("spec id %q: use lower-case letters, digits, - _ .", s.ID)
	}
	if len(s.Criteria) == 0 {
		return errors.New("spec has no criteria")
	}
	seen := map[string]bool{}
	for i, c := range s.Criteria {
		where := fmt.Sprintf("criterion %d (%s)", i+1, c.ID)
		if !idPattern.MatchString(c.ID) || seen[c.ID] {
			return fmt.Errorf("%s: id must be unique and match %s", where, idPattern)
		}
		seen[c.ID] = true
		if c.Title.En == "" {
			return fmt.Errorf("%s: title.en is required", where)
		}
		if c.Points < 0 || c.Points > 1000 || (c.Informative && c.Points != 0) {
			return fmt.Errorf("%s: points must be 0..1000 (0 for informative criteria)", where)
		}
		if len(c.Checks) == 0 {
			return fmt.Errorf("%s: no checks", where)
		}
		for j, ch := range c.Checks {
			if err := ch.validate(); err != nil {
				return fmt.Errorf("%s, check %d: %w", where, j+1, err)
			}
		}
	}
	return nil
}

func absPath(p string) error {
	if !strings.HasPrefix(p, "/") || len(p) > 4096 {
		return fmt.Errorf("path %q must be absolute (a path inside the image)", p)
	}
	return nil
}

func (c *Check) validate() error {
	n := 0
	var err error
	if c.FileExists != nil {
		n++
		err = errors.Join(err, absPath(c.FileExists.Path))
		switch c.FileExists.Type {
		case "", "file", "dir", "symlink", "any":
		default:
			err = errors.Join(err, fmt.Errorf("file_exists.type %q: use file, dir, symlink or any", c.FileExists.Type))
		}
	}
	for _, ft := range []*FileText{c.FileContains, c.FileNotContains} {
		if ft != nil {
			n++
			err = errors.Join(err, absPath(ft.Path))
			if ft.Text == "" {
				err = errors.Join(err, errors.New("text is required"))
			}
		}
	}
	if c.HistoryMentions != nil {
		n++
		if len(c.HistoryMentions.Any) == 0 {
			err = errors.Join(err, errors.New("history_mentions.any is empty"))
		}
	}
	if s := c.Serves; s != nil {
		n++
		if s.Port == 0 {
			s.Port = 80
		}
		if s.Path == "" {
			s.Path = "/"
		}
		if s.Status == 0 {
			s.Status = 200
		}
		if s.Port < 1 || s.Port > 65535 || !strings.HasPrefix(s.Path, "/") || s.Status < 100 || s.Status > 599 {
			err = errors.Join(err, errors.New("serves: port 1-65535, path starting with /, status 100-599"))
		}
		if s.Timeout < 0 || time.Duration(s.Timeout) > 10*time.Minute || s.MemoryMB < 0 || s.Pids < 0 {
			err = errors.Join(err, errors.New("serves: timeout up to 10m, memory_mb and pids not negative"))
		}
	}
	if c.LayerDiff != nil {
		n++
		if _, rerr := regexp.Compile(c.LayerDiff.BaseEndsAt); rerr != nil {
			err = errors.Join(err, fmt.Errorf("layer_diff.base_ends_at: %w", rerr))
		}
	}
	if n != 1 {
		return fmt.Errorf("a check must have exactly one of file_exists, file_contains, file_not_contains, history_mentions, serves, layer_diff (has %d)", n)
	}
	return err
}
