package cgroups

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Unlimited is what ParseSize returns for "max": no limit (the word cgroup
// v2 limit files use).
const Unlimited int64 = -1

// ParseSize parses a byte size, the one grammar for sizes on the command
// line and in scenario YAML: plain bytes ("1048576"), a number with a K, M,
// G or T suffix in powers of 1024 ("512k", "64M", "1.5G"; "MB"/"MiB" mean
// the same), or "max", which returns Unlimited (-1). It refuses empty,
// negative and overflowing sizes.
func ParseSize(s string) (int64, error) {
	if strings.TrimSpace(s) == "max" {
		return Unlimited, nil
	}
	v, err := parseUnits(s)
	if err != nil {
		return 0, err
	}
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(v), nil
}

func parseUnits(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("size %q: empty", s)
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("size %q: negative", s)
	}
	upper := strings.ToUpper(t)
	upper = strings.TrimSuffix(upper, "B")
	upper = strings.TrimSuffix(upper, "I")
	mult := uint64(1)
	if n := len(upper); n > 0 {
		switch upper[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			upper = upper[:n-1]
		}
	}
	if upper == "" {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	if n, err := strconv.ParseUint(upper, 10, 64); err == nil {
		if n > math.MaxUint64/mult {
			return 0, fmt.Errorf("size %q: too large", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(upper, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("size %q: want a number with an optional K, M, G or T suffix (powers of 1024)", s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return uint64(v), nil
}

// ParseDeviceRule parses a device rule in the v1 devices.allow syntax:
// "c 1:3 rwm", "c 1:* rw", "b 8:0 r", or just "a" (every device). The access
// defaults to "rwm". The result has Allow=true (it is used by --device-allow);
// callers flip it for deny lists.
func ParseDeviceRule(s string) (DeviceRule, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 3 {
		return DeviceRule{}, fmt.Errorf("device rule %q: want \"TYPE [MAJOR:MINOR] [ACCESS]\", e.g. \"c 1:3 rwm\" or \"a\"", s)
	}
	r := DeviceRule{Allow: true, Major: -1, Minor: -1, Access: "rwm"}
	if len(f[0]) != 1 || !strings.Contains("acb", f[0]) {
		return DeviceRule{}, fmt.Errorf("device rule %q: type %q must be a (all), c (char) or b (block)", s, f[0])
	}
	r.Type = f[0][0]
	rest := f[1:]
	if len(rest) > 0 && strings.Contains(rest[0], ":") {
		maj, min, _ := strings.Cut(rest[0], ":")
		var err error
		if r.Major, err = parseDevNum(maj); err != nil {
			return DeviceRule{}, fmt.Errorf("device rule %q: major: %w", s, err)
		}
		if r.Minor, err = parseDevNum(min); err != nil {
			return DeviceRule{}, fmt.Errorf("device rule %q: minor: %w", s, err)
		}
		rest = rest[1:]
	} else if r.Type != 'a' && len(rest) > 0 {
		return DeviceRule{}, fmt.Errorf("device rule %q: want MAJOR:MINOR before the access", s)
	}
	if len(rest) > 1 {
		return DeviceRule{}, fmt.Errorf("device rule %q: too many fields", s)
	}
	if len(rest) == 1 {
		if err := checkAccess(rest[0]); err != nil {
			return DeviceRule{}, fmt.Errorf("device rule %q: %w", s, err)
		}
		r.Access = rest[0]
	}
	return r, nil
}

func parseDevNum(s string) (int64, error) {
	if s == "*" {
		return -1, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number or *", s)
	}
	return int64(n), nil
}

func checkAccess(a string) error {
	if a == "" {
		return fmt.Errorf("empty access")
	}
	seen := map[rune]bool{}
	for _, c := range a {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return fmt.Errorf("access %q must be a subset of \"rwm\"", a)
		}
		seen[c] = true
	}
	return nil
}
