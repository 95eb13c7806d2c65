package grade

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/scenarios/homework"
)

// TestMain: sandbox.Start re-executes this test binary as the container
// init, so it must be able to play that role.
func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if ref := os.Getenv("CTLAB_GRADE_CHILD"); ref != "" {
		os.Exit(gradeChild(ref, os.Getenv("CTLAB_GRADE_CHILD_CACHE")))
	}
	code := m.Run()
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

func loadHomework(t testing.TB) *Spec {
	t.Helper()
	f, err := homework.Open("nginx-hello")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ParseSpec(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// staticSpec drops the criterion that needs the sandbox.
func staticSpec(s *Spec) *Spec {
	c := *s
	c.Criteria = nil
	for _, cr := range s.Criteria {
		if cr.ID != servesHello {
			c.Criteria = append(c.Criteria, cr)
		}
	}
	return &c
}

func TestParseSpec(t *testing.T) {
	s := loadHomework(t)
	if len(s.Criteria) != 4 || s.Criteria[2].Checks[0].Serves.Port != 80 {
		t.Fatalf("unexpected spec: %+v", s)
	}
	bad := map[string]string{
		"unknown key":             "id: x\ncriteria:\n  - id: a\n    title: {en: A}\n    checks:\n      - file_exists: {path: /x, colour: red}\n",
		"two checks":              "id: x\ncriteria:\n  - id: a\n    title: {en: A}\n    checks:\n      - {file_exists: {path: /x}, history_mentions: {any: [a]}}\n",
		"relative path":           "id: x\ncriteria:\n  - id: a\n    title: {en: A}\n    checks:\n      - file_exists: {path: ../../etc/shadow}\n",
		"no criteria":             "id: x\n",
		"bad id":                  "id: '../x'\ncriteria: []\n",
		"aliases":                 "id: x\na: &a [1,2]\nb: *a\n",
		"billion laughs":          "a: &a [\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
		"informative with points": "id: x\ncriteria:\n  - id: a\n    points: 3\n    informative: true\n    title: {en: A}\n    checks:\n      - layer_diff: {}\n",
		"huge":                    "id: x\n#" + strings.Repeat("x", 2<<20) + "\n",
		"bad timeout":             "id: x\ncriteria:\n  - id: a\n    title: {en: A}\n    checks:\n      - serves: {timeout: forever}\n",
	}
	for name, y := range bad {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			if _, err := ParseSpec(strings.NewReader(y)); err == nil {
				t.Error("accepted")
			}
			if time.Since(start) > 2*time.Second {
				t.Error("took too long")
			}
		})
	}
}

// images builds every submission once per test binary, in both main forms.
type builtImage struct {
	sub  submission
	refs map[image.Format]string
}

func buildSubmissions(t *testing.T, formats ...image.Format) []builtImage {
	t.Helper()
	dir := t.TempDir()
	base := baseImage(t, dir)
	var out []builtImage
	for _, s := range submissions() {
		b := s.build(t, dir, base)
		bi := builtImage{sub: s, refs: map[image.Format]string{}}
		for _, f := range formats {
			bi.refs[f] = writeImage(t, b, dir, s.name, f)
		}
		out = append(out, bi)
	}
	return out
}

// TestGradeStatic grades every submission on criteria 1, 2 and 4 (no
// sandbox needed), from docker-save tars, OCI layouts and oci-archives.
func TestGradeStatic(t *testing.T) {
	imgs := buildSubmissions(t, image.FormatDockerArchive, image.FormatOCILayout, image.FormatOCIArchive)
	cache, err := image.NewCache(filepath.Join(t.TempDir(), "layers"), image.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	g := &Grader{Spec: staticSpec(loadHomework(t)), Cache: cache, Timeout: time.Minute}
	for _, bi := range imgs {
		for f, ref := range bi.refs {
			t.Run(bi.sub.name+"/"+string(f), func(t *testing.T) {
				r := g.Grade(context.Background(), ref)
				for _, c := range r.Criteria {
					want, ok := bi.sub.expect[c.ID]
					if ok && c.Status != want {
						t.Errorf("%s: %s, want %s; evidence: %q", c.ID, c.Status, want, c.Evidence)
					}
				}
				diff := r.Criteria[len(r.Criteria)-1]
				if diff.Status != Pass || len(diff.Evidence) < 2 {
					t.Errorf("layer diff: %+v", diff)
				}
				if bi.sub.name == "run-sed" && !strings.Contains(strings.Join(diff.Evidence, "\n"), "~ /usr/share/nginx/html/index.html") {
					t.Errorf("layer diff should show the modified page: %q", diff.Evidence)
				}
				if bi.sub.name == "page-deleted" && !strings.Contains(strings.Join(diff.Evidence, "\n"), "- /usr/share/nginx/html/index.html") {
					t.Errorf("layer diff should show the deleted page: %q", diff.Evidence)
				}
			})
		}
	}
}

// TestGradeErrors: a missing or corrupt image is an "error" result with a
// message, never a panic; exit code 1.
func TestGradeErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.tar")
	os.WriteFile(junk, []byte("this is not an image"), 0o644)
	cache, _ := image.NewCache(filepath.Join(dir, "layers"), image.Limits{})
	g := &Grader{Spec: loadHomework(t), Cache: cache}
	rs := g.GradeAll(context.Background(), []string{junk, filepath.Join(dir, "missing.tar")}, 2)
	for _, r := range rs {
		if r.Status != Error || r.Message == "" || len(r.Criteria) != 4 {
			t.Errorf("%s: %+v", r.Image, r)
		}
	}
	if ExitCode(rs) != 1 {
		t.Error("exit code")
	}
}

// TestGradeServe runs every submission's own command in the sandbox and
// checks criterion 3, including the image that never listens (it must fail
// within the timeout) and that nothing is left behind.
func TestGradeServe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("the sandbox needs root (euid %d)", os.Geteuid())
	}
	imgs := buildSubmissions(t, image.FormatDockerArchive)
	cache, _ := image.NewCache(filepath.Join(t.TempDir(), "layers"), image.Limits{})
	spec := loadHomework(t)
	spec.Criteria[2].Checks[0].Serves.Timeout = Duration(8 * time.Second)
	g := &Grader{Spec: spec, Cache: cache, Runner: SandboxRunner{}, Timeout: 2 * time.Minute}
	before := sandboxLeftovers(t)
	var refs []string
	for _, bi := range imgs {
		refs = append(refs, bi.refs[image.FormatDockerArchive])
	}
	start := time.Now()
	results := g.GradeAll(context.Background(), refs, 2)
	for i, r := range results {
		bi := imgs[i]
		for _, c := range r.Criteria {
			if want, ok := bi.sub.expect[c.ID]; ok && c.Status != want {
				t.Errorf("%s %s: %s, want %s; evidence: %q", bi.sub.name, c.ID, c.Status, want, c.Evidence)
			}
		}
		if bi.sub.name == "never-listens" {
			if d := r.Phases["criterion:"+servesHello]; d > 12*time.Second {
				t.Errorf("never-listens took %s, want about the 8s timeout", d)
			}
			if ev := strings.Join(r.Criteria[2].Evidence, "\n"); !strings.Contains(ev, "nothing answered on port 80") {
				t.Errorf("never-listens message: %q", ev)
			}
		}
	}
	t.Logf("graded %d images with the sandbox in %s", len(refs), time.Since(start))
	var buf bytes.Buffer
	WriteText(&buf, spec, results, "en")
	t.Log("\n" + buf.String())
	if after := sandboxLeftovers(t); after != before {
		t.Errorf("left behind:\nbefore %s\nafter  %s", before, after)
	}
}

// TestGradeInterrupted: cancelling a grading while the image's command is
// running (Ctrl-C in `ctlab grade`) still removes the sandbox.
func TestGradeInterrupted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("the sandbox needs root (euid %d)", os.Geteuid())
	}
	dir := t.TempDir()
	base := baseImage(t, dir)
	var never submission
	for _, s := range submissions() {
		if s.name == "never-listens" {
			never = s
		}
	}
	ref := writeImage(t, never.build(t, dir, base), dir, "never", image.FormatDockerArchive)
	cache, _ := image.NewCache(filepath.Join(dir, "layers"), image.Limits{})
	g := &Grader{Spec: loadHomework(t), Cache: cache, Runner: SandboxRunner{}, Timeout: time.Minute}
	before := sandboxLeftovers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	during := make(chan string, 1)
	go func() {
		time.Sleep(1000 * time.Millisecond)
		during <- sandboxLeftovers(t)
	}()
	start := time.Now()
	r := g.Grade(ctx, ref)
	if d := <-during; d == before {
		t.Errorf("the leftover oracle did not see the running sandbox: %s", d)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancelled grading took %s", time.Since(start))
	}
	if r.Status == Pass || r.Criteria[2].Status == Pass {
		t.Errorf("cancelled grading passed: %+v", r.Criteria[2])
	}
	if after := sandboxLeftovers(t); after != before {
		t.Errorf("left behind:\nbefore %s\nafter  %s", before, after)
	}
}

// sandboxLeftovers summarises grader-named kernel objects: mounts,
// links and cgroups whose names contain "grade-".
func sandboxLeftovers(t *testing.T) string {
	var parts []string
	m, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(m), "\n") {
		if strings.Contains(l, "grade-") {
			parts = append(parts, "mount:"+l)
		}
	}
	ifs, _ := net.Interfaces()
	n := 0
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "ctl") {
			n++
		}
	}
	parts = append(parts, fmt.Sprintf("links:%d", n))
	for _, g := range []string{"/sys/fs/cgroup/*/ctlab/grade-*", "/sys/fs/cgroup/ctlab/grade-*", "/run/ctlab/containers/grade-*", "/var/lib/ctlab/containers/grade-*", "/run/ctlab/journal/grade-*"} {
		m, _ := filepath.Glob(g)
		parts = append(parts, strings.Join(m, ","))
	}
	return strings.Join(parts, ";")
}

// TestProbeHTTP: the HTTP client against real loopback servers: no
// redirects followed, bounded body, proxy variables ignored, a port that
// never listens fails at the deadline.
func TestProbeHTTP(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "http://127.0.0.1:1/", http.StatusFound)
		case "/huge":
			chunk := bytes.Repeat([]byte("A"), 64<<10)
			for i := 0; i < 1000; i++ { // 64 MB offered
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		default:
			hits++
			w.Write([]byte("Hello World"))
		}
	}))
	defer srv.Close()
	addr := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:9")
	t.Setenv("http_proxy", "http://127.0.0.1:9")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := probeHTTP(ctx, addr, "/", nil, nil)
	if err != nil || r.Status != 200 || string(r.Body) != "Hello World" || hits != 1 {
		t.Fatalf("plain GET through a bogus proxy env: %+v %v", r, err)
	}
	r, err = probeHTTP(ctx, addr, "/redirect", nil, nil)
	if err != nil || r.Status != http.StatusFound {
		t.Fatalf("redirect should be returned, not followed: %+v %v", r, err)
	}
	r, err = probeHTTP(ctx, addr, "/huge", nil, nil)
	if err != nil || !r.Trunc || len(r.Body) != maxBody {
		t.Fatalf("body must be bounded: %v %v", err, r != nil && r.Trunc)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := netip.MustParseAddrPort(l.Addr().String())
	l.Close()
	short, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	start := time.Now()
	if _, err := probeHTTP(short, closed, "/", nil, nil); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("closed port: %v after %s", err, time.Since(start))
	}
	if _, err := probeHTTP(ctx, closed, "/", func() bool { return false }, nil); err != errExited {
		t.Fatalf("dead process should stop the wait: %v", err)
	}
}

// TestReports renders a fail and an error result in every format and parses them back.
func TestReports(t *testing.T) {
	spec := loadHomework(t)
	rs := []*Result{
		{Image: "=cmd|' /C calc'!A0.tar", Status: Fail, Points: 3, MaxPoints: 10, Message: "3 of 10 points", Criteria: []CriterionResult{
			{ID: "nginx-image", TaskID: 1, Title: "It is an nginx image", Status: Pass, Points: 3, MaxPoints: 3},
			{ID: "hello-page", TaskID: 2, Title: "index.html says Hello World", Status: Fail, MaxPoints: 4, Message: "change it", Evidence: []string{"x\x1b[2Jy"}},
			{ID: "serves-hello", TaskID: 3, Title: "serves", Status: Error, MaxPoints: 3},
			{ID: "layer-diff", TaskID: 4, Title: "diff", Status: Pass, Informative: true},
		}},
	}
	var j bytes.Buffer
	if err := WriteJSON(&j, rs); err != nil {
		t.Fatal(err)
	}
	var er map[string]any
	if err := json.Unmarshal(j.Bytes(), &er); err != nil || er["version"].(float64) != 3 || er["status"] != "fail" || len(er["tests"].([]any)) != 4 {
		t.Fatalf("json: %v %s", err, j.String())
	}
	var x bytes.Buffer
	WriteJUnit(&x, spec, rs)
	var js junitSuites
	if err := xml.Unmarshal(x.Bytes(), &js); err != nil || js.Suites[0].Failures != 1 || js.Suites[0].Errors != 1 {
		t.Fatalf("junit: %v %s", err, x.String())
	}
	var tp bytes.Buffer
	WriteTAP(&tp, rs)
	if !strings.HasPrefix(tp.String(), "TAP version 13\n1..4\n") || strings.Count(tp.String(), "not ok") != 2 {
		t.Fatalf("tap: %s", tp.String())
	}
	var c bytes.Buffer
	WriteRoster(&c, spec, rs)
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(rows) != 2 || !strings.HasPrefix(rows[1][0], "'=") {
		t.Fatalf("roster: %v %q", err, rows)
	}
	var txt bytes.Buffer
	WriteText(&txt, spec, rs, "zh")
	if strings.ContainsRune(txt.String(), 0x1b) || !strings.Contains(txt.String(), "总分") {
		t.Fatalf("text: %q", txt.String())
	}
}
