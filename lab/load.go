package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Bounds on an untrusted scenario file, checked before and while parsing.
// A real scenario is a few kilobytes, a few thousand nodes, < 15 levels deep.
const (
	MaxFileSize = 1 << 20 // bytes
	MaxNodes    = 20000   // YAML nodes after alias expansion (billion laughs stops here)
	MaxDepth    = 40      // nesting levels
)

// Problem is one thing wrong with a scenario file, at a line (0 = unknown).
type Problem struct {
	Line int    `json:"line,omitempty"`
	Msg  string `json:"message"`
}

// LoadError lists every problem found in one file; its message has one
// "file:line: problem" per line, like a compiler.
type LoadError struct {
	File     string    `json:"file"`
	Problems []Problem `json:"problems"`
}

func (e *LoadError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: %s", e.File, p.Line, p.Msg)
		} else {
			fmt.Fprintf(&b, "%s: %s", e.File, p.Msg)
		}
	}
	return b.String()
}

// Loader reads and validates scenario files. Content is the lesson tree
// (en/... and zh/...) that `text.content` references are resolved against.
type Loader struct {
	Content fs.FS
}

// LoadFile reads one scenario file from disk, size-checked before reading.
func (l *Loader) LoadFile(name string) (*Scenario, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open scenario: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxFileSize {
		return nil, &LoadError{File: name, Problems: []Problem{{Msg: fmt.Sprintf("file is %d bytes, the limit is %d: not parsed", st.Size(), MaxFileSize)}}}
	}
	return l.Load(name, f)
}

// LoadFS reads one scenario file from an fs.FS (the embedded scenarios).
func (l *Loader) LoadFS(fsys fs.FS, name string) (*Scenario, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open scenario: %w", err)
	}
	defer f.Close()
	return l.Load(name, f)
}

// Load reads at most MaxFileSize bytes from r and returns the validated
// scenario, or a *LoadError listing every problem with its line.
func (l *Loader) Load(name string, r io.Reader) (*Scenario, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read scenario %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, &LoadError{File: name, Problems: []Problem{{Msg: fmt.Sprintf("file is larger than %d bytes: not parsed", MaxFileSize)}}}
	}
	return l.parse(name, data)
}

func (l *Loader) parse(name string, data []byte) (s *Scenario, err error) {
	fail := func(line int, format string, a ...any) (*Scenario, error) {
		return nil, &LoadError{File: name, Problems: []Problem{{Line: line, Msg: fmt.Sprintf(format, a...)}}}
	}
	// yaml.v3 before v3.0.0 could panic on hostile input; never let a
	// scenario file take the process down.
	defer func() {
		if r := recover(); r != nil {
			s, err = fail(0, "YAML parser failed: %v", r)
		}
	}()

	// Pass 1: the node tree, aliases unexpanded, so their expansion and
	// the nesting depth can be measured before anything is decoded.
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(0, "empty file")
		}
		line, msg := yamlErr(err)
		return fail(line, "%s", msg)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fail(extra.Line, "more than one YAML document: a scenario is one document")
	}
	b := bounds{memo: map[*yaml.Node]nodeSize{}, busy: map[*yaml.Node]bool{}}
	if _, err := b.measure(&root); err != nil {
		return fail(err.line, "%s", err.msg)
	}

	// Pass 2: strict decode. Unknown keys and wrong types are errors with
	// the line yaml.v3 reports.
	s = &Scenario{}
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		le := &LoadError{File: name}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				line, msg := yamlErr(errors.New(e))
				le.Problems = append(le.Problems, Problem{Line: line, Msg: msg})
			}
		} else {
			line, msg := yamlErr(err)
			le.Problems = append(le.Problems, Problem{Line: line, Msg: msg})
		}
		return nil, le
	}
	s.File = name
	v := &validator{s: s, root: root.Content[0], content: l.Content, file: name}
	v.validate()
	if len(v.problems) > 0 {
		sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Line < v.problems[j].Line })
		return nil, &LoadError{File: name, Problems: v.problems}
	}
	return s, nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErr splits yaml.v3's "yaml: line N: msg" into N and a friendlier msg.
func yamlErr(err error) (int, string) {
	s := strings.TrimSpace(err.Error())
	if m := yamlLineRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		msg := m[2]
		if strings.HasPrefix(msg, "field ") && strings.Contains(msg, " not found in type ") {
			// "field foo not found in type lab.Step" -> name the key plainly
			f := strings.TrimPrefix(msg, "field ")
			key, typ, _ := strings.Cut(f, " not found in type ")
			msg = fmt.Sprintf("unknown key %q (in %s)", key, strings.TrimPrefix(typ, "lab."))
		}
		if strings.HasPrefix(msg, "cannot unmarshal !!str") && strings.Contains(msg, " into lab.") {
			// "- start: box": every action and check takes a mapping
			msg += " (this key takes a mapping, e.g. start: {container: box})"
		}
		msg = strings.ReplaceAll(msg, "lab.", "")
		return n, msg
	}
	return 0, strings.TrimPrefix(s, "yaml: ")
}

type nodeSize struct{ nodes, depth int }

type boundErr struct {
	line int
	msg  string
}

// bounds measures the tree as the decoder would see it, with every alias
// expanded, without expanding it: each node's size is memoised, so a
// billion-laughs file costs a few microseconds to reject.
type bounds struct {
	memo map[*yaml.Node]nodeSize
	busy map[*yaml.Node]bool
}

func (b *bounds) measure(n *yaml.Node) (nodeSize, *boundErr) {
	if sz, ok := b.memo[n]; ok {
		return sz, nil
	}
	if b.busy[n] {
		return nodeSize{}, &boundErr{n.Line, "alias refers to a node that contains it"}
	}
	b.busy[n] = true
	defer delete(b.busy, n)
	sz := nodeSize{nodes: 1, depth: 1}
	kids := n.Content
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		kids = []*yaml.Node{n.Alias}
		sz.depth = 0 // an alias stands in place of its target
		sz.nodes = 0
	}
	for _, k := range kids {
		ks, err := b.measure(k)
		if err != nil {
			return nodeSize{}, err
		}
		sz.nodes += ks.nodes
		if ks.depth+1 > sz.depth {
			sz.depth = ks.depth + 1
		}
		if sz.nodes > MaxNodes {
			return nodeSize{}, &boundErr{n.Line, fmt.Sprintf("document expands to more than %d YAML nodes (alias expansion bomb?): not decoded", MaxNodes)}
		}
	}
	if n.Kind == yaml.AliasNode {
		sz.depth-- // undo the +1 added for the alias target
	}
	if sz.depth > MaxDepth {
		return nodeSize{}, &boundErr{n.Line, fmt.Sprintf("nesting is deeper than %d levels: not decoded", MaxDepth)}
	}
	b.memo[n] = sz
	return sz, nil
}

// nodeAt walks a decoded mapping/sequence tree by keys (string) and indexes
// (int) and returns the deepest node found, so a validation problem can
// name the line of the value it is about.
func nodeAt(n *yaml.Node, path ...any) *yaml.Node {
	for _, p := range path {
		for n != nil && n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n == nil {
			return nil
		}
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						if next.Kind == yaml.ScalarNode || next.Kind == yaml.AliasNode {
							// point at the key line for scalars too (same line)
							next = n.Content[i+1]
						}
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// contentRef splits "namespaces/uts.md#heading" into path and anchor.
func contentRef(ref string) (string, string) {
	p, anchor, _ := strings.Cut(ref, "#")
	p = path.Clean(strings.TrimPrefix(p, "/"))
	if !strings.HasSuffix(p, ".md") {
		p += ".md"
	}
	return p, anchor
}
