package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
)

type runOptions struct {
	name, ns, hostname, memory, rootfs, cgroupDriver string
	cpus                                             float64
	pids                                             int64
	ioRead, deviceAllow, deviceDeny, join            []string
	detach, rm, net, timings, self                   bool
	timeOffset                                       time.Duration
}

func newRunCmd() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [flags] -- CMD [ARG...]",
		Short: "Start a command in a new container (new namespaces, cgroup, overlay rootfs)",
		Long: `run starts CMD as the first process of a new container, like docker run:
a re-executed ctlab clones itself into new namespaces, mounts an overlay
root filesystem (the lower layer is the rootfs, the upper one is the
container's own), mounts /proc, /dev and /sys, pivot_roots into it, and
execs CMD. The parent places it in cgroup ctlab/NAME first, so it never
runs a moment outside its limits.

Without -d, run waits and exits with CMD's exit status. With -d it prints
the name and leaves the container running (see ctlab exec, ps, rm).`,
		Example: `  sudo ctlab run -- /bin/sh                         # all 8 namespaces, default rootfs
  sudo ctlab run --ns uts,mnt --hostname box -- hostname
  sudo ctlab run --ns mnt,pid --join net=/proc/PID/ns/net -- ip addr   # another container's network
  sudo ctlab run -d --name web --net -- sleep 1000
  sudo ctlab run --memory 64M -- /.ctlab/ctlab load mem 128M   # OOM-killed: exit 137
  sudo ctlab run --cpus 0.5 --pids 20 --rm -- /.ctlab/ctlab load cpu --seconds 5
  sudo ctlab run --io-read-bps /var/lib/ctlab:5M -- /.ctlab/ctlab load io /var/tmp/f 32M
  sudo ctlab run --device-deny "c 1:5 rwm" -- cat /dev/zero   # /dev/zero refused
  sudo ctlab run --rm --timings -- true                       # time each start phase
  sudo ctlab run --rm --cgroup-driver systemd -- cat /proc/self/cgroup   # in ctlab.slice/ctlab-NAME.scope`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "container name (default: generated)")
	f.BoolVarP(&o.detach, "detach", "d", false, "run in the background and print the name")
	f.BoolVar(&o.rm, "rm", false, "remove the container when it exits")
	f.StringVar(&o.ns, "ns", "all", "namespaces to create: comma list of mnt,uts,ipc,pid,net,user,cgroup,time, or all")
	f.StringArrayVar(&o.join, "join", nil, "join an existing namespace instead of creating one: KIND=PATH, e.g. net=/proc/PID/ns/net (not with a new user namespace)")
	f.StringVar(&o.hostname, "hostname", "", "hostname inside a new uts namespace (default: the name)")
	f.StringVar(&o.memory, "memory", "", "memory limit, e.g. 64M (v2 memory.max, v1 memory.limit_in_bytes)")
	f.Float64Var(&o.cpus, "cpus", 0, "cpu limit in cores, e.g. 0.5 (v2 cpu.max, v1 cpu.cfs_quota_us)")
	f.Int64Var(&o.pids, "pids", 0, "maximum number of processes (pids.max)")
	f.StringArrayVar(&o.ioRead, "io-read-bps", nil, "read rate limit PATH:RATE, e.g. /var/lib/ctlab:5M (v2 io.max, v1 blkio.throttle.read_bps_device)")
	f.StringArrayVar(&o.deviceAllow, "device-allow", nil, `extra device rule to allow, e.g. "c 10:200 rwm"`)
	f.StringArrayVar(&o.deviceDeny, "device-deny", nil, `device rule to deny, e.g. "c 1:5 rwm" (/dev/zero)`)
	f.BoolVar(&o.net, "net", false, "add a veth pair: eth0 inside with 10.213.X.2/30, the host end .1")
	f.StringVar(&o.rootfs, "rootfs", "default", "root filesystem: default, busybox, host, or a directory")
	f.BoolVar(&o.timings, "timings", false, "print how long each start phase took")
	f.BoolVar(&o.self, "mount-ctlab", true, "bind the ctlab binary at /.ctlab/ctlab (load generators)")
	f.StringVar(&o.cgroupDriver, "cgroup-driver", "cgroupfs", "who makes the container's cgroup: cgroupfs (ctlab writes /sys/fs/cgroup/ctlab/NAME, the default), systemd (a transient scope ctlab-NAME.scope in ctlab.slice, over D-Bus; pure v2 with systemd as PID 1), or auto (systemd when PID 1 is systemd on a pure v2 host)")
	f.DurationVar(&o.timeOffset, "time-offset", 0, "shift CLOCK_MONOTONIC and CLOCK_BOOTTIME inside a new time namespace, e.g. 240h")
	return cmd
}

func parseLimits(memory string, cpus float64, pids int64, ioRead, allow, deny []string) (cgroups.Limits, error) {
	var l cgroups.Limits
	if memory != "" {
		n, err := cgroups.ParseSize(memory)
		if err != nil {
			return l, &sandbox.InputError{Problem: fmt.Sprintf("bad --memory %q: %v", memory, err), Fix: "use a size like 64M or 1G"}
		}
		l.MemoryMax = max(n, 0) // "max": no limit
	}
	if cpus < 0 {
		return l, &sandbox.InputError{Problem: "--cpus must be positive", Fix: "e.g. --cpus 0.5"}
	}
	l.CPUs = cpus
	if pids < 0 {
		return l, &sandbox.InputError{Problem: "--pids must be positive", Fix: "e.g. --pids 20"}
	}
	l.PidsMax = pids
	for _, s := range ioRead {
		r, err := cgroups.ParseIORate(s)
		if err != nil {
			return l, &sandbox.InputError{Problem: fmt.Sprintf("bad --io-read-bps %q: %v", s, err), Fix: "use PATH:RATE, e.g. /var/lib/ctlab:5M"}
		}
		l.IOReadBPS = append(l.IOReadBPS, r)
	}
	for _, s := range allow {
		r, err := cgroups.ParseDeviceRule(s)
		if err != nil {
			return l, &sandbox.InputError{Problem: fmt.Sprintf("bad --device-allow %q: %v", s, err), Fix: `use "TYPE MAJOR:MINOR ACCESS", e.g. "c 1:3 rwm"`}
		}
		r.Allow = true
		l.Devices = append(l.Devices, r)
	}
	for _, s := range deny {
		r, err := cgroups.ParseDeviceRule(s)
		if err != nil {
			return l, &sandbox.InputError{Problem: fmt.Sprintf("bad --device-deny %q: %v", s, err), Fix: `use "TYPE MAJOR:MINOR ACCESS", e.g. "c 1:5 rwm"`}
		}
		r.Allow = false
		l.DenyDevices = append(l.DenyDevices, r)
	}
	return l, nil
}

// parseJoin reads --join KIND=PATH values; a joined kind is not created.
func parseJoin(vals []string, nss []sandbox.Namespace) (map[sandbox.Namespace]string, []sandbox.Namespace, error) {
	if len(vals) == 0 {
		return nil, nss, nil
	}
	join := map[sandbox.Namespace]string{}
	for _, v := range vals {
		k, path, ok := strings.Cut(v, "=")
		if ns := sandbox.Namespace(k); ok && ns.Valid() && path != "" {
			join[ns] = path
			continue
		}
		return nil, nil, &sandbox.InputError{Problem: fmt.Sprintf("bad --join %q", v), Fix: "use KIND=PATH, e.g. net=/proc/PID/ns/net"}
	}
	keep := []sandbox.Namespace{} // not nil: nil would mean every kind
	for _, ns := range nss {
		if _, ok := join[ns]; !ok {
			keep = append(keep, ns)
		}
	}
	return join, keep, nil
}

func runRun(cmd *cobra.Command, o *runOptions, args []string) error {
	if o.detach && o.rm {
		// Docker's daemon removes a detached --rm container when it exits;
		// ctlab has no daemon to do that.
		return &sandbox.InputError{Problem: "--rm cannot be combined with -d: no ctlab process stays behind to remove it", Fix: "drop --rm and remove it later with ctlab rm -f NAME"}
	}
	nss, err := sandbox.ParseNamespaces(o.ns)
	if err != nil {
		return &sandbox.InputError{Problem: err.Error()}
	}
	limits, err := parseLimits(o.memory, o.cpus, o.pids, o.ioRead, o.deviceAllow, o.deviceDeny)
	if err != nil {
		return err
	}
	join, nss, err := parseJoin(o.join, nss)
	if err != nil {
		return err
	}
	name := o.name
	if name == "" {
		name = fmt.Sprintf("c%x", time.Now().UnixNano()&0xffffffff)
	}
	cfg := sandbox.Config{
		Name: name, Namespaces: nss, Join: join, Hostname: o.hostname, Rootfs: o.rootfs, Args: args,
		Limits: limits, Net: o.net, MountSelf: o.self, Detach: o.detach, CgroupDriver: o.cgroupDriver,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	}
	if err := applyImage(cmd, &cfg, args); err != nil { // run IMAGE [CMD...] (lifecycle.go)
		return err
	}
	if o.timeOffset != 0 {
		cfg.Time = sandbox.TimeOffsets{Monotonic: o.timeOffset, Boottime: o.timeOffset}
	}
	if o.timings {
		cfg.Timeline = &sandbox.Timeline{}
	}
	// Ctrl-C must not leave a container behind: catch it from here on.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()

	start := time.Now()
	c, err := sandbox.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if o.detach {
		fmt.Fprintln(cmd.OutOrStdout(), c.Name)
		if o.timings {
			fmt.Fprint(cmd.ErrOrStderr(), cfg.Timeline.String())
		}
		return nil
	}
	code, werr := c.Wait(ctx)
	if ctx.Err() != nil {
		// Interrupted: the init of a pid namespace ignores SIGINT unless it
		// has a handler, so end it for the learner.
		c.Kill(syscall.SIGKILL)
		code, _ = c.Wait(context.Background())
		werr = nil
	}
	ran := time.Since(start)
	if o.rm {
		t := time.Now()
		if err := c.Remove(context.Background(), true); err != nil {
			return fmt.Errorf("remove %s: %w", c.Name, err)
		}
		cfg.Timeline.Since("remove", t)
	}
	if o.timings {
		fmt.Fprint(cmd.ErrOrStderr(), cfg.Timeline.String())
		fmt.Fprintf(cmd.ErrOrStderr(), "%-22s %9.3f ms\n", "start+wait (wall)", float64(ran)/1e6)
	}
	if werr != nil {
		return werr
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t'\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
