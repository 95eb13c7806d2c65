package lab

import (
	"slices"
	"strings"
	"testing"
)

// tvUnitSrc proves unit_state on a real scope: it fails before the
// systemd-driver container starts (systemd does not know the scope:
// "inactive dead"), passes while it runs, and "inactive dead" passes only
// once remove has stopped the scope. TestSystemdUnitStateOfScope skips
// where systemd is not PID 1 on pure v2 (.ci/expected-skips: TestSystemd*).
var tvUnitSrc = "id: tv-unit\n" + head + `requires:
  root: true
  systemd: true
containers:
  sd: {namespaces: [mnt, uts, pid], cgroup_driver: systemd, limits: {pids: 50}}
steps:
  - id: start
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: sd}
    expect:
      - unit_state: {in: sd, value: active running}
      - cgroup_path_equals: {in: sd, value: /ctlab.slice/ctlab-tv-unit-sd.scope}
  - id: stop
    kind: demo
    text: {en: x, zh: x}
    do:
      - remove: {in: sd}
    expect:
      - unit_state: {in: sd, value: inactive dead}
`

func TestSystemdUnitStateOfScope(t *testing.T) {
	needRoot(t)
	rep := selfTestInline(t, "tv-unit", tvUnitSrc, false)
	if ev := after(rep, "start", "unit_state"); len(ev) != 1 || ev[0].Actual != "active running" {
		t.Errorf("unit_state evidence %+v", ev)
	}
}

func TestUnitStateValidate(t *testing.T) {
	base := "id: t1\n" + head + `containers:
  box: {namespaces: [mnt, pid]}
steps:
  - id: a
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: box}
    expect:
      - CHECK
`
	for _, tc := range []struct{ check, want string }{
		{"unit_state: {value: active running}", "exactly one of in"},
		{"unit_state: {in: box, unit: cron.service, value: active running}", "exactly one of in"},
		{"unit_state: {unit: cron, value: active running}", `unit "cron"`},
		{"unit_state: {unit: ../x.service, value: active running}", `unit "../x.service"`},
		{"unit_state: {in: nothere, value: active running}", `"nothere" is not host`},
		{"unit_state: {in: box, value: active}", "ActiveState and SubState"},
	} {
		wantErr(t, strings.Replace(base, "CHECK", tc.check, 1), tc.want)
	}
	// a container's own scope is the lab's; any other unit is host state
	s, err := load(t, strings.Replace(base, "CHECK", "unit_state: {in: box, value: active running}", 1))
	if err != nil || len(s.ReadsHost) != 0 {
		t.Fatalf("in: box: err %v, ReadsHost %v", err, s.ReadsHost)
	}
	s, err = load(t, strings.Replace(base, "CHECK", "unit_state: {unit: cron.service, value: active running}", 1))
	if err != nil || !slices.Contains(s.ReadsHost, "a") {
		t.Fatalf("unit: cron.service: err %v, ReadsHost %v", err, s.ReadsHost)
	}
}
