package lab

import (
	"time"
)

// Scenario is one lesson file, decoded strictly from YAML (see
// docs/scenario-format.md). Field names are the YAML keys.
type Scenario struct {
	ID         string                    `yaml:"id" json:"id"`
	Title      Text                      `yaml:"title" json:"title"`
	Summary    Text                      `yaml:"summary" json:"summary"`
	Chapter    string                    `yaml:"chapter" json:"chapter"`
	Tags       []string                  `yaml:"tags,omitempty" json:"tags,omitempty"`
	Minutes    int                       `yaml:"minutes" json:"minutes"`
	Requires   Requires                  `yaml:"requires" json:"requires"`
	Containers map[string]*ContainerSpec `yaml:"containers" json:"containers"`
	Steps      []*Step                   `yaml:"steps" json:"steps"`
	// Cleanup are host actions run (best effort, trusted runs only) at
	// every reset -- before a run, at its end, on Reset -- for what host
	// commands made outside ctlab's own objects (a runc container, a
	// bundle directory). ctlab's containers need no cleanup entry.
	Cleanup []*Action `yaml:"cleanup,omitempty" json:"cleanup,omitempty"`

	// File is where the scenario was loaded from (for messages), not a YAML key.
	File string `yaml:"-" json:"file,omitempty"`
	// NeedsTrust lists the steps whose actions run commands on the host:
	// they only run with --trust.
	NeedsTrust []string `yaml:"-" json:"needs_trust,omitempty"`
	// ReadsHost lists the steps whose checks read host files
	// (file_contains in: host): a scenario file from disk needs --trust
	// for them too; the built-in ones are part of the binary.
	ReadsHost []string `yaml:"-" json:"reads_host,omitempty"`
	// TrustReasons says why a scenario file needs --trust: each
	// "container NAME: ..." or "step ID: ..." gives it host access
	// (validate.go: containerTrust, actionTrust). The embedded ones are
	// trusted.
	TrustReasons []string `yaml:"-" json:"trust_reasons,omitempty"`
	// Builtin marks a scenario embedded in the binary.
	Builtin bool `yaml:"-" json:"builtin,omitempty"`
}

// Chapters are the lesson groups, in the order the home screen lists them.
var Chapters = []string{"intro", "namespaces", "cgroups", "overlay", "runtimes", "homework"}

// Text is a short string in both languages.
type Text struct {
	EN string `yaml:"en" json:"en"`
	ZH string `yaml:"zh" json:"zh"`
}

// In returns the text in lang, falling back to English.
func (t Text) In(lang string) string {
	if lang == "zh" && t.ZH != "" {
		return t.ZH
	}
	return t.EN
}

// Requires is what the host must offer; Preflight turns every unmet item
// into a readable reason instead of a failure half-way through a lesson.
type Requires struct {
	Root        bool     `yaml:"root" json:"root,omitempty"`
	Kernel      string   `yaml:"kernel,omitempty" json:"kernel,omitempty"` // minimum "X.Y"
	Namespaces  []string `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
	Controllers []string `yaml:"controllers,omitempty" json:"controllers,omitempty"`
	Cgroup      string   `yaml:"cgroup,omitempty" json:"cgroup,omitempty"` // v1, v2 or any
	Overlay     bool     `yaml:"overlay,omitempty" json:"overlay,omitempty"`
	Userns      bool     `yaml:"userns,omitempty" json:"userns,omitempty"`
	Binaries    []string `yaml:"binaries,omitempty" json:"binaries,omitempty"`
	// Systemd: systemd is PID 1 on a pure cgroup v2 host (where ctlab's
	// systemd cgroup driver works).
	Systemd bool `yaml:"systemd,omitempty" json:"systemd,omitempty"`
}

// ContainerSpec is a named container a scenario may start. The running
// container is called "<scenario id>-<key>" so a reset finds everything.
type ContainerSpec struct {
	Namespaces []string `yaml:"namespaces" json:"namespaces"` // kinds, or [all]
	Hostname   string   `yaml:"hostname,omitempty" json:"hostname,omitempty"`
	Rootfs     string   `yaml:"rootfs,omitempty" json:"rootfs,omitempty"` // default | busybox | host
	// CgroupDriver is cgroupfs (default), systemd or auto (sandbox.Config.CgroupDriver).
	CgroupDriver string   `yaml:"cgroup_driver,omitempty" json:"cgroup_driver,omitempty"`
	Command      []string `yaml:"command,omitempty" json:"command,omitempty"`
	Env          []string `yaml:"env,omitempty" json:"env,omitempty"`
	Limits       Limits   `yaml:"limits,omitempty" json:"limits,omitempty"`
	Net          bool     `yaml:"net,omitempty" json:"net,omitempty"`
	MountSelf    bool     `yaml:"mount_self,omitempty" json:"mount_self,omitempty"`
	Time         TimeSpec `yaml:"time,omitempty" json:"time,omitempty"`
	Harden       bool     `yaml:"harden,omitempty" json:"harden,omitempty"`

	name string // key in Containers
}

// Limits are cgroup limits in human units; empty fields are not set.
type Limits struct {
	Memory    string   `yaml:"memory,omitempty" json:"memory,omitempty"`         // bytes: 64M, 1G, max
	CPU       float64  `yaml:"cpu,omitempty" json:"cpu,omitempty"`               // CPUs: 0.5 = 50ms per 100ms
	CPUWeight uint64   `yaml:"cpu_weight,omitempty" json:"cpu_weight,omitempty"` // v2 1-10000 (v1 shares mapped)
	Pids      int64    `yaml:"pids,omitempty" json:"pids,omitempty"`
	ReadBPS   string   `yaml:"read_bps,omitempty" json:"read_bps,omitempty"`         // on the root disk
	WriteBPS  string   `yaml:"write_bps,omitempty" json:"write_bps,omitempty"`       // on the root disk
	Devices   string   `yaml:"devices,omitempty" json:"devices,omitempty"`           // "default" | "deny-all" | "allow-all"
	DenyDev   []string `yaml:"deny_devices,omitempty" json:"deny_devices,omitempty"` // e.g. "c 1:5" (/dev/zero)
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool {
	return l.Memory == "" && l.CPU == 0 && l.CPUWeight == 0 && l.Pids == 0 &&
		l.ReadBPS == "" && l.WriteBPS == "" && l.Devices == "" && len(l.DenyDev) == 0
}

// TimeSpec shifts the clocks of a new time namespace.
type TimeSpec struct {
	Monotonic time.Duration `yaml:"monotonic,omitempty" json:"monotonic,omitempty"`
	Boottime  time.Duration `yaml:"boottime,omitempty" json:"boottime,omitempty"`
}

// Step kinds.
const (
	KindDemo = "demo" // the lab acts (do), the checks confirm
	KindTask = "task" // the learner acts in the container shell; checks polled
)

// Step is one unit of a lesson.
type Step struct {
	ID     string    `yaml:"id" json:"id"`
	Kind   string    `yaml:"kind" json:"kind"`
	Title  Text      `yaml:"title,omitempty" json:"title,omitempty"`
	Text   StepText  `yaml:"text" json:"text"`
	Shell  string    `yaml:"shell,omitempty" json:"shell,omitempty"` // container the learner's shell opens in
	Do     []*Action `yaml:"do,omitempty" json:"do,omitempty"`
	Show   []string  `yaml:"show,omitempty" json:"show,omitempty"`
	Expect []*Check  `yaml:"expect,omitempty" json:"expect,omitempty"`
	Hints  []Text    `yaml:"hints,omitempty" json:"hints,omitempty"`
	Solve  []*Action `yaml:"solve,omitempty" json:"solve,omitempty"`
	// Question is asked before the action runs and answered from the
	// kernel after it (predict, then observe).
	Question *Question `yaml:"question,omitempty" json:"question,omitempty"`
	// Timeout bounds how long a headless run waits for a task (default 10m).
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// StepText is the lesson prose of a step: a content page reference and/or
// inline text per language.
type StepText struct {
	Content string `yaml:"content,omitempty" json:"content,omitempty"` // "namespaces/uts.md#heading"
	EN      string `yaml:"en,omitempty" json:"en,omitempty"`
	ZH      string `yaml:"zh,omitempty" json:"zh,omitempty"`
}

// Panes a step may show (state panes rendered from kstate snapshots).
var Panes = []string{
	"namespaces", "hostname", "processes", "mounts", "cgroup", "overlay",
	"links", "ipc", "ids", "time", "caps",
}
