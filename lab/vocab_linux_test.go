package lab

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	ctload "github.com/ctlab/ctlab/sandbox/load"
)

// TestVocabRegistry: one row per kind, each with a family and a doc, and
// JSON keys that are the YAML keys (the event stream and `scenario show
// --json` name fields as the scenario file does).
func TestVocabRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range vocabulary {
		key := k.role + " " + k.name
		if seen[key] {
			t.Errorf("%s is registered twice", key)
		}
		seen[key] = true
		if k.family == "" || k.doc == "" || strings.Contains(k.doc, "\n") {
			t.Errorf("%s: want a family and a one-line doc", key)
		}
		if strings.Count(k.doc, "|") > 0 {
			t.Errorf("%s: doc has a '|', which breaks the reference table", key)
		}
		if kindOf(k.role, reflect.New(k.typ).Interface()) != k.name {
			t.Errorf("%s: type %s is registered more than once in its role", key, k.typ)
		}
		for i := 0; i < k.typ.NumField(); i++ {
			f := k.typ.Field(i)
			y, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			j, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if y != j && !strings.Contains(f.Tag.Get("yaml"), "inline") {
				t.Errorf("%s: field %s: yaml key %q, json key %q", key, f.Name, y, j)
			}
		}
	}
	for _, v := range Vocabulary() {
		if len(v.Fields) == 0 {
			t.Errorf("%s %s has no fields", v.Role, v.Name)
		}
	}
}

// TestVocabStrictYAML: inside a kind's mapping, unknown keys and wrong
// types are errors with the file and line, like anywhere else in the file.
func TestVocabStrictYAML(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		// unknown key inside a check (line 15 of good)
		{"hostname_equals: {in: box, value: ctlab}", "hostname_equals: {in: box, value: ctlab, colour: blue}", `t1.yaml:15: unknown key "colour" (in HostnameEquals)`},
		// on its own line
		{"hostname_equals: {in: box, value: ctlab}", "hostname_equals:\n          in: box\n          value: ctlab\n          colour: blue", `t1.yaml:18: unknown key "colour" (in HostnameEquals)`},
		// unknown key inside an action
		{"start: {container: box}", "start: {container: box, image: x}", `t1.yaml:13: unknown key "image" (in StartAction)`},
		// unknown kind
		{"hostname_equals: {in: box, value: ctlab}", "hostname_equal: {in: box, value: ctlab}", `t1.yaml:15: unknown key "hostname_equal" (in Check)`},
		{"start: {container: box}", "begin: {container: box}", `t1.yaml:13: unknown key "begin" (in Action)`},
		// wrong type inside a check, and in a flag
		{"hostname_equals: {in: box, value: ctlab}", "hostname_equals: {in: [box], value: ctlab}", "t1.yaml:15: cannot unmarshal !!seq into string"},
		{"hostname_equals: {in: box, value: ctlab}", "hostname_equals: {in: box, value: ctlab}\n        not: maybe", "t1.yaml:16: cannot unmarshal !!str `maybe` into bool"},
		// a kind that takes a mapping given a scalar
		{"start: {container: box}", "start: box", "t1.yaml:13: cannot unmarshal !!str `box` into StartAction (this key takes a mapping"},
		// no kind at all
		// inside a wait's check
		{"start: {container: box}", "start: {container: box}\n      - wait: {check: {hostname_equals: {in: box, value: x, colour: blue}}}", `t1.yaml:14: unknown key "colour" (in HostnameEquals)`},
		{"hostname_equals: {in: box, value: ctlab}", "not: true", "t1.yaml:15: a check is a mapping with exactly one of: namespace_differs,"},
	} {
		src := strings.Replace(good, c.from, c.to, 1)
		if src == good {
			t.Fatalf("%q not in the test scenario", c.from)
		}
		wantErr(t, src, c.want)
	}
}

// TestSizesAndDevicesOneGrammar: the sizes and device rules the CLI takes
// are the ones a scenario takes ("1.5G", "max", "c 1:5 rw").
func TestSizesAndDevicesOneGrammar(t *testing.T) {
	for _, lim := range []string{"memory: 1.5G", "memory: max", "read_bps: 2.5M", `deny_devices: ["c 1:5 rw", "b 8:*"]`} {
		src := strings.Replace(good, "hostname: ctlab}", "hostname: ctlab, limits: {"+lim+"}}", 1)
		if _, err := load(t, src); err != nil {
			t.Errorf("%s: %v", lim, err)
		}
	}
	for _, c := range []struct{ lim, want string }{
		{"memory: 12X", `size "12X"`},
		{`deny_devices: ["a"]`, "devices: deny-all"},
		{`deny_devices: ["x 1:5"]`, "must be a (all), c (char) or b (block)"},
	} {
		wantErr(t, strings.Replace(good, "hostname: ctlab}", "hostname: ctlab, limits: {"+c.lim+"}}", 1), c.want)
	}
}

// TestLoadActionArgvIsTheCLI: every load action of the shipped scenarios
// builds a command line that `ctlab load` (ctload.Parse, the same cobra
// command) reads back as the same run.
func TestLoadActionArgvIsTheCLI(t *testing.T) {
	list, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range list {
		for _, st := range s.Steps {
			for _, a := range slices.Concat(st.Do, st.Solve) {
				l, ok := a.body.(*LoadAction)
				if !ok {
					continue
				}
				n++
				argv := l.spec().Args()
				got, err := ctload.Parse(argv[1:])
				if err != nil || got != l.spec() {
					t.Errorf("%s: %s: argv %q parses as %+v, %v; want %+v", s.ID, a, argv, got, err, l.spec())
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no load actions in the shipped scenarios")
	}
}

// alwaysGuardKinds hold before any step by definition: they are proved by
// passing, not by failing first.
func isAlwaysGuard(kind string) bool {
	_, ok := lookup("check", kind).newCheck().(alwaysGuard)
	return ok
}

// inlineProofs are the test scenarios whose tests self-test them (every
// non-guard check must fail before its step and pass after).
func inlineProofs() map[string]string {
	return map[string]string{
		"tv-ns": tvNsSrc, "tv-cg": tvCgSrc, "tv-ov": tvOvSrc("/tmp/x.pid"), "tv-runc": tvRuncSrc, "tv-http": tvHTTPSrc, "tv-mnt": tvMntSrc,
	}
}

// TestEveryCheckKindIsProved: each check kind appears, as a check that
// must fail before its step and pass after, in a shipped scenario
// (TestShippedScenariosSelfTest runs them all) or in an inline proof run by
// its own test. A new kind fails here until it has one.
func TestEveryCheckKindIsProved(t *testing.T) {
	proved := map[string]string{}
	note := func(where string, s *Scenario) {
		for _, st := range s.Steps {
			for _, c := range st.Expect {
				if !c.Guard || isAlwaysGuard(c.kind) {
					proved[c.kind] = where
				}
			}
		}
	}
	list, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		note("scenarios/"+s.ID+".yaml", s)
	}
	for id, src := range inlineProofs() {
		s, err := (&Loader{Content: testContent}).Load(id+".yaml", strings.NewReader(src))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		note(id, s)
	}
	for _, name := range kindNames("check") {
		if proved[name] == "" {
			t.Errorf("check %s has no test that it fails before its step and passes after: use it in a shipped scenario or an inline proof", name)
		}
	}
}

var tvHTTPSrc = "id: tv-http\n" + head + `containers:
  web:
    namespaces: [mnt, pid, net]
    net: true
    mount_self: true
steps:
  - id: serve
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: web}
      - exec: {in: web, argv: [/.ctlab/ctlab, load, serve, "8080", "HTTP/1.0 200 OK\r\nContent-Length: 14\r\n\r\nhello from web", --seconds, "60"], background: true, as: server}
      # the server needs a moment to listen (seconds on an emulated VM)
      - wait: {check: {http_body_contains: {in: web, port: 8080, value: hello from web}}, timeout: 30s}
    expect:
      - http_body_contains: {in: web, port: 8080, value: hello from web}
`

// TestCheckHTTPBodyContains proves http_body_contains: no connection
// before the server runs, its body after.
func TestCheckHTTPBodyContains(t *testing.T) {
	needRoot(t)
	rep := selfTestInline(t, "tv-http", tvHTTPSrc, false)
	if ev := after(rep, "serve", "http_body_contains"); len(ev) != 1 || !ev[0].Pass {
		t.Fatalf("after: %+v", ev)
	}
}

var tvMntSrc = "id: tv-mnt\n" + head + `containers:
  box:
    namespaces: [mnt, pid]
steps:
  - id: mount
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: box}
      - exec: {in: box, argv: [mkdir, -p, /tmp/m]}
      - exec: {in: box, argv: [mount, -t, tmpfs, -o, size=1m, m, /tmp/m]}
    expect:
      - mount_visible: {in: box, path: /tmp/m, fstype: tmpfs}
  - id: unmount
    kind: demo
    text: {en: x, zh: x}
    do:
      - exec: {in: box, argv: [umount, /tmp/m]}
    expect:
      - mount_absent: {in: box, path: /tmp/m}
`

// TestCheckMountAbsent proves mount_absent (shipped scenarios use it only
// as a guard): the tmpfs is there before the step, gone after.
func TestCheckMountAbsent(t *testing.T) {
	needRoot(t)
	rep := selfTestInline(t, "tv-mnt", tvMntSrc, false)
	if ev := after(rep, "unmount", "mount_absent"); len(ev) != 1 || !ev[0].Pass {
		t.Fatalf("after: %+v", ev)
	}
}

// kindOf returns the registered key of a kind value (its type's row).
func kindOf(role string, body any) string {
	t := reflect.TypeOf(body)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for _, k := range vocabulary {
		if k.role == role && k.typ == t {
			return k.name
		}
	}
	return ""
}

// TestVocabMergeKeys: YAML merge keys work inside a kind, and the merged
// keys are checked as strictly as the others.
func TestVocabMergeKeys(t *testing.T) {
	ok := strings.Replace(good, "hostname_equals: {in: box, value: ctlab}", "hostname_equals: {<<: {in: box}, value: ctlab}", 1)
	if _, err := load(t, ok); err != nil {
		t.Fatal(err)
	}
	wantErr(t, strings.Replace(good, "hostname_equals: {in: box, value: ctlab}", "hostname_equals: {<<: {in: box, colour: x}, value: ctlab}", 1), `unknown key "colour" (in HostnameEquals)`)
}
