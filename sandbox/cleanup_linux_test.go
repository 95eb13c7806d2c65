package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// crashyRun is "ctlab run" for the crash tests: CTLAB_FAILPOINT makes it
// SIGKILL itself at the named step. A second argument is a uts namespace
// to join, without a mount namespace of its own.
func crashyRun(args []string) int {
	cfg := Config{Name: args[0], Net: true, Args: []string{"sleep", "60"},
		Limits: cgroups.Limits{PidsMax: 50}, CgroupDriver: os.Getenv("CTLAB_TEST_CGROUP_DRIVER")}
	if len(args) > 1 {
		cfg.Namespaces = []Namespace{NSNet, NSPID}
		cfg.Join = map[Namespace]string{NSUTS: args[1]}
	}
	_, err := Start(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	time.Sleep(time.Minute)
	return 0
}

// objects lists every kernel object and directory that carries name.
func objects(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	if cgs, _ := cgroups.List(); cgs != nil {
		for _, c := range cgs {
			if c == name {
				out = append(out, "cgroup "+c)
			}
		}
	}
	for mp := range mountPoints(t) {
		if strings.Contains(mp, "/ctlab/containers/"+name) {
			out = append(out, "mount "+mp)
		}
	}
	h, p := network.LinkNames(name)
	links, _ := network.ReadLinks("")
	for _, l := range links {
		if l.Name == h || l.Name == p {
			out = append(out, "link "+l.Name)
		}
	}
	for _, d := range []string{filepath.Join(containersDir(), name), statePath(name), filepath.Join(journalDir(), name+".jsonl")} {
		if _, err := os.Stat(d); err == nil {
			out = append(out, "path "+d)
		}
	}
	return out
}

// killedRun runs crashyRun (name, then args) and checks that it was killed
// at the failpoint fp with something left behind.
func killedRun(t *testing.T, fp, name string, args ...string) {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", append([]string{"crashy-run", name}, args...)...)
	cmd.Env = append(os.Environ(), "CTLAB_FAILPOINT="+fp)
	out, _ := cmd.CombinedOutput()
	if ws := cmd.ProcessState.String(); !strings.Contains(ws, "killed") {
		t.Fatalf("run did not die at %s: %s %s", fp, ws, out)
	}
	if len(objects(t, name)) == 0 {
		t.Fatalf("the killed run at %s left nothing: the failpoint is not where it claims", fp)
	}
}

func TestCleanupAfterKill9(t *testing.T) {
	requireRoot(t)
	// Unrelated objects that look a bit like ours must survive.
	unrelated := "/sys/fs/cgroup/pids/ctlab-unrelated"
	if cgroups.Effective() == cgroups.V2 {
		unrelated = "/sys/fs/cgroup/ctlab-unrelated"
	}
	if err := os.Mkdir(unrelated, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(unrelated)
	dummy := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ctlunrel0"}, PeerName: "ctlunrel1"}
	if err := netlink.LinkAdd(dummy); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(dummy)

	for _, fp := range []string{"after-mount", "after-cgroup", "after-cgroup-attach", "after-veth", "after-start"} {
		t.Run(fp, func(t *testing.T) {
			name := testName(t)
			killedRun(t, fp, name)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := 0; i < 2; i++ { // twice: the second run must be harmless
				if _, err := Cleanup(ctx, CleanupOptions{}); err != nil {
					t.Fatalf("cleanup #%d: %v", i+1, err)
				}
			}
			time.Sleep(300 * time.Millisecond) // veth removal follows netns teardown asynchronously
			if left := objects(t, name); len(left) > 0 {
				t.Errorf("after cleanup: %v", left)
			}
		})
	}
	if _, err := os.Stat(unrelated); err != nil {
		t.Errorf("cleanup removed an unrelated cgroup: %v", err)
	}
	if _, err := netlink.LinkByName("ctlunrel0"); err != nil {
		t.Errorf("cleanup removed an unrelated link: %v", err)
	}
}

// A scenario run killed mid-way leaves its journalled mounts under
// DataDir/lab/<id>: cleanup removes them by the lab journal, unless that
// scenario is running (its lock is held). A mount under a lab dir that no
// journal names is not ctlab's to touch.
func TestCleanupLabDirs(t *testing.T) {
	requireRoot(t)
	mk := func(id string, journalled bool) string {
		dir := filepath.Join(LabDir(id), "img", "merged")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if journalled {
			if err := BindMount(id, t.TempDir(), dir); err != nil {
				t.Fatal(err)
			}
		} else if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dead, live, foreign := "cleanup-test-dead", "cleanup-test-live", "cleanup-test-foreign"
	mk(dead, true)
	liveMount := mk(live, true)
	foreignMount := mk(foreign, false)
	os.MkdirAll(filepath.Dir(ScenarioLock(live)), 0o700)
	lk, err := os.OpenFile(ScenarioLock(live), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, m := range []string{liveMount, foreignMount} {
			unix.Unmount(m, unix.MNT_DETACH)
		}
		CleanupLab(context.Background(), live)
		os.RemoveAll(LabDir(foreign))
	}()
	if _, err := Cleanup(context.Background(), CleanupOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(LabDir(dead)); err == nil {
		t.Errorf("the killed scenario's lab dir survived")
	}
	if _, err := os.Stat(labJournalPath(dead)); err == nil {
		t.Errorf("the killed scenario's lab journal survived")
	}
	if mps, _ := overlay.MountsUnder(LabDir(dead)); len(mps) > 0 {
		t.Errorf("mounts left: %v", mps)
	}
	if mps, _ := overlay.MountsUnder(LabDir(live)); len(mps) != 1 {
		t.Errorf("the running scenario's mount was touched: %v", mps)
	}
	if mps, _ := overlay.MountsUnder(LabDir(foreign)); len(mps) != 1 {
		t.Errorf("a mount no journal names was touched: %v", mps)
	}
}

// crashyLab is a scenario run for the crash tests: it makes one lab object
// through the journalled functions, then SIGKILLs itself.
//
//	crashy-lab overlay OWNER   a stand-alone overlay under LabDir(OWNER)
//	crashy-lab link NAME       a container NAME (no --net) and a `link`
func crashyLab(args []string) int {
	err := func() error {
		switch args[0] {
		case "overlay":
			d := filepath.Join(LabDir(args[1]), "ov")
			l := overlay.Layout{Lower: []string{filepath.Join(d, "lower")}, Upper: filepath.Join(d, "upper"),
				Work: filepath.Join(d, "work"), Merged: filepath.Join(d, "merged")}
			for _, x := range []string{l.Lower[0], l.Upper, l.Work, l.Merged} {
				if err := os.MkdirAll(x, 0o755); err != nil {
					return err
				}
			}
			return MountOverlay(args[1], l)
		case "link":
			c, err := Start(context.Background(), Config{Name: args[1], Args: []string{"sleep", "60"}})
			if err != nil {
				return err
			}
			_, err = LinkContainer(context.Background(), c)
			return err
		}
		return fmt.Errorf("crashy-lab: unknown %q", args[0])
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	unix.Kill(os.Getpid(), unix.SIGKILL)
	select {}
}

// TestCleanupLabAfterKill9: a scenario run killed right after making a
// stand-alone overlay, or a link for a container, leaves a journal that
// names it; cleanup removes it by that record.
func TestCleanupLabAfterKill9(t *testing.T) {
	requireRoot(t)
	kill9 := func(t *testing.T, args ...string) {
		cmd := exec.Command("/proc/self/exe", append([]string{"crashy-lab"}, args...)...)
		out, _ := cmd.CombinedOutput()
		if ws := cmd.ProcessState.String(); !strings.Contains(ws, "killed") {
			t.Fatalf("crashy-lab %v did not die: %s %s", args, ws, out)
		}
	}
	cleanup := func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := 0; i < 2; i++ { // twice: the second run must be harmless
			if _, err := Cleanup(ctx, CleanupOptions{}); err != nil {
				t.Fatalf("cleanup #%d: %v", i+1, err)
			}
		}
	}
	t.Run("overlay", func(t *testing.T) {
		owner := testName(t)
		kill9(t, "overlay", owner)
		merged := filepath.Join(LabDir(owner), "ov", "merged")
		if ok, _ := overlay.IsMounted(merged); !ok {
			t.Fatalf("the killed run left no overlay at %s", merged)
		}
		if recs, _ := readJournalFile(labJournalPath(owner)); len(recs) != 1 || recs[0].Kind != recMount || recs[0].Path != merged {
			t.Fatalf("lab journal: %+v", recs)
		}
		cleanup(t)
		if ok, _ := overlay.IsMounted(merged); ok {
			t.Errorf("overlay %s still mounted after cleanup", merged)
		}
		for _, p := range []string{LabDir(owner), labJournalPath(owner)} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s survived cleanup", p)
			}
		}
	})
	t.Run("link", func(t *testing.T) {
		name := testName(t)
		kill9(t, "link", name)
		host, _ := network.LinkNames(name)
		recs, _ := readJournal(name)
		found := false
		for _, r := range recs {
			found = found || (r.Kind == recLink && r.Name == host)
		}
		if !found {
			t.Fatalf("the container's journal does not name the link %s: %+v", host, recs)
		}
		cleanup(t)
		time.Sleep(300 * time.Millisecond) // veth removal follows netns teardown asynchronously
		if left := objects(t, name); len(left) > 0 {
			t.Errorf("after cleanup: %v", left)
		}
	})
}
