package sandbox

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Where ctlab keeps its own state. Everything ctlab creates on disk lives
// under these two roots; nothing else is ever removed.
var (
	RunDir  = "/run/ctlab"     // tmpfs: journal, state, locks (gone at reboot, like the kernel objects)
	DataDir = "/var/lib/ctlab" // disk: container layers, cached rootfs, image layers
)

func journalDir() string    { return filepath.Join(RunDir, "journal") }
func stateDir() string      { return filepath.Join(RunDir, "containers") }
func lockDir() string       { return filepath.Join(RunDir, "locks") }
func containersDir() string { return filepath.Join(DataDir, "containers") }

// Record kinds written to the journal, one per kernel object or directory.
const (
	recDir     = "dir"     // Path: a directory under DataDir
	recMount   = "mount"   // Path: an overlay mount point
	recCgroup  = "cgroup"  // Name: cgroup ctlab/<name>
	recLink    = "link"    // Name: host end of a veth pair
	recProcess = "process" // Pid + Start: the container init
)

// A cgroup at Config.CgroupPath: its directory in each hierarchy (Name: the
// controller; its processes are killed at cleanup) and each directory ctlab
// makes on the way there (only those are ever removed).
const (
	recCgroupLeaf = "cgroup-leaf"
	recCgroupDir  = "cgroup-dir"
	recScope      = "scope" // with the systemd driver: Name the unit, Path its slice
)

// Record is one intent in the journal: "I am about to create this". It is
// written (one write(2), not fsynced: see intend) before the object exists,
// so a run killed at any point leaves a journal that names everything it
// may have made.
type Record struct {
	Kind  string    `json:"kind"`
	Path  string    `json:"path,omitempty"`
	Name  string    `json:"name,omitempty"`
	Pid   int       `json:"pid,omitempty"`
	Start uint64    `json:"start,omitempty"`
	Time  time.Time `json:"time"`
}

// journal appends intents for one container.
type journal struct {
	f *os.File
}

func ensureDirs() error {
	// The run dir and everything in it are root's alone. The data dirs on
	// the way to a container's rootfs are traverse-only (0711): root of a
	// user namespace is an unprivileged uid on the host, and its init must
	// walk the path to its rootfs; each container's own dir is then 0710
	// with the container's gid as group (Docker's userns-remap layout), so
	// other host users can neither list nor enter it (CVE-2021-41091 class).
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{RunDir, 0o700}, {journalDir(), 0o700}, {stateDir(), 0o700}, {lockDir(), 0o700},
		{DataDir, 0o711}, {containersDir(), 0o711}, {binDir(), 0o711}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
		// MkdirAll keeps an existing mode.
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("chmod %s: %w", d.path, err)
		}
	}
	return nil
}

func binDir() string { return filepath.Join(DataDir, "bin") }

func openJournal(name string) (*journal, error) {
	f, err := os.OpenFile(filepath.Join(journalDir(), name+".jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &journal{f: f}, nil
}

// intend appends r to the journal file with one write(2) before returning.
// It does not fsync, on purpose: see below.
func (j *journal) intend(r Record) error {
	r.Time = time.Now()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	// /run is tmpfs: no fsync needed for a crash of ctlab (the page cache
	// survives a kill -9), and a reboot also removes the kernel objects.
	return nil
}

func (j *journal) close() {
	if j != nil && j.f != nil {
		j.f.Close()
	}
}

func removeJournal(name string) error {
	err := os.Remove(filepath.Join(journalDir(), name+".jsonl"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// readJournal returns the records of one container's journal.
func readJournal(name string) ([]Record, error) {
	return readJournalFile(filepath.Join(journalDir(), name+".jsonl"))
}

// readJournalFile returns the records of one journal file.
func readJournalFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) == nil { // a torn last line is skipped
			out = append(out, r)
		}
	}
	return out, sc.Err()
}

// journalNames lists the containers that have a journal.
func journalNames() ([]string, error) { return journalFiles(journalDir()) }

// journalFiles lists the names of the journals (NAME.jsonl) in dir.
func journalFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".jsonl"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	return names, nil
}
