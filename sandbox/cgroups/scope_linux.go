package cgroups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Scope is a transient systemd scope unit and the slice it is in: runc's
// --systemd-cgroup form of cgroupsPath, "slice:prefix:name", names the
// scope prefix-name.scope in slice (system.slice when empty).
type Scope struct {
	Slice, Unit string
}

// ctlabScope is the systemd driver's own scope of container name.
func ctlabScope(name string) Scope { return Scope{Slice: SystemdSlice, Unit: ScopeUnit(name)} }

// unitPart is compiled on first use, not in every process's init.
var unitPart = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.@-]*$`) })

// ParseScope reads runc's "slice:prefix:name" and checks that each part can
// only name a unit (no "/", no ".." path).
func ParseScope(p string) (Scope, error) {
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return Scope{}, fmt.Errorf("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got %q instead", p)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	for _, s := range parts {
		if !unitPart().MatchString(s) || strings.Contains(s, "..") {
			return Scope{}, fmt.Errorf("cgroupsPath %q: %q is not a valid part of a unit name", p, s)
		}
	}
	if name == "" || strings.HasSuffix(name, ".slice") {
		return Scope{}, fmt.Errorf("cgroupsPath %q: the name must be a scope's, not empty or a slice", p)
	}
	if slice == "" {
		slice = "system.slice"
	}
	unit := name + ".scope"
	if prefix != "" {
		unit = prefix + "-" + unit
	}
	sc := Scope{Slice: slice, Unit: unit}
	if _, err := sc.Dir(); err != nil {
		return Scope{}, err
	}
	return sc, nil
}

// Dir is the scope's directory: the slice expanded as systemd does
// ("a-b.slice" is /a.slice/a-b.slice).
func (sc Scope) Dir() (string, error) {
	s, ok := strings.CutSuffix(sc.Slice, ".slice")
	if !ok || strings.Contains(sc.Slice, "/") || strings.Contains(sc.Unit, "/") || !strings.HasSuffix(sc.Unit, ".scope") {
		return "", fmt.Errorf("scope %s in %s: not a slice and a scope", sc.Unit, sc.Slice)
	}
	if sc.Slice == "-.slice" {
		return filepath.Join(unifiedRoot, sc.Unit), nil
	}
	if s == "" || strings.HasPrefix(s, "-") || strings.HasSuffix(s, "-") || strings.Contains(s, "--") {
		return "", fmt.Errorf("slice %q is not a valid slice name", sc.Slice)
	}
	dir, prefix := unifiedRoot, ""
	for _, part := range strings.Split(s, "-") {
		dir = filepath.Join(dir, prefix+part+".slice")
		prefix += part + "-"
	}
	return filepath.Join(dir, sc.Unit), nil
}

// RemoveScope kills what is left in scope sc and stops it (systemd then
// removes its cgroup), also after ctlab itself was killed: killing first,
// because a stop sends SIGTERM, which a container's PID 1 ignores. A scope
// that is gone is fine.
func RemoveScope(ctx context.Context, name string, sc Scope) error {
	c, err := OpenScope(name, sc)
	if errors.Is(err, os.ErrNotExist) {
		return StopUnit(ctx, sc.Unit) // a failed unit may still be loaded
	}
	if err == nil {
		err = c.Delete(ctx)
	}
	if dir, derr := sc.Dir(); err != nil && derr == nil && !exists(dir) {
		return StopUnit(ctx, sc.Unit) // it emptied and systemd removed it meanwhile
	}
	return err
}
