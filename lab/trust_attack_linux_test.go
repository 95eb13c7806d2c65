package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The attack of issue 12: a 20-line scenario file whose container shares
// every namespace but mnt, so its exec step writes to a host file through
// /proc/<host pid>/root. Without --trust it is refused before anything
// runs; the host canary is untouched.
const procRootAttack = `id: t1
chapter: namespaces
title: {en: T, zh: T}
summary: {en: S, zh: S}
minutes: 5
containers:
  box: {namespaces: [NSS]HARDEN}
steps:
  - id: a
    kind: demo
    text: {en: t, zh: t}
    do:
      - start: {container: box}
      - exec: {in: box, argv: [sh, -c, "echo pwned > /proc/PID/root/CANARY; true"]}
    expect:
      - hostname_unchanged: {in: box}
`

func attackFile(nss, harden, canary string) string {
	r := strings.NewReplacer("NSS", nss, "HARDEN", harden, "PID", fmt.Sprint(os.Getpid()), "CANARY", strings.TrimPrefix(canary, "/"))
	return r.Replace(procRootAttack)
}

func TestTrustProcRootAttackRefused(t *testing.T) {
	needRoot(t)
	canary := filepath.Join(t.TempDir(), "canary")
	os.WriteFile(canary, []byte("host\n"), 0o644)
	s, err := load(t, attackFile("mnt", "", canary))
	if err != nil {
		t.Fatal(err)
	}
	var te *TrustError
	if _, err := New(s, Options{}); !errors.As(err, &te) || !strings.Contains(err.Error(), "pid namespace") {
		t.Fatalf("the attack file without --trust: %v, want a TrustError naming the shared pid namespace", err)
	}
	// The same file with the namespaces and hardening an untrusted file
	// must have runs without --trust, and its write lands nowhere on the host.
	s, err = load(t, attackFile("user, mnt, pid, uts", ", harden: true", canary))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.TrustReasons) != 0 {
		t.Fatalf("a safe file needs trust: %v", s.TrustReasons)
	}
	e, err := New(s, Options{Loader: &Loader{Content: testContent}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.Run(ctx, RunOptions{Solve: true}); err != nil {
		t.Fatal(err)
	}
	e.Close(context.Background())
	if b, _ := os.ReadFile(canary); string(b) != "host\n" {
		t.Errorf("host canary changed: %q", b)
	}
	// Control: with --trust (the operator's own decision) the attack file
	// does write the canary, so the refusal above is what protects it.
	s, err = load(t, attackFile("mnt", "", canary))
	if err != nil {
		t.Fatal(err)
	}
	e, err = New(s, Options{Trust: true, Loader: &Loader{Content: testContent}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, RunOptions{Solve: true}); err != nil {
		t.Fatal(err)
	}
	e.Close(context.Background())
	if b, _ := os.ReadFile(canary); string(b) != "pwned\n" {
		t.Errorf("control: the trusted attack file did not reach the canary (%q): the test does not attack", b)
	}
}

// Every route to the host in a container declaration makes the file need
// --trust, with its reason; the embedded scenarios are trusted.
func TestTrustRules(t *testing.T) {
	safe := "namespaces: [user, mnt, pid], harden: true"
	for _, tc := range []struct{ spec, why string }{
		{"namespaces: [mnt, pid], harden: true", "user namespace"},
		{"namespaces: [user, mnt], harden: true", "pid namespace"},
		{"namespaces: [user, mnt, pid]", "not hardened"},
		{safe + ", limits: {devices: allow-all}", "allow-all"},
		{"namespaces: [user, mnt, pid, net], harden: true, net: true", "host listeners"},
		{safe + ", rootfs: host", "rootfs: host"},
	} {
		src := strings.Replace(good, "box: {namespaces: [uts, mnt], hostname: ctlab}", "box: {"+tc.spec+"}", 1)
		src = strings.Replace(src, "hostname_equals: {in: box, value: ctlab}", "hostname_unchanged: {in: box}", 1)
		s, err := load(t, src)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if !strings.Contains(strings.Join(s.TrustReasons, "\n"), tc.why) {
			t.Errorf("%s: reasons %q, want one about %q", tc.spec, s.TrustReasons, tc.why)
		}
		if _, err := New(s, Options{}); err == nil || !strings.Contains(err.Error(), "--trust") {
			t.Errorf("%s: New without trust: %v", tc.spec, err)
		}
		if _, err := New(s, Options{Trust: true}); err != nil {
			t.Errorf("%s: with --trust: %v", tc.spec, err)
		}
		s.Builtin = true
		if _, err := New(s, Options{}); err != nil {
			t.Errorf("%s: embedded: %v", tc.spec, err)
		}
	}
	src := strings.Replace(good, "    solve:\n      - exec: {in: box, argv: [hostname, x]}\n", "    solve:\n      - link: {in: box}\n", 1)
	s, err := load(t, strings.Replace(src, "box: {namespaces: [uts, mnt]", "box: {namespaces: [user, uts, mnt, pid, net], harden: true", 1))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(s.TrustReasons, "\n"), "step b: connects a container to the host's network") {
		t.Errorf("link: reasons %q", s.TrustReasons)
	}
}
