package tui

import (
	"strings"
	"testing"
	"time"
)

// TestE2ECourseReader drives the real binary at 80×24 as a learner would:
// `ctlab learn PAGE` opens the reader, tab and enter follow a link, /
// searches, g shows the glossary, esc walks back, q quits.
func TestE2ECourseReader(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("builds the binary and drives it in tmux: skipped with -short")
	}
	bin := buildCtlab(t)
	s := startTmux(t, "XDG_CONFIG_HOME="+t.TempDir()+" SUDO_USER= "+bin+" learn images/layers --lang en; echo CTLAB-EXIT=$?; sleep 300")
	s.waitFor("the page opens", 30*time.Second, "Image Layers and Union Filesystems", "link 0/")

	// tab until the link to the overlay page is selected
	for i := 0; i < 40 && !strings.Contains(s.screen(), "link → The Overlay Filesystem"); i++ {
		s.keys("Tab")
		time.Sleep(80 * time.Millisecond)
	}
	s.waitFor("the link is selected", 5*time.Second, "link → The Overlay Filesystem")
	s.keys("Enter")
	s.waitFor("the link is followed", 10*time.Second, "The Overlay Filesystem")

	s.keys("/")
	s.keys("-l", "dockershim")
	s.waitFor("search shows hits with context", 10*time.Second, "/ dockershim", "Docker Split Apart", "kubelet --CRI--> dockershim")
	s.keys("Escape")
	s.waitFor("esc leaves the search", 10*time.Second, "The Overlay Filesystem")

	s.keys("g")
	s.waitFor("the glossary", 10*time.Second, "Glossary", "container · 容器")
	s.keys("Escape")
	s.waitFor("back on the page", 10*time.Second, "The Overlay Filesystem")
	s.keys("Escape")
	s.waitFor("back in the history", 10*time.Second, "Image Layers and Union Filesystems")
	s.keys("Escape")
	s.waitFor("home", 10*time.Second, "containers from the kernel up", "Namespaces")
	s.keys("q")
	s.waitFor("ctlab exits cleanly", 30*time.Second, "CTLAB-EXIT=0")
}
