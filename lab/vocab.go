package lab

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Action is one typed thing the lab does (in `do` or `solve`). Exactly one
// field is set; the YAML form is a one-key mapping such as
//
//   - exec: {in: box, argv: [hostname, learner]}
//
// There is deliberately no free shell on the host: `host` exists only for
// trusted scenarios and the loader lists every step that uses it.
type Action struct {
	Start        *StartAction   `yaml:"start,omitempty" json:"start,omitempty"`
	Exec         *ExecAction    `yaml:"exec,omitempty" json:"exec,omitempty"`
	WriteFile    *WriteFile     `yaml:"write_file,omitempty" json:"write_file,omitempty"`
	SetLimit     *SetLimit      `yaml:"set_limit,omitempty" json:"set_limit,omitempty"`
	Freeze       *Target        `yaml:"freeze,omitempty" json:"freeze,omitempty"`
	Thaw         *Target        `yaml:"thaw,omitempty" json:"thaw,omitempty"`
	Kill         *KillAction    `yaml:"kill,omitempty" json:"kill,omitempty"`
	Load         *LoadAction    `yaml:"load,omitempty" json:"load,omitempty"`
	MountOverlay *MountOverlay  `yaml:"mount_overlay,omitempty" json:"mount_overlay,omitempty"`
	CommitLayer  *CommitLayer   `yaml:"commit_layer,omitempty" json:"commit_layer,omitempty"`
	Link         *LinkAction    `yaml:"link,omitempty" json:"link,omitempty"`
	Remove       *Target        `yaml:"remove,omitempty" json:"remove,omitempty"`
	Host         *HostAction    `yaml:"host,omitempty" json:"host,omitempty"`
	Sleep        *SleepAction   `yaml:"sleep,omitempty" json:"sleep,omitempty"`
	WaitFor      *WaitForAction `yaml:"wait,omitempty" json:"wait,omitempty"`
	WriteBundle  *WriteBundle   `yaml:"write_bundle,omitempty" json:"write_bundle,omitempty"`
	HostProcess  *HostProcess   `yaml:"host_process,omitempty" json:"host_process,omitempty"`
}

// StartAction starts a container declared under `containers:`.
type StartAction struct {
	Container string `yaml:"container" json:"container"`
}

// Target names a container (or a background process started by exec ... as:).
type Target struct {
	In string `yaml:"in" json:"in"`
}

// ExecAction runs argv inside a running container (joining its namespaces
// and cgroup). With Background it keeps running and can be named with As,
// so checks can compare its namespaces with the container's.
type ExecAction struct {
	In         string        `yaml:"in" json:"in"`
	Argv       []string      `yaml:"argv" json:"argv"`
	Stdin      string        `yaml:"stdin,omitempty" json:"stdin,omitempty"`
	ExpectExit *int          `yaml:"expect_exit,omitempty" json:"expect_exit,omitempty"` // default 0
	Timeout    time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`         // default 30s
	Background bool          `yaml:"background,omitempty" json:"background,omitempty"`
	As         string        `yaml:"as,omitempty" json:"as,omitempty"`
	// HelperAs names the exec helper itself: the process that called
	// setns and forked As. Its ns/pid is still the host's, its
	// ns/pid_for_children the container's.
	HelperAs string `yaml:"helper_as,omitempty" json:"helper_as,omitempty"`
}

// WriteFile writes a file inside a container (through exec, so it lands in
// the container's mount namespace and overlay upper layer).
type WriteFile struct {
	In      string `yaml:"in" json:"in"`
	Path    string `yaml:"path" json:"path"`
	Content string `yaml:"content" json:"content"`
	Append  bool   `yaml:"append,omitempty" json:"append,omitempty"`
}

// SetLimit changes cgroup limits of a running container.
type SetLimit struct {
	In     string `yaml:"in" json:"in"`
	Limits `yaml:",inline"`
}

// KillAction sends a signal to a container's init or a named background process.
type KillAction struct {
	In     string `yaml:"in" json:"in"`
	Signal string `yaml:"signal,omitempty" json:"signal,omitempty"` // KILL, TERM, ... (default KILL)
}

// LoadAction runs one of ctlab's built-in load generators inside a container
// (/.ctlab/ctlab load KIND ...; the container needs mount_self: true):
//
//	cpu:   load cpu --seconds S --threads T     burn cpu
//	mem:   load mem SIZE --seconds S           allocate and touch SIZE, hold S
//	fork:  load fork COUNT                     start COUNT processes (exit 3 if refused)
//	io:    load io FILE SIZE                   O_DIRECT read of FILE (made with SIZE bytes)
//	count: load count FILE --seconds S         write a counter to FILE every 10ms
//	shm:   load shm KEY                        create a SysV shared memory segment with KEY, exit
type LoadAction struct {
	In      string `yaml:"in" json:"in"`
	Kind    string `yaml:"kind" json:"kind"` // cpu | mem | fork | io | count | shm
	Seconds int    `yaml:"seconds,omitempty" json:"seconds,omitempty"`
	Threads int    `yaml:"threads,omitempty" json:"threads,omitempty"` // cpu
	Size    string `yaml:"size,omitempty" json:"size,omitempty"`       // mem, io
	Count   int    `yaml:"count,omitempty" json:"count,omitempty"`     // fork
	File    string `yaml:"file,omitempty" json:"file,omitempty"`       // io, count (inside the container)
	Key     string `yaml:"key,omitempty" json:"key,omitempty"`         // shm: 0x1234 or decimal, not 0
	// ExpectRate ("<= 5.5M", bytes per second) fails an io load whose
	// printed rate does not satisfy it: the throttle really held.
	ExpectRate string        `yaml:"expect_rate,omitempty" json:"expect_rate,omitempty"`
	Background bool          `yaml:"background,omitempty" json:"background,omitempty"`
	As         string        `yaml:"as,omitempty" json:"as,omitempty"`
	ExpectExit *int          `yaml:"expect_exit,omitempty" json:"expect_exit,omitempty"` // default: any
	Timeout    time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// MountOverlay mounts a stand-alone overlay (lower layers given as inline
// files) so a lesson can show lower/upper/merged without a container.
type MountOverlay struct {
	As    string              `yaml:"as" json:"as"`
	Lower []map[string]string `yaml:"lower" json:"lower"` // one map path->content per layer, bottom first
}

// CommitLayer turns a container's (or overlay's) upperdir into a new layer
// directory, what `docker commit` and each Dockerfile RUN do.
type CommitLayer struct {
	In string `yaml:"in" json:"in"`
	As string `yaml:"as" json:"as"`
}

// LinkAction gives a container a veth pair to the host (the container must
// have a net namespace); the address is read back by link_has_address.
type LinkAction struct {
	In string `yaml:"in" json:"in"`
}

// HostAction runs argv on the host. Only with --trust.
type HostAction struct {
	Argv    []string      `yaml:"argv" json:"argv"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// SleepAction pauses (e.g. to let a load generator run).
type SleepAction struct {
	For time.Duration `yaml:"for" json:"for"`
}

// WaitForAction waits until a check passes (or the timeout ends, an error).
type WaitForAction struct {
	Check   *Check        `yaml:"check" json:"check"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"` // default 30s
}

// WriteBundle writes an OCI runtime bundle of a running container:
// config.json (runtime-spec 1.x, from the container's configuration) and
// rootfs/ (a bind mount of its overlay's merged directory), in the
// scenario's lab directory (/var/lib/ctlab/lab/<scenario>/<as>). A reset
// unmounts and removes it. As names it as a check target
// (file_contains {in: AS, path: /config.json}).
type WriteBundle struct {
	In string `yaml:"in" json:"in"`
	As string `yaml:"as" json:"as"`
}

// HostProcess names a process a trusted host command started (e.g. `runc
// run --pid-file FILE`): its pid is read from Pidfile, waiting up to
// Timeout (default 10s) for the file. Trusted scenarios only.
type HostProcess struct {
	As      string        `yaml:"as" json:"as"`
	Pidfile string        `yaml:"pidfile" json:"pidfile"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Check is one typed assertion about live kernel state. Exactly one kind
// field is set. Guard marks a check that is expected to hold before the step
// too (e.g. "the host hostname is unchanged"), so `scenario test` does not
// report it as unable to fail. Not inverts the result.
type Check struct {
	NamespaceDiffers   *NSCheck     `yaml:"namespace_differs,omitempty" json:"namespace_differs,omitempty"`
	NamespaceSame      *NSCheck     `yaml:"namespace_same,omitempty" json:"namespace_same,omitempty"`
	HostnameEquals     *ValueCheck  `yaml:"hostname_equals,omitempty" json:"hostname_equals,omitempty"`
	HostnameUnchanged  *Target      `yaml:"hostname_unchanged,omitempty" json:"hostname_unchanged,omitempty"`
	DomainnameEquals   *ValueCheck  `yaml:"domainname_equals,omitempty" json:"domainname_equals,omitempty"`
	PidInNSEquals      *ValueCheck  `yaml:"pid_in_ns_equals,omitempty" json:"pid_in_ns_equals,omitempty"`
	MountVisible       *MountCheck  `yaml:"mount_visible,omitempty" json:"mount_visible,omitempty"`
	MountAbsent        *MountCheck  `yaml:"mount_absent,omitempty" json:"mount_absent,omitempty"`
	CgroupValue        *CgroupCheck `yaml:"cgroup_value,omitempty" json:"cgroup_value,omitempty"`
	OOMKillHappened    *Target      `yaml:"oom_kill_happened,omitempty" json:"oom_kill_happened,omitempty"`
	ForkRefused        *Target      `yaml:"fork_refused,omitempty" json:"fork_refused,omitempty"`
	Frozen             *Target      `yaml:"frozen,omitempty" json:"frozen,omitempty"`
	FileInUpper        *PathCheck   `yaml:"file_in_upper,omitempty" json:"file_in_upper,omitempty"`
	WhiteoutExists     *PathCheck   `yaml:"whiteout_exists,omitempty" json:"whiteout_exists,omitempty"`
	OpaqueDir          *PathCheck   `yaml:"opaque_dir,omitempty" json:"opaque_dir,omitempty"`
	LinkHasAddress     *LinkCheck   `yaml:"link_has_address,omitempty" json:"link_has_address,omitempty"`
	LinkCount          *CountCheck  `yaml:"link_count,omitempty" json:"link_count,omitempty"`
	UIDMapEquals       *ValueCheck  `yaml:"uid_map_equals,omitempty" json:"uid_map_equals,omitempty"`
	TimeOffset         *TimeCheck   `yaml:"time_offset,omitempty" json:"time_offset,omitempty"`
	IPCObjectVisible   *IPCCheck    `yaml:"ipc_object_visible,omitempty" json:"ipc_object_visible,omitempty"`
	ProcessParent      *ParentCheck `yaml:"process_parent,omitempty" json:"process_parent,omitempty"`
	HTTPBodyContains   *HTTPCheck   `yaml:"http_body_contains,omitempty" json:"http_body_contains,omitempty"`
	ExecOutputContains *ExecCheck   `yaml:"exec_output_contains,omitempty" json:"exec_output_contains,omitempty"`
	FileContains       *FileCheck   `yaml:"file_contains,omitempty" json:"file_contains,omitempty"`
	ProcessRunning     *Target      `yaml:"process_running,omitempty" json:"process_running,omitempty"`
	CPUUsage           *CPUCheck    `yaml:"cpu_usage,omitempty" json:"cpu_usage,omitempty"`
	IOBytes            *IOCheck     `yaml:"io_bytes,omitempty" json:"io_bytes,omitempty"`
	FileUnchanged      *StillCheck  `yaml:"file_unchanged,omitempty" json:"file_unchanged,omitempty"`
	InitSystem         *InitCheck   `yaml:"init_system,omitempty" json:"init_system,omitempty"`
	KernelReleaseSame  *Target      `yaml:"kernel_release_same,omitempty" json:"kernel_release_same,omitempty"`
	ProcessUIDEquals   *UIDCheck    `yaml:"process_uid_equals,omitempty" json:"process_uid_equals,omitempty"`
	FileOwnerEquals    *OwnerCheck  `yaml:"file_owner_equals,omitempty" json:"file_owner_equals,omitempty"`
	CgroupPathEquals   *CgPathCheck `yaml:"cgroup_path_equals,omitempty" json:"cgroup_path_equals,omitempty"`
	UptimeOffset       *UptimeCheck `yaml:"uptime_offset,omitempty" json:"uptime_offset,omitempty"`

	Guard bool `yaml:"guard,omitempty" json:"guard,omitempty"`
	Not   bool `yaml:"not,omitempty" json:"not,omitempty"`
}

// NSCheck compares one namespace kind of two targets (b defaults to host).
type NSCheck struct {
	Kind string `yaml:"kind" json:"kind"` // mnt uts ipc pid net user cgroup time pid_for_children time_for_children
	A    string `yaml:"a" json:"a"`
	B    string `yaml:"b,omitempty" json:"b,omitempty"`
}

// ValueCheck compares one value read in a target with an expected string.
type ValueCheck struct {
	In    string `yaml:"in" json:"in"`
	Value string `yaml:"value" json:"value"`
}

// MountCheck looks for a mount point (and optionally its fs type) in the
// target's mountinfo.
type MountCheck struct {
	In     string `yaml:"in" json:"in"`
	Path   string `yaml:"path" json:"path"`
	FSType string `yaml:"fstype,omitempty" json:"fstype,omitempty"`
}

// CgroupCheck compares one cgroup file of a container (v2 or v1 name; the
// engine reads whichever this host has) with a value.
type CgroupCheck struct {
	In    string `yaml:"in" json:"in"`
	File  string `yaml:"file" json:"file"`                   // memory.max, memory.limit_in_bytes, pids.current, ...
	Key   string `yaml:"key,omitempty" json:"key,omitempty"` // for flat-keyed files (memory.events oom_kill)
	Op    string `yaml:"op" json:"op"`                       // == != <= >= < >  contains
	Value string `yaml:"value" json:"value"`
}

// PathCheck names a path inside a container's (or overlay's) filesystem.
type PathCheck struct {
	In   string `yaml:"in" json:"in"`
	Path string `yaml:"path" json:"path"`
}

// LinkCheck: a link in the target's net namespace carries an address.
type LinkCheck struct {
	In      string `yaml:"in" json:"in"`
	Link    string `yaml:"link,omitempty" json:"link,omitempty"` // name; empty = any link
	Address string `yaml:"address" json:"address"`               // CIDR or bare IP; "any" = any IPv4
}

// CountCheck compares a count with a number.
type CountCheck struct {
	In    string `yaml:"in" json:"in"`
	Op    string `yaml:"op" json:"op"`
	Value int    `yaml:"value" json:"value"`
}

// TimeCheck compares the offset of a clock in the target's time namespace.
type TimeCheck struct {
	In    string        `yaml:"in" json:"in"`
	Clock string        `yaml:"clock" json:"clock"` // monotonic | boottime
	Op    string        `yaml:"op,omitempty" json:"op,omitempty"`
	Value time.Duration `yaml:"value" json:"value"`
}

// IPCCheck: a SysV IPC object of a kind (optionally with a key) is visible
// in the target's ipc namespace.
type IPCCheck struct {
	In   string `yaml:"in" json:"in"`
	Kind string `yaml:"kind" json:"kind"`                   // shm | msg | sem
	Key  string `yaml:"key,omitempty" json:"key,omitempty"` // decimal or 0x hex; empty = any
}

// ParentCheck: the parent of target's process is another target or has a
// given command name. With Ancestor, any process up the PPid chain counts
// (e.g. when a runtime's helper process sits between CLI and container).
type ParentCheck struct {
	Of       string `yaml:"of" json:"of"`
	Parent   string `yaml:"parent,omitempty" json:"parent,omitempty"` // target name
	Comm     string `yaml:"comm,omitempty" json:"comm,omitempty"`
	Ancestor bool   `yaml:"ancestor,omitempty" json:"ancestor,omitempty"`
}

// HTTPCheck does GET http://127.0.0.1:port/path inside the container's net
// namespace and looks for Value in the body.
type HTTPCheck struct {
	In     string `yaml:"in" json:"in"`
	Port   int    `yaml:"port" json:"port"`
	Path   string `yaml:"path,omitempty" json:"path,omitempty"`
	Value  string `yaml:"value" json:"value"`
	Status int    `yaml:"status,omitempty" json:"status,omitempty"`
}

// ExecCheck runs argv in a container and looks for Value in its output.
type ExecCheck struct {
	In      string        `yaml:"in" json:"in"`
	Argv    []string      `yaml:"argv" json:"argv"`
	Value   string        `yaml:"value" json:"value"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// FileContains reads a file inside the target's root and looks for Value.
type FileCheck struct {
	In    string `yaml:"in" json:"in"`
	Path  string `yaml:"path" json:"path"`
	Value string `yaml:"value" json:"value"`
}

// CPUCheck compares a container's CPU use, in CPUs, averaged over Window
// (default 2s): its cgroup's usage counter read twice.
type CPUCheck struct {
	In     string        `yaml:"in" json:"in"`
	Op     string        `yaml:"op" json:"op"`
	Value  float64       `yaml:"value" json:"value"` // CPUs: 0.25 = a quarter of one CPU
	Window time.Duration `yaml:"window,omitempty" json:"window,omitempty"`
}

// IOCheck compares the bytes a container's cgroup read or wrote on the
// disk that holds the containers.
type IOCheck struct {
	In    string `yaml:"in" json:"in"`
	Dir   string `yaml:"dir" json:"dir"` // read | write
	Op    string `yaml:"op" json:"op"`
	Value string `yaml:"value" json:"value"` // a size: 8M
}

// StillCheck passes when a file inside a target reads the same twice,
// For apart (default 1s).
type StillCheck struct {
	In   string        `yaml:"in" json:"in"`
	Path string        `yaml:"path" json:"path"`
	For  time.Duration `yaml:"for,omitempty" json:"for,omitempty"`
}

// InitCheck says what runs this machine as pid 1, from fixed sources only.
type InitCheck struct {
	Value string `yaml:"value" json:"value"` // systemd | other | any
}

// UIDCheck compares the real uid of a target's process, as Reader's user
// namespace sees it (host: ctlab reads /proc/<pid>/status; inside: a
// process in the container reads it).
type UIDCheck struct {
	In     string `yaml:"in" json:"in"`
	Value  int    `yaml:"value" json:"value"`
	Reader string `yaml:"reader,omitempty" json:"reader,omitempty"` // host (default) | inside
}

// OwnerCheck compares the owner of a file inside a target as the host sees it.
type OwnerCheck struct {
	In   string `yaml:"in" json:"in"`
	Path string `yaml:"path" json:"path"`
	UID  int    `yaml:"uid" json:"uid"`
	GID  *int   `yaml:"gid,omitempty" json:"gid,omitempty"`
}

// CgPathCheck compares a target's cgroup path as the host reads it.
type CgPathCheck struct {
	In         string `yaml:"in" json:"in"`
	Value      string `yaml:"value" json:"value"`
	Controller string `yaml:"controller,omitempty" json:"controller,omitempty"` // v1 hierarchy; default memory on v1, the 0:: line on v2
}

// UptimeCheck compares /proc/uptime read inside a target with the host's.
type UptimeCheck struct {
	In        string        `yaml:"in" json:"in"`
	Op        string        `yaml:"op,omitempty" json:"op,omitempty"` // default ==
	Value     time.Duration `yaml:"value" json:"value"`
	Tolerance time.Duration `yaml:"tolerance,omitempty" json:"tolerance,omitempty"` // for ==, default 2s
}

// oneOf returns the YAML key and value of the single non-nil pointer field
// of v (an *Action or *Check); n counts how many were set.
func oneOf(v any) (key string, val any, n int) {
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rv.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		tag := strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]
		n++
		if n == 1 {
			key, val = tag, f.Interface()
		}
	}
	return key, val, n
}

// kindKeys lists the YAML keys of the pointer fields of v's type.
func kindKeys(v any) []string {
	rt := reflect.TypeOf(v).Elem()
	var out []string
	for i := 0; i < rt.NumField(); i++ {
		if rt.Field(i).Type.Kind() == reflect.Pointer {
			out = append(out, strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0])
		}
	}
	return out
}

// Kind is the action's YAML key ("exec", "start", ...).
func (a *Action) Kind() string { k, _, _ := oneOf(a); return k }

// Kind is the check's YAML key ("hostname_equals", ...).
func (c *Check) Kind() string { k, _, _ := oneOf(c); return k }

// String renders the check compactly, in its YAML flow form:
// hostname_equals {in: box, value: ctlab}.
func (c *Check) String() string {
	k, v, _ := oneOf(c)
	s := k + " " + flow(v)
	if c.Not {
		s = "not " + s
	}
	return s
}

// String renders the action compactly, in its YAML flow form.
func (a *Action) String() string {
	k, v, _ := oneOf(a)
	return k + " " + flow(v)
}

// flow renders v as one-line YAML (zero fields are left out).
func flow(v any) string {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return fmt.Sprintf("%+v", deref(v))
	}
	var setFlow func(*yaml.Node)
	setFlow = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
			n.Style = yaml.FlowStyle
		}
		for _, c := range n.Content {
			setFlow(c)
		}
	}
	setFlow(&n)
	b, err := yaml.Marshal(&n)
	if err != nil {
		return fmt.Sprintf("%+v", deref(v))
	}
	return strings.TrimSpace(string(b))
}

func deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return rv.Elem().Interface()
	}
	return v
}
