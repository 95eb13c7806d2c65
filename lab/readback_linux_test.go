package lab

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfTestInline loads an inline scenario and runs SelfTest on it: every
// check must fail before its step and pass after, and nothing may be left.
func selfTestInline(t *testing.T, id, src string, trust bool) *TestReport {
	t.Helper()
	s, err := (&Loader{Content: testContent}).Load(id+".yaml", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	s.TrustReasons = nil // the project's own fixture: its containers are trusted like the embedded scenarios'
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep := SelfTest(ctx, s, Options{Trust: trust, Loader: &Loader{Content: testContent}})
	if len(rep.Skipped) > 0 {
		t.Skipf("this host cannot run %s: %v", id, rep.Skipped)
	}
	if !rep.Pass {
		b, _ := json.MarshalIndent(rep, "", "  ")
		t.Fatalf("defects %q\n%s", rep.Defects(), b)
	}
	return rep
}

// after returns the after-evidence of check kind in step id.
func after(rep *TestReport, step, kind string) []Evidence {
	var out []Evidence
	for _, st := range rep.Steps {
		if st.ID == step {
			for _, x := range st.After {
				if x.Check == kind {
					out = append(out, x)
				}
			}
		}
	}
	return out
}

const head = `chapter: namespaces
title: {en: T, zh: T}
summary: {en: S, zh: S}
minutes: 1
`

// Inline scenarios that prove check kinds no shipped scenario uses (see
// TestEveryCheckKindIsProved): their tests self-test them.
var tvNsSrc = "id: tv-ns\n" + head + `containers:
  box:
    namespaces: [mnt, uts, ipc, pid, user, cgroup, time]
    time: {boottime: 24h}
    mount_self: true
  other: {namespaces: [mnt, ipc, pid], mount_self: true}
steps:
  - id: start
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: box}
    expect:
      - kernel_release_same: {in: box}
      - process_uid_equals: {in: box, value: 100000}
      - process_uid_equals: {in: box, value: 0, reader: inside}
      - cgroup_path_equals: {in: box, value: /ctlab/tv-ns-box}
      - uptime_offset: {in: box, value: 24h}
      - uptime_offset: {in: box, op: ">=", value: 23h}
      - init_system: {value: any}
  - id: owner
    kind: task
    text: {en: x, zh: x}
    expect:
      - file_owner_equals: {in: box, path: /made-by-root, uid: 100000, gid: 100000}
    hints: [{en: h, zh: h}]
    solve:
      - write_file: {in: box, path: /made-by-root, content: "x\n"}
  - id: shm
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: other}
      - load: {in: box, kind: shm, key: "0x1234"}
    expect:
      - ipc_object_visible: {in: box, kind: shm, key: "0x1234"}
      - ipc_object_visible: {in: other, kind: shm, key: "0x1234"}
        not: true
  - id: helper
    kind: demo
    text: {en: x, zh: x}
    do:
      - exec: {in: box, argv: [sleep, "60"], background: true, as: w, helper_as: h}
    expect:
      - namespace_differs: {kind: pid, a: h, b: w}
      - namespace_same: {kind: pid, a: h, b: host}
      - namespace_same: {kind: pid_for_children, a: h, b: box}
      - process_parent: {of: w, parent: h}
  - id: freeze
    kind: demo
    text: {en: x, zh: x}
    do:
      - load: {in: other, kind: count, file: /tmp/n, seconds: 30, background: true, as: ctr}
      - sleep: {for: 200ms}
      - freeze: {in: other}
    expect:
      - file_unchanged: {in: other, path: /tmp/n, for: 500ms}
  - id: thaw
    kind: demo
    text: {en: x, zh: x}
    do:
      - thaw: {in: other}
    expect:
      - file_unchanged: {in: other, path: /tmp/n, for: 500ms}
        not: true
`

var tvCgSrc = "id: tv-cg\n" + head + `containers:
  hog:
    namespaces: [mnt, pid]
    mount_self: true
    limits: {cpu: 0.5, read_bps: 4M}
steps:
  - id: start
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: hog}
    expect:
      - cpu_usage: {in: hog, op: "<", value: 0.1, window: 500ms}
  - id: burn
    kind: demo
    text: {en: x, zh: x}
    do:
      - load: {in: hog, kind: cpu, threads: 2, seconds: 20, background: true, as: burner}
      - sleep: {for: 300ms}
    expect:
      - cpu_usage: {in: hog, op: ">=", value: 0.3, window: 1s}
      - cpu_usage: {in: hog, op: "<=", value: 0.65, window: 1s}
        guard: true
  - id: read
    kind: demo
    text: {en: x, zh: x}
    do:
      - kill: {in: burner}
      - load: {in: hog, kind: io, file: /var/tmp/f, size: 6M, expect_rate: "<= 5M"}
    expect:
      - io_bytes: {in: hog, dir: read, op: ">=", value: 6M}
`

func tvOvSrc(pidfile string) string {
	return "id: tv-ov\n" + head + `containers:
  box: {namespaces: [mnt, uts, ipc, pid, net], hostname: boxy, limits: {pids: 32}}
cleanup:
  - host: {argv: [sh, -c, "kill $(cat ` + pidfile + `) 2>/dev/null; rm -f ` + pidfile + `; true"]}
steps:
  - id: layers
    kind: demo
    text: {en: x, zh: x}
    do:
      - mount_overlay:
          as: img
          lower:
            - {etc/app.conf: "version=1\n", etc/motd: "from layer 1\n"}
            - {etc/app.conf: "version=2\n"}
      - commit_layer: {in: img, as: snap}
    expect:
      - file_contains: {in: img, path: /etc/app.conf, value: version=2}
      - file_contains: {in: img, path: /etc/motd, value: from layer 1}
  - id: bundle
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: box}
      - write_bundle: {in: box, as: b}
    expect:
      - file_contains: {in: b, path: /config.json, value: '"ociVersion"'}
      - file_contains: {in: b, path: /config.json, value: /ctlab-runc-tv-ov-b}
      - file_contains: {in: b, path: /config.json, value: '"network"'}
      - file_contains: {in: b, path: /rootfs/etc/passwd, value: "root:"}
  - id: link
    kind: demo
    text: {en: x, zh: x}
    do:
      - link: {in: box}
    expect:
      - link_has_address: {in: box, address: any}
  - id: hostproc
    kind: demo
    text: {en: x, zh: x}
    do:
      - host: {argv: [sh, -c, "sleep 60 </dev/null >/dev/null 2>&1 & echo $! > ` + pidfile + `"]}
      - host_process: {as: s, pidfile: ` + pidfile + `}
    expect:
      - process_running: {in: s}
      - process_parent: {of: s, comm: sh}
        not: true
`
}

var tvRuncSrc = "id: tv-runc\n" + head + `containers:
  box: {namespaces: [mnt, uts, ipc, pid], hostname: boxy, command: [sleep, "600"], limits: {pids: 32}}
cleanup:
  - host: {argv: [sh, -c, "runc delete -f tv-runc-b >/dev/null 2>&1; true"]}
steps:
  - id: run
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: box}
      - write_bundle: {in: box, as: b}
      - host: {argv: [sh, -c, "runc run -d --pid-file /var/lib/ctlab/lab/tv-runc/b/pid --bundle /var/lib/ctlab/lab/tv-runc/b tv-runc-b </dev/null >/dev/null 2>&1"], timeout: 20s}
      - host_process: {as: r, pidfile: /var/lib/ctlab/lab/tv-runc/b/pid}
      # runc writes the pid file before "runc init" execs the command
      - wait: {check: {file_contains: {in: r, path: /proc/1/cmdline, value: "600"}}, timeout: 10s}
    expect:
      - namespace_differs: {kind: pid, a: r, b: box}
      - namespace_differs: {kind: mnt, a: r, b: host}
      - pid_in_ns_equals: {in: r, value: "1"}
      - hostname_equals: {in: r, value: boxy}
      - cgroup_path_equals: {in: r, value: /ctlab-runc-tv-runc-b, controller: pids}
      - file_contains: {in: r, path: /proc/1/cmdline, value: "600"}
`

// TestReadbackNamespaces drives the checks that compare what a process
// inside reads with what the host reads (requests 6, 8-13, 16, 5).
func TestReadbackNamespaces(t *testing.T) {
	needRoot(t)
	src := tvNsSrc
	rep := selfTestInline(t, "tv-ns", src, false)
	for _, x := range after(rep, "start", "uptime_offset") {
		t.Logf("%s: %s (%s)", x.Desc, x.Actual, x.Source)
	}
	if ev := after(rep, "start", "init_system"); len(ev) != 1 || !strings.Contains(ev[0].Actual, "pid 1 is ") {
		t.Errorf("init_system evidence %+v", ev)
	}
	if ev := after(rep, "start", "process_uid_equals"); len(ev) != 2 || !strings.Contains(ev[1].Source, "inside") {
		t.Errorf("process_uid_equals evidence %+v", ev)
	}
}

// TestReadbackCgroupUsage drives cpu_usage, io_bytes and load's
// expect_rate (requests 2-4).
func TestReadbackCgroupUsage(t *testing.T) {
	needRoot(t)
	src := tvCgSrc
	rep := selfTestInline(t, "tv-cg", src, false)
	for _, st := range rep.Steps {
		for _, x := range st.After {
			t.Logf("%s: %s: %s (%s)", st.ID, x.Desc, x.Actual, x.Source)
		}
	}
}

// TestReadbackOverlayBundleLink drives file_contains on an overlay and a
// layer, write_bundle, the link action's cleanup, and host_process
// (requests 7, 15, 17). With runc on the host, the bundle is run too.
func TestReadbackOverlayBundleLink(t *testing.T) {
	needRoot(t)
	pidfile := filepath.Join(t.TempDir(), "sleep.pid")
	src := tvOvSrc(pidfile)
	s, err := (&Loader{Content: testContent}).Load("tv-ov.yaml", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(s, Options{}); err == nil || !strings.Contains(err.Error(), "hostproc") {
		t.Fatalf("New without trust: %v, want a trust error naming step hostproc", err)
	}
	selfTestInline(t, "tv-ov", src, true)
	if _, err := os.Stat("/var/lib/ctlab/lab/tv-ov"); err == nil {
		t.Error("the lab dir (bundle) is left behind")
	}
}

// TestWriteBundleRunsWithRunc proves the bundle is one a real runtime
// accepts: runc runs it, and the runc container's init is a check target.
func TestWriteBundleRunsWithRunc(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skipf("no runc on this host: %v", err)
	}
	src := tvRuncSrc
	selfTestInline(t, "tv-runc", src, true)
}

func TestLoadNewVocabularyProblems(t *testing.T) {
	base := "id: t1\n" + head + `containers:
  box: {namespaces: [mnt, pid], mount_self: true}
steps:
  - id: a
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: box}
      - ACTION
    expect:
      - CHECK
`
	for _, tc := range []struct{ action, check, want string }{
		{"sleep: {for: 1s}", "init_system: {value: upstart}", `init_system: value "upstart"`},
		{"load: {in: box, kind: shm, key: \"0\"}", "init_system: {value: any}", "kind shm needs key"},
		{"load: {in: box, kind: cpu, expect_rate: \"<= 5M\"}", "init_system: {value: any}", "expect_rate is for kind io"},
		{"load: {in: box, kind: io, size: 1M, expect_rate: \"fast\"}", "init_system: {value: any}", "expect_rate"},
		{"write_bundle: {in: box, as: box}", "init_system: {value: any}", "write_bundle: as"},
		{"write_bundle: {in: box, as: layers}", "init_system: {value: any}", "write_bundle: as"},
		{"host_process: {as: r, pidfile: rel/pid}", "init_system: {value: any}", "must be an absolute host path"},
		{"exec: {in: box, argv: [sleep, \"1\"], helper_as: h}", "init_system: {value: any}", "set background: true"},
		{"sleep: {for: 1s}", "cpu_usage: {in: box, op: contains, value: 1}", "cpu_usage"},
		{"sleep: {for: 1s}", "io_bytes: {in: box, dir: up, op: \">\", value: 1M}", `dir "up"`},
		{"sleep: {for: 1s}", "file_unchanged: {in: box, path: rel, for: 1s}", "must be absolute"},
		{"sleep: {for: 1s}", "process_uid_equals: {in: box, value: 0, reader: guest}", `reader "guest"`},
		{"sleep: {for: 1s}", "cgroup_path_equals: {in: box, value: ctlab/x}", "absolute cgroup path"},
		{"sleep: {for: 1s}", "uptime_offset: {in: box, op: contains, value: 1h}", "numeric op"},
		{"sleep: {for: 1s}", "file_contains: {in: nothere, path: /x, value: y}", `"nothere" is not host`},
	} {
		src := strings.Replace(strings.Replace(base, "ACTION", tc.action, 1), "CHECK", tc.check, 1)
		wantErr(t, src, tc.want)
	}
	// and the valid forms load
	src := strings.Replace(strings.Replace(base, "ACTION", `load: {in: box, kind: io, size: 1M, expect_rate: "<=5.5M"}`, 1), "CHECK", "init_system: {value: other}", 1)
	s, err := load(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Steps[0].Expect[0].Guard {
		t.Error("init_system is not made a guard (no step can change pid 1)")
	}
}

func TestCheckRate(t *testing.T) {
	out := "read 8 MiB in 1.60 s with O_DIRECT: 4.98 MiB/s\n"
	for _, tc := range []struct {
		expect string
		ok     bool
	}{{"<= 5.5M", true}, {"<=5M", true}, {"<= 4M", false}, {">= 1M", true}, {"> 5MiB/s", false}} {
		if err := checkRate(out, tc.expect); (err == nil) != tc.ok {
			t.Errorf("checkRate(%q): %v, want ok=%v", tc.expect, err, tc.ok)
		}
	}
	if err := checkRate("nothing printed", "<= 5M"); err == nil {
		t.Error("a missing rate passed")
	}
}
