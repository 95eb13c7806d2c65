package lab

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// UnitState compares a systemd unit's "ActiveState SubState" (what
// `systemctl status` prints on its Active: line) with a value. The unit is
// a container's scope (in: the container started with cgroup_driver
// systemd, ctlab-<scenario>-<name>.scope) or any unit by name.
type UnitState struct {
	In    string `yaml:"in,omitempty" json:"in,omitempty"`
	Unit  string `yaml:"unit,omitempty" json:"unit,omitempty"`
	Value string `yaml:"value" json:"value" vocab:"\"active running\", \"inactive dead\", ..."`
}

// unitNameRE is systemd's unit name alphabet with a known unit type suffix.
var unitNameRE = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]{1,240}\.(service|scope|slice|socket|target|timer|mount|path|swap|device|automount)$`)

func (t *UnitState) validate(v *validator) {
	switch {
	case (t.In == "") == (t.Unit == ""):
		v.errf("give exactly one of in (a container) and unit (a unit name)")
	case t.In != "":
		v.target(t.In, "container")
	case !unitNameRE.MatchString(t.Unit):
		v.errf("unit %q: want a unit name such as cron.service", t.Unit)
	case !slices.Contains(v.s.ReadsHost, v.step):
		// the state of a host unit is host state, as a host file is
		v.s.ReadsHost = append(v.s.ReadsHost, v.step)
	}
	if len(strings.Fields(t.Value)) != 2 {
		v.errf("value %q: want ActiveState and SubState, such as \"active running\"", t.Value)
	}
}

// eval asks systemd over D-Bus (org.freedesktop.systemd1 Unit properties).
// A unit systemd does not know reads "inactive dead", as systemctl shows it.
func (t *UnitState) eval(ctx context.Context, e *Engine) Evidence {
	unit, target := t.Unit, "host"
	if t.In != "" {
		unit, target = cgroups.ScopeUnit(e.ContainerName(t.In)), t.In
	}
	ev := Evidence{Target: target, Source: "systemd D-Bus: " + unit + " ActiveState SubState",
		Expected: strings.Join(strings.Fields(t.Value), " ")}
	if !cgroups.SystemdRunning() {
		ev.Actual, ev.Err = "(unreadable)", "systemd is not PID 1 here: no units to ask about"
		return ev
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := cgroups.UnitState(ctx, unit)
	if err != nil {
		ev.Actual, ev.Err = "(unreadable)", fmt.Sprintf("unit_state: %v", err)
		return ev
	}
	ev.Actual, ev.Pass = st, st == ev.Expected
	return ev
}
