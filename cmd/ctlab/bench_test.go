package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/rootfs"
)

// ctl runs this test binary as ctlab.
func ctl(args ...string) *exec.Cmd {
	return exec.Command(os.Args[0], append([]string{"ctlab"}, args...)...)
}

var (
	installOnce sync.Once
	installDir  string
	installErr  error
)

// installed builds ctlab and ctlab-init the way `make build` does (static,
// ctlab-init with musl where installed) into one directory, once per test
// binary, and returns that directory: what a learner installs, so
// benchmarks measure the real layout.
func installed(tb testing.TB) string {
	tb.Helper()
	installOnce.Do(func() {
		installDir, installErr = os.MkdirTemp("", "ctlab-installed-")
		if installErr != nil {
			return
		}
		for _, pkg := range []string{"ctlab", "ctlab-init"} {
			cmd := exec.Command("go", "build", "-tags", "netgo,osusergo",
				"-ldflags", `-linkmode external -extldflags "-static"`, "-o", filepath.Join(installDir, pkg), "../"+pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
			if cc, err := exec.LookPath("musl-gcc"); err == nil && pkg == "ctlab-init" {
				cmd.Env = append(cmd.Env, "CC="+cc) // as make build links it
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				installErr = fmt.Errorf("build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if installErr != nil {
		tb.Fatal(installErr)
	}
	return installDir
}

// bin runs the installed ctlab.
func bin(tb testing.TB, args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(installed(tb), "ctlab"), args...)
}

func timed(b *testing.B, cmd *exec.Cmd) time.Duration {
	b.Helper()
	t := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	return time.Since(t)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// runcBundle writes an OCI bundle whose root is the same cached rootfs
// ctlab uses, with runc's default namespaces (pid, net, ipc, uts, mnt).
func runcBundle(b *testing.B, args []string) string {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skipf("needs root (euid %d)", os.Geteuid())
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		b.Skipf("runc is not installed (apt-get install runc): %v", err)
	}
	root, err := rootfs.Ensure(b.Context(), "default", "/var/lib/ctlab/rootfs", rootfs.Owner{})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if out, err := exec.Command(runc, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		b.Fatalf("runc spec: %v %s", err, out)
	}
	p := filepath.Join(dir, "config.json")
	var spec map[string]any
	raw, _ := os.ReadFile(p)
	if err := json.Unmarshal(raw, &spec); err != nil {
		b.Fatal(err)
	}
	spec["root"] = map[string]any{"path": root, "readonly": true}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = args
	raw, _ = json.Marshal(spec)
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkStartVsRunc measures `ctlab run --rm -- true` (all eight
// namespaces, cgroup, overlay, pivot_root) and the same with runc's five
// namespaces, against `runc run` of a bundle with the same rootfs,
// interleaved in one run. Goal: ctlab's median at most half of runc's.
func BenchmarkStartVsRunc(b *testing.B) {
	bundle := runcBundle(b, []string{"true"})
	var all, five, rc []time.Duration
	for i := 0; i < b.N; i++ {
		all = append(all, timed(b, bin(b, "run", "--rm", "--", "true")))
		five = append(five, timed(b, bin(b, "run", "--rm", "--ns", "mnt,uts,ipc,pid,net", "--", "true")))
		rc = append(rc, timed(b, exec.Command("runc", "run", "--bundle", bundle, fmt.Sprintf("ctlab-bench-%d-%d", os.Getpid(), i))))
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	b.ReportMetric(ms(median(all)), "ctlab-all-ms")
	b.ReportMetric(ms(median(five)), "ctlab-5ns-ms")
	b.ReportMetric(ms(median(rc)), "runc-ms")
	b.ReportMetric(ms(median(all))/ms(median(rc)), "ratio-all/runc")
	b.ReportMetric(ms(median(five))/ms(median(rc)), "ratio-5ns/runc")
	b.Logf("median start: ctlab (8 ns) %.1f ms, ctlab (runc's 5 ns) %.1f ms, runc %.1f ms: ratio %.2f / %.2f (goal <= 0.5)",
		ms(median(all)), ms(median(five)), ms(median(rc)), ms(median(all))/ms(median(rc)), ms(median(five))/ms(median(rc)))
}

// BenchmarkExecVsRuncNsenter measures `ctlab exec NAME -- true` against
// `runc exec ID true` and `nsenter -t PID -a true` on running containers.
func BenchmarkExecVsRuncNsenter(b *testing.B) {
	bundle := runcBundle(b, []string{"sleep", "600"})
	name := fmt.Sprintf("bx%d", os.Getpid())
	if out, err := bin(b, "run", "-d", "--name", name, "--", "sleep", "600").CombinedOutput(); err != nil {
		b.Fatalf("start: %v %s", err, out)
	}
	defer bin(b, "rm", "-f", name).Run()
	rid := fmt.Sprintf("ctlab-bench-x%d", os.Getpid())
	// Not CombinedOutput: the detached container inherits runc's stdio and
	// would hold the pipe open for its whole life.
	if err := exec.Command("runc", "run", "-d", "--bundle", bundle, rid).Run(); err != nil {
		b.Fatalf("runc run -d: %v", err)
	}
	defer exec.Command("runc", "delete", "-f", rid).Run()
	out, err := bin(b, "inspect", "--json", name).Output()
	if err != nil {
		b.Fatal(err)
	}
	var in struct{ Pid int }
	json.Unmarshal(out, &in)
	var ce, re, ne []time.Duration
	for i := 0; i < b.N; i++ {
		ce = append(ce, timed(b, bin(b, "exec", name, "--", "true")))
		re = append(re, timed(b, exec.Command("runc", "exec", rid, "true")))
		// nsenter -a joins every namespace of the target, like ctlab exec.
		ne = append(ne, timed(b, exec.Command("nsenter", "-t", fmt.Sprint(in.Pid), "-a", "true")))
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	b.ReportMetric(ms(median(ce)), "ctlab-exec-ms")
	b.ReportMetric(ms(median(re)), "runc-exec-ms")
	b.ReportMetric(ms(median(ne)), "nsenter-ms")
	b.Logf("median exec: ctlab %.1f ms, runc exec %.1f ms, nsenter -a %.1f ms", ms(median(ce)), ms(median(re)), ms(median(ne)))
}
