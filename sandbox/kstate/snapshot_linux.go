package kstate

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// Parts selects what a Snapshot reads. A pane that shows two lines should
// not pay for a scan of every process on the host four times a second, so
// each group of kernel files is asked for on its own.
type Parts uint32

// The parts of a Snapshot. The first nine fill Snapshot.Process (fields of
// parts not asked for stay zero, with an empty Source); the others need
// the subject's cgroup name or overlay layout.
const (
	PartNamespaces  Parts = 1 << iota // /proc/<pid>/ns/*, beside ctlab's own (the host's)
	PartStatus                        // /proc/<pid>/status
	PartIDMaps                        // /proc/<pid>/{uid,gid}_map
	PartTime                          // /proc/<pid>/timens_offsets and the clocks inside
	PartCgroupPaths                   // /proc/<pid>/cgroup
	PartMounts                        // /proc/<pid>/mountinfo
	PartUTS                           // hostname and domain name (a thread joins the uts namespace)
	PartIPC                           // SysV IPC objects (a thread joins the ipc namespace)
	PartChildren                      // descendants (a scan of every /proc/<pid>/stat)
	PartCgroup                        // the ctlab cgroup's statistics
	PartCgroupFiles                   // its limit files under their v1 and v2 names
	PartLinks                         // links and addresses, over netlink inside the net namespace
	PartUpper                         // what the kernel wrote into the overlay's upperdir

	PartsProcess = PartNamespaces | PartStatus | PartIDMaps | PartTime | PartCgroupPaths |
		PartMounts | PartUTS | PartIPC | PartChildren
	PartsAll = PartsProcess | PartCgroup | PartCgroupFiles | PartLinks | PartUpper
)

// slowParts are re-read at most every SlowEvery when a Cache is given:
// together they cost milliseconds (a scan of /proc, a thread per setns).
const slowParts = PartMounts | PartIPC | PartChildren

// SlowEvery bounds how often a Cache lets the slow parts be read again.
const SlowEvery = time.Second

// Subject names what one Snapshot reads. The caller knows these from its
// own records (a container's state, the lab's engine); every value in the
// Snapshot is then read from the kernel.
type Subject struct {
	Name   string         // the snapshot's name: a container, "host", a process
	Pid    int            // host pid of the process; 0 when none runs
	Cgroup string         // the ctlab cgroup "ctlab/<Cgroup>"; "" when it has none
	Layout overlay.Layout // the overlay whose upperdir is read; Upper "" when none
	// OwnNetOnly reads the links only in a net namespace other than
	// ctlab's own: a reader showing the host beside the subject has read
	// the host's links already (NetNS is set either way).
	OwnNetOnly bool
}

// NSPair compares one namespace of the subject with ctlab's own (the
// host's): equal inodes mean one shared namespace.
type NSPair struct {
	Container uint64 `json:"container"`
	Host      uint64 `json:"host"`
	Shared    bool   `json:"shared"`
}

// CgroupRow is one row of the cgroup teaching table: a file under its v1
// and v2 names, its path on this host and the value the kernel returns.
type CgroupRow struct {
	Controller string `json:"controller"`
	V1         string `json:"v1,omitempty"`
	V2         string `json:"v2,omitempty"`
	Path       string `json:"path"`
	Value      string `json:"value"`
}

// Snapshot is the live kernel state of one container (or process, or
// stand-alone overlay), read at Time. ctlab inspect prints it, the lab's
// Snapshot event carries one per target, and the TUI's state pane draws
// one. Parts that were not asked for, or do not apply, are empty; a part
// that could not be read has its reason in Errors.
type Snapshot struct {
	Name        string            `json:"name"`
	Pid         int               `json:"pid"` // the process's host pid (a container's init); 0 when none runs
	Time        time.Time         `json:"time"`
	Namespaces  map[string]NSPair `json:"namespaces,omitempty"` // kind -> inodes; the eight kinds
	Process     *Process          `json:"process,omitempty"`
	Cgroup      string            `json:"cgroup,omitempty"` // its path under the cgroup roots
	CgroupStats *cgroups.Stats    `json:"cgroup_stats,omitempty"`
	CgroupFiles []CgroupRow       `json:"cgroup_files,omitempty"`
	NetNS       uint64            `json:"netns,omitempty"` // inode of the net namespace the links were read in
	Links       []network.Link    `json:"links,omitempty"`
	Layout      *overlay.Layout   `json:"layout,omitempty"`
	Upper       []overlay.Change  `json:"upper_changes,omitempty"` // in path order
	// Sources names the kernel file or call each part outside Process was
	// read from (Process fields carry their own), so evidence can cite it.
	Sources map[string]string `json:"sources,omitempty"`
	Errors  map[string]string `json:"errors,omitempty"` // part -> why it could not be read
}

// Err joins the snapshot's errors (and Process's), "" when every part
// asked for was read.
func (s *Snapshot) Err() string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
		out = append(out, k+": "+s.Errors[k])
	}
	if s.Process != nil {
		out = append(out, s.Process.readErrors()...)
	}
	return strings.Join(out, "; ")
}

func (s *Snapshot) fail(part, source string, err error) {
	if source != "" {
		s.Sources[part] = source
	}
	if err != nil {
		s.Errors[part] = err.Error()
	}
}

// ReadSnapshot takes a snapshot of sub: only the parts asked for. c keeps
// costly reads between calls (a refresh at a steady rate); nil reads
// everything afresh. It never fails as a whole: what could not be read is
// in Errors (e.g. "process" when the process has exited).
//
// Preconditions: root (other processes' /proc/<pid>/ns, setns, netlink in
// another namespace, cgroupfs).
func ReadSnapshot(sub Subject, parts Parts, c *Cache) *Snapshot {
	s := &Snapshot{Name: sub.Name, Pid: sub.Pid, Time: time.Now(), Sources: map[string]string{}, Errors: map[string]string{}}
	if sub.Pid > 0 && parts&(PartsProcess|PartLinks) != 0 {
		s.readProcess(sub, parts, c)
	}
	if sub.Cgroup != "" && parts&(PartCgroup|PartCgroupFiles) != 0 {
		s.readCgroup(sub.Cgroup, sub.Pid, parts, c)
	}
	if sub.Layout.Upper != "" {
		l := sub.Layout
		s.Layout = &l
		if parts&PartUpper != 0 {
			ch, src, err := Upper(l)
			s.Upper = ch
			s.fail("upper", src, err)
		}
	}
	return s
}

func (s *Snapshot) readProcess(sub Subject, parts Parts, c *Cache) {
	pid := sub.Pid
	p, err := readParts(pid, parts&PartsProcess, c)
	if err != nil {
		s.fail("process", fmt.Sprintf("/proc/%d", pid), err)
		return
	}
	if parts&PartsProcess != 0 {
		s.Process = p
	}
	if parts&PartNamespaces != 0 {
		s.Namespaces = map[string]NSPair{}
		self := os.Getpid()
		for _, k := range NSKinds {
			if strings.HasSuffix(k, "_for_children") {
				continue // what a child would join, not what the process is in
			}
			r := p.Namespaces[k]
			h, err := NSInode(self, k)
			if !r.OK() || err != nil {
				continue // the kind does not exist on this kernel
			}
			s.Namespaces[k] = NSPair{Container: r.Value, Host: h, Shared: r.Value == h}
		}
	}
	if parts&PartLinks != 0 {
		s.readLinks(sub)
	}
}

func (s *Snapshot) readLinks(sub Subject) {
	path := fmt.Sprintf("/proc/%d/ns/net", sub.Pid)
	ns := path
	if sub.Pid == os.Getpid() {
		ns = "" // ctlab's own: no socket opened in another namespace
	}
	s.NetNS, _ = NSInode(sub.Pid, "net")
	if own, _ := NSInode(os.Getpid(), "net"); sub.OwnNetOnly && s.NetNS == own {
		s.Sources["links"] = "not read: " + path + " is ctlab's own net namespace"
		return
	}
	links, src, err := Links(ns)
	s.Links = links
	s.fail("links", src, err)
}

func (s *Snapshot) readCgroup(name string, pid int, parts Parts, c *Cache) {
	s.Cgroup = "ctlab/" + name
	cg, err := c.cgroup(name, pid)
	if err != nil {
		s.fail("cgroup", "cgroupfs "+s.Cgroup, fmt.Errorf("open cgroup %s: %w", name, err))
		return
	}
	s.Sources["cgroup"] = "cgroupfs " + s.Cgroup
	if parts&PartCgroup != 0 {
		st, err := cg.Stats()
		s.CgroupStats = st
		s.fail("cgroup", "", err)
	}
	if parts&PartCgroupFiles != 0 {
		for _, f := range cg.Files() {
			s.CgroupFiles = append(s.CgroupFiles, CgroupRow{f.Controller, f.V1Name, f.V2Name, f.Path, f.Value})
		}
	}
}

// readParts reads the parts of process pid's snapshot asked for. It fails
// only when the process does not exist.
func readParts(pid int, parts Parts, c *Cache) (*Process, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("kstate: pid %d: %w", pid, ErrNoProcess)
	}
	p := &Process{Pid: pid, Time: time.Now()}
	if parts&PartNamespaces != 0 {
		p.Namespaces = map[string]Read[uint64]{}
		for _, k := range NSKinds {
			ino, err := NSInode(pid, k)
			p.Namespaces[k] = readOf(ino, dir+"/ns/"+k, err)
		}
	}
	if parts&PartStatus != 0 {
		st, err := ReadStatus(pid)
		p.Status = readOf(st, dir+"/status", err)
	}
	if parts&PartIDMaps != 0 {
		um, err := readIDMap(dir + "/uid_map")
		p.UIDMap = readOf(um, dir+"/uid_map", err)
		gm, err := readIDMap(dir + "/gid_map")
		p.GIDMap = readOf(gm, dir+"/gid_map", err)
	}
	if parts&PartTime != 0 {
		off, err := ReadTimeOffsets(pid)
		p.TimeOffsets = readOf(off, dir+"/timens_offsets", err)
		p.Clocks = clocksFor(off, err)
	}
	if parts&PartCgroupPaths != 0 {
		cg, err := readCgroup(dir + "/cgroup")
		p.Cgroups = readOf(cg, dir+"/cgroup", err)
	}
	if parts&PartUTS != 0 {
		readUTS(p)
	}
	if slow := parts & slowParts; slow != 0 && !c.slowFrom(p, slow) {
		readSlow(p, slow)
		c.keepSlow(p, slow)
	}
	return p, nil
}

// readUTS fills the names of p's uts namespace. ctlab's own are read
// without a setns, which would cost a thread at every refresh.
func readUTS(p *Process) {
	var host, dom, src string
	var err error
	if p.Pid == os.Getpid() {
		host, dom, err = ownUTSNames()
		src = "/proc/sys/kernel/"
	} else {
		host, dom, src, err = UTSNames(p.Pid)
	}
	p.Hostname = readOf(host, src+"hostname", err)
	p.Domainname = readOf(dom, src+"domainname", err)
}

func ownUTSNames() (hostname, domainname string, err error) {
	h, err := os.ReadFile("/proc/sys/kernel/hostname")
	if err != nil {
		return "", "", fmt.Errorf("read hostname: %w", err)
	}
	d, err := os.ReadFile("/proc/sys/kernel/domainname")
	if err != nil {
		return "", "", fmt.Errorf("read domainname: %w", err)
	}
	return strings.TrimSpace(string(h)), strings.TrimSpace(string(d)), nil
}

func readSlow(p *Process, parts Parts) {
	if parts&PartMounts != 0 {
		mi, err := ReadMountinfo(p.Pid)
		p.Mounts = readOf(mi, fmt.Sprintf("/proc/%d/mountinfo", p.Pid), err)
	}
	if parts&PartIPC != 0 {
		ipc, src, err := IPCObjects(p.Pid)
		p.IPC = readOf(ipc, src, err)
	}
	if parts&PartChildren != 0 {
		desc, err := Descendants(p.Pid)
		p.Descendants = readOf(desc, "/proc/*/stat (ppid scan)", err)
	}
}

// readErrors lists the fields of p that could not be read.
func (p *Process) readErrors() []string {
	var out []string
	add := func(what, err string) {
		if err != "" {
			out = append(out, what+": "+err)
		}
	}
	add("status", p.Status.Err)
	add("uid_map", p.UIDMap.Err)
	add("gid_map", p.GIDMap.Err)
	add("timens_offsets", p.TimeOffsets.Err)
	add("cgroup", p.Cgroups.Err)
	add("mountinfo", p.Mounts.Err)
	add("uts", p.Hostname.Err)
	add("ipc", p.IPC.Err)
	add("descendants", p.Descendants.Err)
	return out
}

// Cache keeps between snapshots what is costly to get again at a steady
// refresh rate: opened cgroups (opening one parses the host's cgroup
// mounts; reading its files does not) and the slow parts of a process,
// re-read at most every SlowEvery. The zero value is ready to use; a nil
// *Cache caches nothing. Safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	cgroups map[string]openCgroup // by cgroup name
	slow    map[int]*slowRead     // by pid
}

// openCgroup is a cgroup opened for the container whose init is pid: a
// new container of the same name is opened afresh.
type openCgroup struct {
	pid int
	cg  *cgroups.Cgroup
}

type slowRead struct {
	at    time.Time
	parts Parts
	p     Process
}

// cgroup opens the ctlab cgroup name, or returns the one opened for the
// same container (name and init pid) before.
func (c *Cache) cgroup(name string, pid int) (*cgroups.Cgroup, error) {
	if c == nil {
		return cgroups.Open(name)
	}
	c.mu.Lock()
	e, ok := c.cgroups[name]
	c.mu.Unlock()
	if ok && e.pid == pid {
		return e.cg, nil
	}
	cg, err := cgroups.Open(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cgroups == nil {
		c.cgroups = map[string]openCgroup{}
	}
	c.cgroups[name] = openCgroup{pid: pid, cg: cg}
	return cg, nil
}

// slowFrom copies the slow parts of p from a fresh enough earlier read of
// the same process; false when there is none.
func (c *Cache) slowFrom(p *Process, parts Parts) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.slow[p.Pid]
	if r == nil || r.parts&parts != parts || time.Since(r.at) >= SlowEvery {
		return false
	}
	p.Mounts, p.IPC, p.Descendants = r.p.Mounts, r.p.IPC, r.p.Descendants
	return true
}

func (c *Cache) keepSlow(p *Process, parts Parts) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slow == nil {
		c.slow = map[int]*slowRead{}
	}
	for pid, r := range c.slow {
		if time.Since(r.at) >= SlowEvery {
			delete(c.slow, pid) // a process that is no longer watched
		}
	}
	c.slow[p.Pid] = &slowRead{at: time.Now(), parts: parts, p: *p}
}
