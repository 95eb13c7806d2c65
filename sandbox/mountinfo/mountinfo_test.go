package mountinfo

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	text := `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
36 22 0:32 /sub\040dir /mnt/with\040space\011tab rw,nosuid master:2 propagate_from:3 - tmpfs my\134src rw,size=1024k
37 22 0:33 / /mnt/x rw - overlay overlay
`
	ms, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("got %d mounts, want 3", len(ms))
	}
	m := ms[1]
	if m.ID != 36 || m.Parent != 22 || m.Dev != "0:32" || m.Root != "/sub dir" || m.MountPoint != "/mnt/with space\ttab" ||
		m.Options != "rw,nosuid" || len(m.Optional) != 2 || m.Optional[1] != "propagate_from:3" ||
		m.FSType != "tmpfs" || m.Source != `my\src` || m.SuperOptions != "rw,size=1024k" {
		t.Errorf("line 2: %+v", m)
	}
	if ms[2].SuperOptions != "" || ms[2].FSType != "overlay" {
		t.Errorf("line 3: %+v", ms[2])
	}
	if f := Find(ms, "/mnt/x"); f == nil || f.ID != 37 {
		t.Errorf("Find: %+v", f)
	}
	for _, bad := range []string{"1 2 3\n", "1 2 0:1 / /x rw shared:1 ext4 /dev/x rw\n"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): want an error", bad)
		}
	}
	for in, want := range map[string]string{`a\040b`: "a b", `a\0`: `a\0`, `\134\012`: "\\\n", `x\999`: `x\999`, "plain": "plain"} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// The kernel's own escaping, read back: a tmpfs mounted on a directory
// whose name has a space.
func TestReadSpaceInMountPoint(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("needs root to mount (euid %d)", os.Geteuid())
	}
	dir := filepath.Join(t.TempDir(), "with space")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	ms, err := Read(0)
	if err != nil {
		t.Fatal(err)
	}
	if m := Find(ms, dir); m == nil || m.FSType != "tmpfs" {
		t.Errorf("no tmpfs at %q in /proc/self/mountinfo: %+v", dir, m)
	}
}
