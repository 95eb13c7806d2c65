package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// The scenario vocabulary: every check kind and every action kind is one Go
// type that validates itself and runs itself. A scenario file names a kind
// by its YAML key; the table below maps the key to the type, so the loader,
// the engine, `ctlab scenario vocab` and the reference in
// docs/scenario-format.md all read the same list.
//
// Adding a check:
//  1. write its type in the check_<family>_linux.go file it belongs to: a
//     struct whose yaml/json tags are its keys, with validate (what the
//     type system cannot say: names resolve, paths are absolute, ...) and
//     eval (read the kernel, return Evidence);
//  2. add one line to vocabulary below;
//  3. add a test that it fails before and passes after (see
//     vocab_linux_test.go); then `go generate ./cmd/ctlab` regenerates the
//     reference (TestVocabDocInSync fails until it has).

// checkKind is one kind of check: an assertion about live kernel state.
type checkKind interface {
	// validate reports what is wrong with the check's arguments through
	// v (v.errf, v.target, v.op ...). It may fill in defaults.
	validate(v *validator)
	// eval reads the kernel and says what it found. It never consults
	// what the engine meant to do.
	eval(ctx context.Context, e *Engine) Evidence
}

// actionKind is one kind of action: something the lab does in `do`,
// `solve` or `cleanup`.
type actionKind interface {
	// validate reports what is wrong with the action's arguments and
	// resolves the names it uses and defines (v.running, v.newName).
	validate(v *validator)
	// do performs the action. out is shown to the learner; exit is the
	// exit code of a command, nil for actions that run none.
	do(ctx context.Context, e *Engine) (out string, exit *int, err error)
}

// alwaysGuard marks a check kind that holds before any step by
// definition (a fact of the host, a value recorded at start), so
// `scenario test` does not flag it as unable to fail.
type alwaysGuard interface{ alwaysGuard() }

// implier is a kind that needs something of the host (a controller,
// overlayfs) whether or not the author listed it under requires.
type implier interface{ imply(r *implied) }

// vocabEntry is one row of the vocabulary.
type vocabEntry struct {
	name, role, family, doc string
	typ                     reflect.Type
	newCheck                func() checkKind
	newAction               func() actionKind
}

// chk and act make a row for type T; P (= *T) must implement the kind's
// interface, so a row for a type that cannot run does not compile.
func chk[T any, P interface {
	*T
	checkKind
}](name, family, doc string) vocabEntry {
	return vocabEntry{name: name, role: "check", family: family, doc: doc, typ: reflect.TypeFor[T](),
		newCheck: func() checkKind { return P(new(T)) }}
}

func act[T any, P interface {
	*T
	actionKind
}](name, family, doc string) vocabEntry {
	return vocabEntry{name: name, role: "action", family: family, doc: doc, typ: reflect.TypeFor[T](),
		newAction: func() actionKind { return P(new(T)) }}
}

// vocabulary is the one table of kinds, in the order the reference lists
// them. The doc is the "does" / "reads" column of that reference.
var vocabulary = []vocabEntry{
	act[StartAction]("start", "containers", "start a container declared under `containers`"),
	act[ExecAction]("exec", "containers", "run argv inside (joins all its namespaces and its cgroup). `background: true, as: NAME` keeps it running; NAME is then a check target. `helper_as: NAME2` names the exec helper too: the process that called `setns` and forked NAME, whose `ns/pid` is still the host's while its `ns/pid_for_children` is the container's (setns into a pid namespace moves only children)"),
	act[WriteFile]("write_file", "containers", "write a file inside (through exec, so it lands in the container's mount namespace/upper layer)"),
	act[KillAction]("kill", "containers", "signal the container's init, or a background process (KILL, TERM, INT, HUP, STOP, CONT, USR1, USR2)"),
	act[RemoveAction]("remove", "containers", "remove a container and everything it made"),
	act[SetLimit]("set_limit", "cgroups", "change cgroup limits live (any `limits` keys)"),
	act[FreezeAction]("freeze", "cgroups", "cgroup freezer: stop every process of the container"),
	act[ThawAction]("thaw", "cgroups", "cgroup freezer: let them run again"),
	act[LoadAction]("load", "cgroups", "run a built-in load generator inside (needs `mount_self`; it runs `/.ctlab/ctlab load KIND ...`, the same command as `ctlab load`): `cpu` (`seconds`, `threads`), `mem` (`size`, held `seconds`), `fork` (`count`; exit 3 when refused), `io` (`file` default /var/tmp/ctlab-io, `size`), `count` (`file`, `seconds`), `shm` (`key`, e.g. `\"0x1234\"`: `shmget(KEY, 4096, IPC_CREAT)` and exit — the segment stays in the container's ipc namespace until it dies). `expect_rate: \"<= 5.5M\"` (io only, bytes/s, k/M/G = 1024ⁿ) fails the action unless the rate `load io` prints (`… : 4.98 MiB/s`) satisfies it"),
	act[MountOverlay]("mount_overlay", "overlay", "a stand-alone overlay from inline layers (`lower: [{path: content}, ...]`, bottom first)"),
	act[CommitLayer]("commit_layer", "overlay", "turn an upperdir into a new layer (what `docker commit` / a `RUN` does)"),
	act[WriteBundle]("write_bundle", "overlay", "write an OCI runtime bundle of a running container in `/var/lib/ctlab/lab/<scenario>/<as>/`: `config.json` (runtime-spec 1.0.2, 1.2.0 with a time namespace: its namespaces, uid/gid maps, hostname, `process.args`/`env`, runc's default mounts and capabilities, `linux.resources` from its limits, `linux.cgroupsPath` `/ctlab-runc-<scenario>-<as>`) and `rootfs/`, a bind mount of the container's overlay `merged/` (the same files). `as` is a target for `file_contains` (`path: /config.json`, `/rootfs/etc/passwd`). A reset unmounts and removes it; a runtime's container started from it is the trusted scenario's to remove (`cleanup: runc delete -f ...`)"),
	act[LinkAction]("link", "network", "add a veth pair to a container with a net namespace"),
	act[HostAction]("host", "host", "a host command — **only with `--trust`**. Output is collected until the command exits (plus 2 s for a detached child holding the pipe: still redirect a daemon's output, e.g. `runc run -d ... </dev/null >/dev/null 2>&1`)"),
	act[HostProcess]("host_process", "host", "**only with `--trust`**: read a pid from a file a host command wrote (`runc run --pid-file FILE`), waiting for the file, and name it `as`: a process target for checks and `kill`. A reset forgets it (it does not kill it: that is the scenario's `cleanup`)"),
	act[ImageImport]("image_import", "images", "a base image made offline, as `ctlab image import-packages` does: layer 1 ctlab's default rootfs (busybox), layer 2 the files of the host's installed Debian `packages` (dpkg lists + ELF deps; nginx gets the official image's CMD, EXPOSE 80, STOPSIGNAL). Stored as `<scenario>-<tag>:latest`; a reset removes it"),
	act[BuildAction]("build", "images", "`ctlab build -t <scenario>-<tag> --network none CONTEXT`: the context is `dockerfile` (its text) plus inline `files`, or the files of a directory inside a running container (`context_from: {in, path}`: the learner's own Dockerfile, or files copied out as `docker cp` does, with `dockerfile` then the lab's), written under `/var/lib/ctlab/lab/<scenario>/` (journalled). Each RUN is a ctlab container; the output is the build log. Every step runs (`--no-cache`) unless `cache: true`. FROM names a scenario image by its full name (`<scenario>-<tag>`); a reset removes the image"),
	act[ImageRun]("image_run", "images", "`ctlab run -d IMAGE`: start a `container` declared under `containers` with the image's layers as its overlay lowerdirs and the image's ENTRYPOINT+CMD (unless the container has a `command`), ENV and WORKDIR; its output goes to `/var/lib/ctlab/containers/<scenario>-<container>/log` (what `ctlab logs` reads)"),
	act[ContainerStart]("container_start", "images", "`ctlab start NAME` of an exited container (`in`): its upperdir is committed into a saved layer under the lab directory (whiteouts kept), the old container removed, and a new one started with the same config and that layer stacked over its old lowerdirs: new pid and namespaces, same files"),
	act[ImageTag]("image_tag", "images", "`ctlab tag`: the store's index.json gets a second name (`<scenario>-<as>`) for the same manifest"),
	act[ImageRemove]("image_rm", "images", "`ctlab rmi`: the name leaves the store's index.json (blobs and unpacked layers stay until `ctlab image prune`)"),
	act[RegistryStart]("registry", "images", "start a registry (go-containerregistry's `pkg/registry`, blobs in memory) in ctlab's own process on `127.0.0.1` and a free port, named `as`: `pull` and `push` work offline. A reset stops it"),
	act[ImagePush]("image_push", "images", "`ctlab push --insecure`: a store image to the scenario's `registry` as `127.0.0.1:PORT/<scenario>/<image>:latest` (blobs, then config and manifest)"),
	act[ImagePull]("image_pull", "images", "`ctlab pull --insecure`: manifest, config and layer blobs of `<scenario>/<image>` from the scenario's `registry` into the store, named `<scenario>-<as>`"),
	act[ContainerdStart]("containerd", "runtimes", "start a private containerd (Debian's `containerd`), named `as` (a process target): `config.toml`, root, state and socket under `/var/lib/ctlab/lab/<scenario>/<as>/`, the CRI plugin off; the directory is journalled first, so a reset or `ctlab cleanup` kills every process that names it (the daemon, its shims) and detaches its mounts"),
	act[CtrRun]("ctr_run", "runtimes", "`ctr run -d --runc-binary ctlab-oci`: a scenario `image` (saved as a docker archive, `ctr images import`ed) run in the `containerd` as container id `as`; the runc v2 shim calls ctlab's OCI runtime. `as` names the task's pid (`--pid-file`), `shim_as` its parent. The sandbox container ctlab-oci makes is journalled first"),
	act[CtrExec]("ctr_exec", "runtimes", "`ctr task exec -d --exec-id AS`: argv in the task `in` of the `containerd`, through the same shim; `as` names the one new pid `ctr task ps` lists"),
	act[PodmanRun]("podman_run", "runtimes", "`podman create` + `podman start` of a scenario `image` (`podman load`ed) with `runtime: ctlab` (ctlab-oci, the default) or `runc`; storage under `/var/lib/ctlab/lab/<scenario>/podman/` (journalled like `containerd`'s), `--network none`, `--cgroup-parent /ctlab-podman-<scenario>`, `--ulimit nofile/nproc=1024`. `as` names the container's pid (`State.Pid`), `conmon_as` its parent"),
	act[SleepAction]("sleep", "flow", "wait, e.g. for a load generator"),
	act[WaitForAction]("wait", "flow", "wait until a check passes"),

	chk[NamespaceDiffers]("namespace_differs", "namespaces", "`/proc/<pid>/ns/<kind>` inodes differ; kind also `pid_for_children`, `time_for_children`"),
	chk[NamespaceSame]("namespace_same", "namespaces", "`/proc/<pid>/ns/<kind>` inodes are the same"),
	chk[HostnameEquals]("hostname_equals", "namespaces", "`/proc/sys/kernel/hostname` read after `setns` into the target's uts ns"),
	chk[DomainnameEquals]("domainname_equals", "namespaces", "`/proc/sys/kernel/domainname` read after `setns` into the target's uts ns"),
	chk[HostnameUnchanged]("hostname_unchanged", "namespaces", "the hostname, compared with the value when the scenario started (always a guard)"),
	chk[PidInNSEquals]("pid_in_ns_equals", "namespaces", "last field of `NSpid` in `/proc/<pid>/status`"),
	chk[UIDMapEquals]("uid_map_equals", "namespaces", "`/proc/<pid>/uid_map` (whitespace-normalised)"),
	chk[TimeOffset]("time_offset", "namespaces", "`/proc/<pid>/timens_offsets`"),
	chk[IPCObjectVisible]("ipc_object_visible", "namespaces", "`/proc/sysvipc/<kind>` after `setns` into the target's ipc ns"),
	chk[KernelReleaseSame]("kernel_release_same", "namespaces", "`uname(2)` on the host vs `/proc/sys/kernel/osrelease` read after `setns` into the target's uts namespace: one kernel answers both (a VM would not)"),
	chk[UptimeOffset]("uptime_offset", "namespaces", "first field of `/proc/uptime` read inside the target (`cat /proc/uptime` exec'd into its namespaces, time included) minus ctlab's own; `==` allows `tolerance`"),
	chk[CgroupValue]("cgroup_value", "cgroups", "the cgroup file (v2 or v1 name; the other name is mapped); `key` picks a line of a flat-keyed file (`memory.events oom_kill`); op `== != <= >= < > contains`; sizes like `64M` allowed"),
	chk[OOMKillHappened]("oom_kill_happened", "cgroups", "v2 `memory.events oom_kill` / v1 `memory.oom_control oom_kill`"),
	chk[ForkRefused]("fork_refused", "cgroups", "`pids.events max`"),
	chk[Frozen]("frozen", "cgroups", "v2 `cgroup.freeze` / v1 `freezer.state`"),
	chk[CPUUsage]("cpu_usage", "cgroups", "the container's CPU use in CPUs (0.25 = a quarter of one CPU), averaged over `window`: v2 `cpu.stat usage_usec` / v1 `cpuacct.usage` read twice. The check takes `window` to run"),
	chk[IORate]("io_rate", "cgroups", "bytes per second the container's cgroup read (or wrote) during its last foreground `load io`: the io_bytes counters read before and after the load, over its wall time (so a little below what the program itself measures); `value` a size per second (`6M`). Actual starts with the rate in MiB/s, the number a question compares"),
	chk[IOBytes]("io_bytes", "cgroups", "bytes the container's cgroup moved on the disk that holds the containers (the one `read_bps` throttles): v2 `io.stat` `rbytes=`/`wbytes=`, v1 `blkio.throttle.io_service_bytes` `Read`/`Write` (counted for limited and unlimited groups alike, but since Linux 6.10 only once some group has a throttle limit on that disk: give the container a `read_bps`/`write_bps` limit)"),
	chk[CgroupPathEquals]("cgroup_path_equals", "cgroups", "the target's `/proc/<pid>/cgroup` read by ctlab on the host: the v2 `0::` line (on a v2 host `controller` is ignored), or on v1 the line of `controller` (default `memory`). The kernel prints paths relative to the reader's cgroup namespace, so the host reads `/ctlab/<id>-<name>` where the container reads `/`"),
	chk[UnitState]("unit_state", "cgroups", "a systemd unit's `ActiveState SubState` (the `Active:` line of `systemctl status`), asked of systemd over D-Bus: `in` = the scope of a container started with `cgroup_driver: systemd` (`ctlab-<scenario>-<name>.scope`), or `unit` = any unit by name (host state: a scenario from disk needs `--trust` for it). A unit systemd does not know is `inactive dead`; without systemd as PID 1 the check cannot pass"),
	chk[FileInUpper]("file_in_upper", "overlay", "the upperdir: a copied-up or new file"),
	chk[WhiteoutExists]("whiteout_exists", "overlay", "the upperdir: a whiteout (a 0/0 char device)"),
	chk[OpaqueDir]("opaque_dir", "overlay", "the upperdir: a directory with `trusted.overlay.opaque=y`"),
	chk[ImageExists]("image_exists", "images", "the store's `index.json` names `<scenario>-<image>:latest`"),
	chk[ImageLayerCount]("image_layer_count", "images", "the number of `layers` in the image's manifest (in the store's blobs)"),
	chk[ImageSize]("image_size", "images", "the image's size as `ctlab images` shows it (the sum of its manifest's layer sizes: compressed blobs), compared with a `value` (`10M`) or with another image's (`than`)"),
	chk[LayerHasWhiteout]("layer_has_whiteout", "images", "the tar of a layer blob (`layer` counts from 1 at the bottom; default the top) has the OCI whiteout `.wh.NAME` for `path`: the file is deleted in the image, its bytes still in the layer below"),
	chk[HistoryContains]("history_contains", "images", "some `history[].created_by` in the image's config (what `ctlab history` prints) contains `value`"),
	chk[LogContains]("log_contains", "images", "the log file of a container started by `image_run` (detached, like `ctlab run -d`): its init's stdout and stderr, what `ctlab logs NAME` prints (`/var/lib/ctlab/containers/<scenario>-<in>/log`, first MiB)"),
	chk[RegistryHas]("registry_has", "images", "`HEAD /v2/<scenario>/<image>/manifests/latest` on the scenario's loopback registry answers 200 (the digest it serves is shown)"),
	chk[GradePasses]("grade_passes", "images", "`ctlab grade HOMEWORK IMAGE`: the built-in homework spec's checks run on the image (its files, history, and `serves`: the image's command started in a sandbox) and give every point"),
	chk[LinkHasAddress]("link_has_address", "network", "netlink `RTM_GETADDR` in the target's netns (`any` = any IPv4)"),
	chk[LinkCount]("link_count", "network", "netlink `RTM_GETLINK` in the target's netns"),
	chk[HTTPBodyContains]("http_body_contains", "network", "`GET http://127.0.0.1:PORT/PATH` from a socket made inside the container's netns"),
	chk[MountVisible]("mount_visible", "files", "`/proc/<pid>/mountinfo` has a mount at path (of fstype)"),
	chk[MountAbsent]("mount_absent", "files", "`/proc/<pid>/mountinfo` has no mount at path"),
	chk[FileContains]("file_contains", "files", "the file through `/proc/<pid>/root`, or under an overlay's `merged/`, a layer or a bundle the scenario made (`os.Root`: never escaping it). `in: host` reads a host file: a scenario from disk needs `--trust` for it"),
	chk[FileUnchanged]("file_unchanged", "files", "the file through `/proc/<pid>/root`, read twice `for` apart: passes when both reads are equal (a frozen `load count` does not advance)"),
	chk[FileOwnerEquals]("file_owner_equals", "files", "`lstat` through `/proc/<pid>/root` by ctlab, so the ids are the host's: a file root made in a user-namespaced container is `100000` (the kernel stores the mapped kuid)"),
	chk[ProcessRunning]("process_running", "processes", "`/proc/<pid>` of the container's init or background process"),
	chk[ProcessParent]("process_parent", "processes", "`PPid` in `/proc/<pid>/status`; give `parent` (a target) or `comm` (with `ancestor: true`, anywhere up the PPid chain; the evidence shows the chain). `parent: host` = the ctlab process itself"),
	chk[ProcessAncestry]("process_ancestry", "processes", "the `PPid` chain from `/proc/<pid>/status` up to PID 1: the comm names of the parent, grandparent, ... begin with `chain`; with `daemon` (a `containerd`), one ancestor's `/proc/<pid>/cmdline` names that daemon's socket (`-address`: a shim re-parents itself to PID 1)"),
	chk[OCICallLogged]("oci_call_logged", "processes", "ctlab-oci's call log (`/run/ctlab/oci-calls.log`, one JSON line per call, written by the runtime itself) has a `call` (create, start, exec, ...) naming the OCI id of a `ctr_run`/`ctr_exec`/`podman_run` target and a path in the lesson's lab directory (its `--root`), made since the lab started it, from `caller` (the runtime's parent's comm) when given"),
	chk[ProcessUIDEquals]("process_uid_equals", "processes", "the real uid on the `Uid:` line of the target's `/proc/<pid>/status`; the kernel translates it into the *reader's* user namespace: `host` = ctlab reads it (100000), `inside` = `cat /proc/<pid>/status` run in the container (0)"),
	chk[ExecOutputContains]("exec_output_contains", "processes", "stdout+stderr of argv run inside"),
	chk[InitSystem]("init_system", "processes", "only `/proc/1/comm`, `/proc/1/cgroup` and `lstat /run/systemd/system` (what `sd_booted()` tests): who runs this machine, so no `--trust`. A fact of the host, so always a guard; `any` always passes and shows the evidence"),
}

// lookup finds the row of a kind by role and YAML key.
func lookup(role, name string) *vocabEntry {
	for i := range vocabulary {
		if vocabulary[i].role == role && vocabulary[i].name == name {
			return &vocabulary[i]
		}
	}
	return nil
}

// kindNames lists the keys of one role, in table order.
func kindNames(role string) []string {
	var out []string
	for _, k := range vocabulary {
		if k.role == role {
			out = append(out, k.name)
		}
	}
	return out
}

// Action is one typed thing the lab does (in `do`, `solve` or `cleanup`).
// The YAML form is a one-key mapping such as
//
//   - exec: {in: box, argv: [hostname, learner]}
//
// There is deliberately no free shell on the host: `host` exists only for
// trusted scenarios and the loader lists every step that uses it.
type Action struct {
	kind string
	body actionKind
}

// Check is one typed assertion about live kernel state: a mapping with one
// kind key. Guard marks a check that is expected to hold before the step
// too (e.g. "the host hostname is unchanged"), so `scenario test` does not
// report it as unable to fail. Not inverts the result.
type Check struct {
	kind  string
	body  checkKind
	Guard bool
	Not   bool
}

// Kind is the action's YAML key ("exec", "start", ...).
func (a *Action) Kind() string { return a.kind }

// Kind is the check's YAML key ("hostname_equals", ...).
func (c *Check) Kind() string { return c.kind }

// String renders the check compactly, in its YAML flow form:
// hostname_equals {in: box, value: ctlab}.
func (c *Check) String() string {
	s := c.kind + " " + flow(c.body)
	if c.Not {
		s = "not " + s
	}
	return s
}

// String renders the action compactly, in its YAML flow form.
func (a *Action) String() string { return a.kind + " " + flow(a.body) }

// UnmarshalYAML decodes `{KIND: {...}}` into the registered type of KIND,
// as strictly as the rest of the file: unknown keys and wrong types are
// errors with their line.
func (a *Action) UnmarshalYAML(n *yaml.Node) error {
	row, body, err := decodeKind(n, "action", nil)
	if row != nil {
		a.kind, a.body = row.name, body.(actionKind)
	}
	return err
}

// UnmarshalYAML is Action's, plus the keys guard and not.
func (c *Check) UnmarshalYAML(n *yaml.Node) error {
	row, body, err := decodeKind(n, "check", map[string]*bool{"guard": &c.Guard, "not": &c.Not})
	if row != nil {
		c.kind, c.body = row.name, body.(checkKind)
	}
	return err
}

// decodeKind finds the kind key of mapping n and decodes its value into a
// new value of the registered type (nil row when there is no one kind).
func decodeKind(n *yaml.Node, role string, extra map[string]*bool) (*vocabEntry, any, error) {
	keys, errs := oneKind(n, role, extra)
	if len(errs) > 0 {
		return nil, nil, &yaml.TypeError{Errors: errs}
	}
	row := lookup(role, keys[0].Value)
	var body any
	if row.newCheck != nil {
		body = row.newCheck()
	} else {
		body = row.newAction()
	}
	return row, body, decodeStrict(keys[1], body)
}

// oneKind finds the one kind key of mapping n (and decodes the flags in
// extra); it returns the key and value nodes.
func oneKind(n *yaml.Node, role string, extra map[string]*bool) ([]*yaml.Node, []string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	typ := strings.ToUpper(role[:1]) + role[1:]
	if n.Kind != yaml.MappingNode {
		return nil, []string{fmt.Sprintf("line %d: cannot unmarshal %s `%s` into lab.%s", n.Line, n.ShortTag(), n.Value, typ)}
	}
	var kind []*yaml.Node
	var errs []string
	found := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if p, ok := extra[k.Value]; ok {
			if err := val.Decode(p); err != nil {
				errs = append(errs, typeErrs(err)...)
			}
			continue
		}
		if lookup(role, k.Value) == nil {
			errs = append(errs, fmt.Sprintf("line %d: field %s not found in type lab.%s", k.Line, k.Value, typ))
			continue
		}
		found++
		if found == 1 {
			kind = []*yaml.Node{k, val}
		}
	}
	if found != 1 && len(errs) == 0 {
		errs = append(errs, fmt.Sprintf("line %d: a%s %s is a mapping with exactly one of: %s (found %d)", n.Line,
			map[bool]string{true: "n"}[role == "action"], role, strings.Join(kindNames(role), ", "), found))
	}
	return kind, errs
}

// decodeStrict decodes n into v (a pointer to a kind's struct) rejecting
// keys the struct does not have -- what KnownFields does for the whole
// file, which yaml.v3's Node.Decode does not carry into custom unmarshalers.
func decodeStrict(n *yaml.Node, v any) error {
	errs := unknownKeys(n, reflect.TypeOf(v))
	if err := n.Decode(v); err != nil {
		errs = append(errs, typeErrs(err)...)
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

func typeErrs(err error) []string {
	if te, ok := err.(*yaml.TypeError); ok {
		return te.Errors
	}
	return []string{err.Error()}
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// unknownKeys lists the keys of mapping n that struct type t (or a struct
// nested in it) does not have, as yaml.v3 words them.
func unknownKeys(n *yaml.Node, t reflect.Type) []string {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	fields := map[string]reflect.Type{}
	yamlFields(t, func(name string, f reflect.StructField) { fields[name] = f.Type })
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.ShortTag() == "!!merge" { // "<<: *anchor" brings the anchor's keys
			m := n.Content[i+1]
			for m.Kind == yaml.AliasNode && m.Alias != nil {
				m = m.Alias
			}
			for _, x := range append([]*yaml.Node{m}, m.Content...) {
				if x.Kind == yaml.MappingNode || x.Kind == yaml.AliasNode {
					errs = append(errs, unknownKeys(x, t)...)
				}
			}
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			errs = append(errs, fmt.Sprintf("line %d: field %s not found in type %s", k.Line, k.Value, t.String()))
			continue
		}
		errs = append(errs, unknownKeys(n.Content[i+1], ft)...)
	}
	return errs
}

// yamlFields calls fn for each YAML key of struct t, inline fields expanded.
func yamlFields(t reflect.Type, fn func(name string, f reflect.StructField)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			yamlFields(f.Type, fn)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fn(name, f)
	}
}

// MarshalJSON keeps the one-key form: {"exec": {...}}.
func (a *Action) MarshalJSON() ([]byte, error) {
	return kindJSON(a.kind, a.body, false, false)
}

// MarshalJSON: {"hostname_equals": {...}, "guard": true, "not": true}.
func (c *Check) MarshalJSON() ([]byte, error) {
	return kindJSON(c.kind, c.body, c.Guard, c.Not)
}

func kindJSON(kind string, body any, guard, not bool) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	k, _ := json.Marshal(kind)
	fmt.Fprintf(&out, "{%s:%s", k, b)
	if guard {
		out.WriteString(`,"guard":true`)
	}
	if not {
		out.WriteString(`,"not":true`)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// MarshalYAML writes the one-key form back.
func (a *Action) MarshalYAML() (any, error) { return kindYAML(a.kind, a.body, false, false) }

// MarshalYAML writes the one-key form back, then guard and not.
func (c *Check) MarshalYAML() (any, error) { return kindYAML(c.kind, c.body, c.Guard, c.Not) }

// kindYAML builds the mapping in key order: the kind, guard, not.
func kindYAML(kind string, body any, guard, not bool) (*yaml.Node, error) {
	var val yaml.Node
	if err := val.Encode(body); err != nil {
		return nil, err
	}
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kind}, &val)
	for _, f := range []struct {
		key string
		on  bool
	}{{"guard", guard}, {"not", not}} {
		if f.on {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.key},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		}
	}
	return n, nil
}

// flow renders v as one-line YAML (zero fields are left out).
func flow(v any) string {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return fmt.Sprintf("%+v", v)
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
		return fmt.Sprintf("%+v", v)
	}
	return strings.TrimSpace(string(b))
}
