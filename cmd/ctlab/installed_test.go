package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Installed side by side, ctlab starts containers through ctlab-init: the
// waiter left by the init's C stage is that binary, and the container
// works as with the fallback.
func TestInstalledLayoutUsesCtlabInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("needs root (euid %d)", os.Geteuid())
	}
	name := fmt.Sprintf("inst%d", os.Getpid())
	if out, err := bin(t, "run", "-d", "--name", name, "--", "sleep", "60").CombinedOutput(); err != nil {
		t.Fatalf("run: %v %s", err, out)
	}
	defer bin(t, "rm", "-f", name).Run()
	out, err := bin(t, "inspect", "--json", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	var in struct{ Pid int }
	if err := json.Unmarshal(out, &in); err != nil || in.Pid == 0 {
		t.Fatalf("inspect: %v %s", err, out)
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", in.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var ppid string
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			ppid = strings.TrimSpace(v)
		}
	}
	exe, err := os.Readlink("/proc/" + ppid + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(installed(t), "ctlab-init"); exe != want {
		t.Errorf("the container's waiter runs %s, want %s", exe, want)
	}
	if out, err := bin(t, "exec", name, "--", "hostname").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != name {
		t.Errorf("exec hostname: %v %q", err, out)
	}
}
