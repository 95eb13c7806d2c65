package tui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/network"
)

// buildCtlab builds the real ctlab binary the way `make build` does
// (static: it is bind-mounted into containers that have no libc).
func buildCtlab(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "ctlab")
	// Both binaries, side by side as `make build` leaves them: ctlab hands
	// the UI over to ctlab-tui.
	for _, pkg := range []string{"ctlab", "ctlab-tui"} {
		cmd := exec.Command("go", "build", "-tags", "netgo,osusergo",
			"-ldflags", `-linkmode external -extldflags "-static"`, "-o", filepath.Join(dir, pkg), "./cmd/"+pkg)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	if out, err := exec.Command(bin, "learn", "--help").CombinedOutput(); err != nil {
		t.Fatalf("`ctlab learn` is not wired into cmd/ctlab (root.AddCommand(newLearnCmd())): %v\n%s", err, out)
	}
	return bin
}

// tmuxSession is a detached tmux session of 80×24 running one command,
// on a tmux server of its own (-L): other tests on this machine that use
// tmux, or kill its default server, cannot disturb it.
type tmuxSession struct {
	t      *testing.T
	name   string
	socket string
}

func (s *tmuxSession) tmux(args ...string) *exec.Cmd {
	return exec.Command("tmux", append([]string{"-L", s.socket}, args...)...)
}

func startTmux(t *testing.T, command string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skipf("tmux is not installed: %v", err)
	}
	s := &tmuxSession{t: t, name: "e2e", socket: fmt.Sprintf("ctlab-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())}
	out, err := s.tmux("new-session", "-d", "-s", s.name, "-x", "80", "-y", "24",
		"env", "TERM=xterm-256color", "LANG=C.UTF-8", "sh", "-c", command).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { s.tmux("kill-server").Run() })
	return s
}

func (s *tmuxSession) screen() string {
	out, err := s.tmux("capture-pane", "-p", "-t", s.name).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	if out, err := s.tmux(append([]string{"send-keys", "-t", s.name}, keys...)...).CombinedOutput(); err != nil {
		s.t.Fatalf("tmux send-keys %q: %v\n%s", keys, err, out)
	}
}

// waitFor polls the screen until every want is on it.
func (s *tmuxSession) waitFor(what string, timeout time.Duration, want ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		scr := s.screen()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(scr, w)
		}
		if ok {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %q not on screen after %s; screen:\n%s", what, want, timeout, scr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ctlLinks() map[string]bool {
	out := map[string]bool{}
	links, _ := network.ReadLinks("")
	for _, l := range links {
		if strings.HasPrefix(l.Name, "ctl") {
			out[l.Name] = true
		}
	}
	return out
}

// TestE2ELearnNsUTS is a learner's session, through the real binary in a
// real terminal (tmux, 80×24): open the UTS lesson, run the first step,
// open the shell in the container, rename it, leave the shell, see the
// task pass, quit, and find no kernel object left behind.
func TestE2ELearnNsUTS(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("builds the binary and drives it in tmux: skipped with -short")
	}
	bin := buildCtlab(t)

	// The learner's saved place would change where the lesson opens;
	// start from the beginning and put their record back afterwards.
	// The binary keeps progress in $XDG_CONFIG_HOME/ctlab/progress.json
	// (no SUDO_USER here): a temporary one starts the lesson afresh and
	// leaves the real learner's record alone.
	cfg := t.TempDir()
	linksBefore := ctlLinks()

	s := startTmux(t, "XDG_CONFIG_HOME="+cfg+" SUDO_USER= "+bin+" learn ns-uts --lang en; echo CTLAB-EXIT=$?; sleep 300")
	s.waitFor("lesson opens", 30*time.Second, "1/3 · demo", "press enter to run")

	s.keys("Enter")
	s.waitFor("first step passes", 30*time.Second, "✓ passed", "ns-uts-box · pid")

	s.keys("n")
	s.waitFor("the task is the learner's turn", 30*time.Second, "2/3 · task", "waiting for you")

	s.keys("s")
	s.waitFor("the shell in the container", 30*time.Second, "box#")
	s.keys("hostname learner", "Enter")
	s.keys("exit", "Enter")
	scr := s.waitFor("the task passes on its own", 30*time.Second, "2/3 · task", "✓ passed")
	if !strings.Contains(scr, "learner") {
		t.Errorf("the state pane does not show the new hostname:\n%s", scr)
	}

	s.keys("q")
	s.waitFor("ctlab exits cleanly", 60*time.Second, "CTLAB-EXIT=0")

	assertGone(t, "ns-uts-box")
	assertNoLeftovers(t, linksBefore)
}

func assertNoLeftovers(t *testing.T, linksBefore map[string]bool) {
	t.Helper()
	if ms, _ := filepath.Glob("/sys/fs/cgroup/*/ctlab/ns-uts-*"); len(ms) > 0 {
		t.Errorf("cgroups left: %v", ms)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), "/var/lib/ctlab/containers/ns-uts-") {
		t.Error("a mount under /var/lib/ctlab/containers/ns-uts-* is left")
	}
	// Other packages' tests may be making links right now: only a link
	// that is new and still there a moment later counts.
	var left []string
	for name := range ctlLinks() {
		if !linksBefore[name] {
			left = append(left, name)
		}
	}
	if len(left) > 0 {
		time.Sleep(2 * time.Second)
		now := ctlLinks()
		var still []string
		for _, n := range left {
			if now[n] {
				still = append(still, n)
			}
		}
		if len(still) > 0 {
			t.Errorf("ctl* links left after quit: %v", still)
		}
	}
}

// TestE2ENoTTY: without a terminal ctlab says what to use instead, at
// once, rather than hanging or drawing into a pipe.
func TestE2ENoTTY(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("builds the binary: skipped with -short")
	}
	bin := buildCtlab(t)
	cmd := exec.Command(bin, "learn", "ns-uts")
	cmd.Stdin = nil // /dev/null
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ctlab learn without a TTY succeeded; output:\n%s", out)
	}
	if !strings.Contains(string(out), "ctlab scenario run --plain") {
		t.Errorf("the message does not name the plain runner:\n%s", out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to give up", d)
	}
}

// TestE2ENoColor: with NO_COLOR the screen has no colour codes (bold and
// reverse stay, as no-color.org allows); without it, it has some, so the
// check can fail.
func TestE2ENoColor(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("builds the binary and drives it in tmux: skipped with -short")
	}
	bin := buildCtlab(t)
	cfg := t.TempDir()
	for _, noColor := range []bool{false, true} {
		env := "unset NO_COLOR; "
		if noColor {
			env = "NO_COLOR=1 "
		}
		s := startTmux(t, env+"XDG_CONFIG_HOME="+cfg+" SUDO_USER= "+bin+" --lang en; echo CTLAB-EXIT=$?; sleep 300")
		s.waitFor("home screen", 30*time.Second, "containers from the kernel up", "ns-uts")
		out, err := s.tmux("capture-pane", "-p", "-e", "-t", s.name).Output()
		if err != nil {
			t.Fatal(err)
		}
		colour := regexp.MustCompile(`\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]+)m`).Match(out)
		if colour == noColor {
			t.Errorf("NO_COLOR=%v: colour codes on screen = %v\n%q", noColor, colour, out)
		}
		s.keys("q")
		s.waitFor("ctlab exits", 30*time.Second, "CTLAB-EXIT=0")
		s.tmux("kill-server").Run()
	}
}
