package lab

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// testContent is a tiny lesson tree for loader tests.
var testContent = fstest.MapFS{
	"en/ns/uts.md": {Data: []byte("# UTS\n\n## What it isolates\ntext\n\n```sh\n# not a heading\n```\n## Second\n")},
	"zh/ns/uts.md": {Data: []byte("# UTS\n\n## 隔离什么\n文字\n## 第二\n")},
}

const good = `id: t1
chapter: namespaces
title: {en: T, zh: T}
summary: {en: S, zh: S}
minutes: 5
containers:
  box: {namespaces: [uts, mnt], hostname: ctlab}
steps:
  - id: a
    kind: demo
    text: {content: "ns/uts.md#what-it-isolates"}
    do:
      - start: {container: box}
    expect:
      - hostname_equals: {in: box, value: ctlab}
  - id: b
    kind: task
    text: {en: do it, zh: 做}
    expect:
      - hostname_equals: {in: box, value: x}
    hints: [{en: h, zh: h}]
    solve:
      - exec: {in: box, argv: [hostname, x]}
`

func load(t *testing.T, src string) (*Scenario, error) {
	t.Helper()
	l := &Loader{Content: testContent}
	start := time.Now()
	s, err := l.Load("t1.yaml", strings.NewReader(src))
	if d := time.Since(start); d > time.Second {
		t.Errorf("loading took %s, want < 1s", d)
	}
	return s, err
}

func wantErr(t *testing.T, src string, want ...string) {
	t.Helper()
	_, err := load(t, src)
	if err == nil {
		t.Fatalf("loaded; want an error containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
}

func TestLoadGood(t *testing.T) {
	s, err := load(t, good)
	if err != nil {
		t.Fatal(err)
	}
	if s.Steps[1].Shell != "box" {
		t.Errorf("task shell defaulted to %q, want box", s.Steps[1].Shell)
	}
	if len(s.NeedsTrust) != 0 {
		t.Errorf("NeedsTrust = %v", s.NeedsTrust)
	}
}

func TestShippedScenariosLoad(t *testing.T) {
	list, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Find(list, "ns-uts"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadUnknownKeyWithLine(t *testing.T) {
	src := strings.Replace(good, "    kind: task\n", "    kind: task\n    colour: blue\n", 1)
	wantErr(t, src, "t1.yaml:18:", `unknown key "colour"`)
}

func TestLoadWrongType(t *testing.T) {
	wantErr(t, strings.Replace(good, "minutes: 5", "minutes: five", 1), "t1.yaml:5:", "five")
}

func TestLoadMissingContentRef(t *testing.T) {
	wantErr(t, strings.Replace(good, "ns/uts.md#what-it-isolates", "ns/nope.md", 1), "t1.yaml:11:", "no page en/ns/nope.md", "no page zh/ns/nope.md")
	wantErr(t, strings.Replace(good, "#what-it-isolates", "#not-here", 1), "no heading with anchor #not-here")
}

func TestLoadUnresolvedNames(t *testing.T) {
	wantErr(t, strings.Replace(good, "{in: box, argv", "{in: bx, argv", 1), `"bx" is not a container`)
	wantErr(t, strings.Replace(good, "start: {container: box}", "start: {container: other}", 1), `"other" is not declared`)
	// exec in a container before anything started it
	src := strings.Replace(good, "      - start: {container: box}\n", "      - exec: {in: box, argv: [true]}\n", 1)
	wantErr(t, src, `container "box" is not started by an earlier action`)
	wantErr(t, strings.Replace(good, "- id: b", "- id: a", 1), `step id "a" is used twice`)
}

func TestLoadTwoKindsInOneAction(t *testing.T) {
	src := strings.Replace(good, "      - start: {container: box}\n", "      - start: {container: box}\n        remove: {in: box}\n", 1)
	wantErr(t, src, "exactly one of", "found 2")
}

func TestLoadHugeFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100 << 20); err != nil { // sparse: 100 MB without writing them
		t.Fatal(err)
	}
	f.Close()
	start := time.Now()
	_, err = (&Loader{Content: testContent}).LoadFile(name)
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("err = %v, want a size limit error", err)
	}
	// the same through a reader (a pipe has no size to stat)
	r := strings.NewReader(strings.Repeat("#", MaxFileSize+10))
	if _, err := (&Loader{}).Load("pipe.yaml", r); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("reader: err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s", d)
	}
}

func TestLoadAliasBomb(t *testing.T) {
	src := `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`
	wantErr(t, src, "alias expansion bomb")
	// a small, honest alias is fine
	ok := strings.Replace(good, "hints: [{en: h, zh: h}]", "hints: [&h {en: h, zh: h}, *h]", 1)
	if _, err := load(t, ok); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDeepNesting(t *testing.T) {
	wantErr(t, "tags: "+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+"\n", "")
	wantErr(t, "tags: "+strings.Repeat("[", 100)+strings.Repeat("]", 100)+"\n", "deeper than")
}

func TestLoadHostActionNeedsTrustListed(t *testing.T) {
	src := strings.Replace(good, "      - start: {container: box}\n", "      - start: {container: box}\n      - host: {argv: [touch, /tmp/pwned]}\n", 1)
	s, err := load(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.NeedsTrust) != 1 || s.NeedsTrust[0] != "a" {
		t.Fatalf("NeedsTrust = %v, want [a]", s.NeedsTrust)
	}
	_, err = New(s, Options{})
	var te *TrustError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "--trust") {
		t.Fatalf("New without trust: err = %v, want a TrustError naming --trust", err)
	}
	if _, statErr := os.Stat("/tmp/pwned"); statErr == nil {
		t.Fatal("the host command ran")
	}
}

func TestLoadMultiDocAndEmpty(t *testing.T) {
	wantErr(t, good+"---\nid: x\n", "more than one YAML document")
	wantErr(t, "", "empty file")
	wantErr(t, "id: [\n", "t1.yaml")
}

func FuzzLoad(f *testing.F) {
	f.Add(good)
	f.Add("a: &a [*a]")
	f.Add("steps: [{do: [{exec: {argv: [x]}}]}]")
	f.Fuzz(func(t *testing.T, src string) {
		l := &Loader{Content: testContent}
		s, err := l.Load("fuzz.yaml", strings.NewReader(src))
		if err == nil && s == nil {
			t.Fatal("nil scenario without error")
		}
		if err != nil && s != nil {
			t.Fatal("scenario with error")
		}
	})
}

func TestHostFileReadNeedsTrustUnlessBuiltin(t *testing.T) {
	src := strings.Replace(good, "      - hostname_equals: {in: box, value: ctlab}\n",
		"      - hostname_equals: {in: box, value: ctlab}\n      - file_contains: {in: host, path: /etc/shadow, value: root}\n", 1)
	s, err := load(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.NeedsTrust) != 0 || len(s.ReadsHost) != 1 {
		t.Fatalf("NeedsTrust %v ReadsHost %v", s.NeedsTrust, s.ReadsHost)
	}
	var te *TrustError
	if _, err := New(s, Options{}); !errors.As(err, &te) || te.Steps[0] != "a" {
		t.Fatalf("a file from disk reading host files: err = %v, want a TrustError", err)
	}
	s.Builtin = true
	if _, err := New(s, Options{}); err != nil {
		t.Fatalf("built-in scenario: %v", err)
	}
}

func TestLoadCleanupOnlyHostActions(t *testing.T) {
	wantErr(t, good+"cleanup:\n  - remove: {in: box}\n", "cleanup may only hold host actions")
	s, err := load(t, good+"cleanup:\n  - host: {argv: [rm, -rf, /tmp/x]}\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.NeedsTrust) != 1 || s.NeedsTrust[0] != "cleanup" {
		t.Fatalf("NeedsTrust %v", s.NeedsTrust)
	}
}

func TestLoadScalarWhereMappingIsExpected(t *testing.T) {
	wantErr(t, strings.Replace(good, "start: {container: box}", "start: box", 1), "t1.yaml:13:", "into StartAction", "takes a mapping")
}
