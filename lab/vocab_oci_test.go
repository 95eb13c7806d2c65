package lab

import (
	"strings"
	"testing"
)

// TestOCIVocabValidates: the OCI-runtime vocabulary resolves its names,
// rejects what it cannot run, and makes a scenario file need --trust (it
// runs containerd, ctr and podman as root on the host).
func TestOCIVocabValidates(t *testing.T) {
	src := `id: t1
chapter: runtimes
title: {en: T, zh: T}
summary: {en: S, zh: S}
minutes: 5
steps:
  - id: a
    kind: demo
    text: {en: x, zh: x}
    do:
      - image_import: {tag: base}
      - containerd: {as: cd}
      - ctr_run: {containerd: cd, image: base, as: web, argv: [sleep, "60"], shim_as: shim}
      - ctr_exec: {containerd: cd, in: web, as: extra, argv: [sleep, "30"]}
      - podman_run: {image: base, as: pod, argv: [sleep, "60"], runtime: runc, conmon_as: conmon}
    expect:
      - process_ancestry: {of: web, chain: [containerd-shim], daemon: cd}
      - oci_call_logged: {of: extra, call: exec, caller: containerd-shim}
`
	s, err := load(t, src)
	if err != nil {
		t.Fatal(err)
	}
	reasons := strings.Join(s.TrustReasons, "\n")
	for _, want := range []string{"step a: starts a containerd daemon", "step a: runs host podman"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("trust reasons lack %q:\n%s", want, reasons)
		}
	}
	if len(s.NeedsTrust) != 0 {
		t.Errorf("typed actions, not host commands: a built-in lesson runs them without --trust; NeedsTrust = %v", s.NeedsTrust)
	}
	for _, c := range []struct{ from, to, want string }{
		{"containerd: {as: cd}", "containerd: {as: Cd}", `as "Cd": want a new lower-case name`},
		{"image: base, as: web", "image: nope, as: web", `"nope" is not host or a container`},
		{`as: web, argv: [sleep, "60"]`, `as: web, argv: []`, "argv must name a command"},
		{"in: web, as: extra", "in: web, as: \"\"", "needs as (the exec id"},
		{"runtime: runc", "runtime: crun", `runtime "crun": want ctlab or runc`},
		{"chain: [containerd-shim]", "chain: []", "chain: want the comm names"},
		{"call: exec", "call: run", `call "run": want a runtime subcommand`},
		{"daemon: cd}", "daemon: base}", `"base" is a image; want a process`},
	} {
		bad := strings.Replace(src, c.from, c.to, 1)
		if bad == src {
			t.Fatalf("%q not in the test scenario", c.from)
		}
		wantErr(t, bad, c.want)
	}
}
