package lab

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/overlay"
)

// Every pane a step may show reads some kernel state.
func TestEveryPaneReadsSomething(t *testing.T) {
	for _, p := range Panes {
		if paneParts[p] == 0 {
			t.Errorf("pane %s reads nothing", p)
		}
	}
}

const snapScenario = "id: snaptest\n" + head + `containers:
  box: {namespaces: [uts, mnt, net, pid, ipc], hostname: snapbox}
steps:
  - id: a
    kind: demo
    text: {en: t, zh: t}
    do:
      - start: {container: box}
      - mount_overlay: {as: img, lower: [{etc/motd: "hi\n"}]}
    show: [namespaces, hostname]
    expect:
      - hostname_equals: {in: box, value: snapbox}
  - id: b
    kind: demo
    text: {en: t, zh: t}
    show: [overlay, links, cgroup, processes]
    expect:
      - hostname_equals: {in: box, value: snapbox}
`

func runSnapScenario(t *testing.T, src string) *Engine {
	t.Helper()
	s, err := (&Loader{Content: testContent}).Load("snaptest.yaml", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	s.TrustReasons = nil // the project's own fixture: trusted like the embedded scenarios
	e, err := New(s, Options{Loader: &Loader{Content: testContent}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := e.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.RunStep(ctx); err != nil || !ok {
		t.Fatalf("step a: passed %v, %v", ok, err)
	}
	return e
}

// A full snapshot reads every target, but only what the step's panes
// show; the plain printer prints it.
func TestSnapshotReadsOnlyThePanes(t *testing.T) {
	needRoot(t)
	e := runSnapScenario(t, snapScenario)
	snap := e.Snapshot(context.Background(), SnapshotOptions{Step: 0})
	if got := slices.Sorted(maps.Keys(snap.Targets)); strings.Join(got, ",") != "box,host,img" {
		t.Fatalf("targets %v, want box, host, img", got)
	}
	box, host := snap.Targets["box"], snap.Targets["host"]
	if box.Pid == 0 || box.Namespaces["uts"].Shared || !box.Namespaces["user"].Shared || !host.Namespaces["uts"].Shared {
		t.Errorf("namespaces: box %+v host %+v", box.Namespaces, host.Namespaces)
	}
	if box.Process == nil || box.Process.Hostname.Value != "snapbox" || !strings.Contains(box.Process.Hostname.Source, "setns") {
		t.Fatalf("box hostname: %+v", box.Process)
	}
	// not asked for: not read
	if box.Process.Status.Source != "" || box.Links != nil || box.CgroupStats != nil || box.Upper != nil {
		t.Errorf("read more than the panes show: status %+v links %v cgroup %v upper %v", box.Process.Status, box.Links, box.CgroupStats, box.Upper)
	}
	if img := snap.Targets["img"]; img.Layout == nil || img.Pid != 0 {
		t.Errorf("stand-alone overlay: %+v", img)
	}
	var out bytes.Buffer
	PlainPrinter(&out, "en")(*snap)
	for _, want := range []string{"[namespaces]", "[hostname] box        snapbox (domain", "[hostname] host"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed snapshot lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "*"); n < 4 { // uts, mnt, net, pid, ipc differ (+ the legend)
		t.Errorf("%d namespaces marked as differing:\n%s", n, out.String())
	}
}

// A focused snapshot reads the host and the step's container, from a
// cache at a steady rate.
func TestFocusedSnapshot(t *testing.T) {
	needRoot(t)
	e := runSnapScenario(t, snapScenario)
	cache := &SnapshotCache{}
	snap := e.Snapshot(context.Background(), SnapshotOptions{Step: 1, Focus: true, Cache: cache})
	if snap.Focus != "box" || len(snap.Targets) != 2 || snap.Targets["host"] == nil {
		t.Fatalf("focus %q targets %v, want box and host", snap.Focus, slices.Collect(maps.Keys(snap.Targets)))
	}
	box, host := snap.Targets["box"], snap.Targets["host"]
	if box.CgroupStats == nil || box.CgroupStats.PidsCurrent < 1 || !strings.Contains(box.Sources["cgroup"], box.Name) {
		t.Errorf("cgroup: %+v from %q", box.CgroupStats, box.Sources["cgroup"])
	}
	if box.NetNS == 0 || box.NetNS == host.NetNS || len(box.Links) == 0 || box.Links[0].Name != "lo" {
		t.Errorf("links: box netns %d %+v, host netns %d", box.NetNS, box.Links, host.NetNS)
	}
	if box.Layout == nil || box.Process == nil || !box.Process.Status.OK() || !box.Process.Descendants.OK() {
		t.Errorf("overlay %+v process %+v", box.Layout, box.Process)
	}
	if err := os.WriteFile(filepath.Join(box.Layout.Merged, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	again := e.Snapshot(context.Background(), SnapshotOptions{Step: 1, Focus: true, Cache: cache})
	if b := again.Targets["box"]; len(b.Upper) == 0 || b.Upper[0].Path != "/new" {
		t.Errorf("upper after a write in the merged view: %+v", b.Upper)
	}
}

// Without a container, the focus is a stand-alone overlay.
func TestFocusedSnapshotOfAnOverlay(t *testing.T) {
	needRoot(t)
	src := strings.Replace(snapScenario, "      - start: {container: box}\n", "", 1)
	src = strings.Replace(src, "    show: [namespaces, hostname]\n    expect:\n      - hostname_equals: {in: box, value: snapbox}\n",
		"    show: [overlay, namespaces]\n    expect:\n      - mount_visible: {in: host, path: /var/lib/ctlab/lab/snaptest/img/merged, fstype: overlay}\n", 1)
	e := runSnapScenario(t, src)
	snap := e.Snapshot(context.Background(), SnapshotOptions{Step: 0, Focus: true})
	img := snap.Targets["img"]
	if snap.Focus != "img" || img == nil || img.Layout == nil || img.Pid != 0 || len(img.Errors) != 0 {
		t.Fatalf("focus %q img %+v", snap.Focus, img)
	}
	if err := os.WriteFile(filepath.Join(img.Layout.Merged, "etc/motd"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	img = e.Snapshot(context.Background(), SnapshotOptions{Step: 0, Focus: true}).Targets["img"]
	if i := slices.IndexFunc(img.Upper, func(c overlay.Change) bool { return c.Path == "/etc/motd" }); i < 0 || img.Upper[i].Kind != overlay.Modified {
		t.Errorf("upper after a copy-up: %+v", img.Upper)
	}
}
