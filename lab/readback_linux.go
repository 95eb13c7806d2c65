package lab

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// Helpers of the checks and actions that read a value twice, or inside a
// target and on the host.

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// containerOf names the scenario container a target lives in: itself, or
// the container a background process was exec'd into.
func (e *Engine) containerOf(target string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.containers[target] != nil {
		return target, nil
	}
	if bp := e.procs[target]; bp != nil && bp.in != "" {
		return bp.in, nil
	}
	return "", fmt.Errorf("%s is not a running container or a process exec'd into one", target)
}

// rateRE finds the rate `ctlab load io` prints: "...: 4.98 MiB/s".
var rateRE = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?) MiB/s`)

// parseRate reads an expect_rate such as "<= 5.5M": an operator and a
// rate in bytes per second, in the size grammar of the CLI and io.max
// (cgroups.ParseSize: k, M, G are powers of 1024; "/s" may follow).
func parseRate(s string) (op string, bps float64, err error) {
	f := strings.Fields(s)
	if len(f) == 1 {
		// "<=5.5M": split the operator off
		for _, o := range []string{"<=", ">=", "==", "!=", "<", ">"} {
			if strings.HasPrefix(f[0], o) {
				f = []string{o, strings.TrimPrefix(f[0], o)}
				break
			}
		}
	}
	bad := fmt.Errorf("%q: want OP RATE, e.g. \"<= 5.5M\" (bytes per second)", s)
	if len(f) != 2 || f[0] == "contains" || !slices.Contains(ops, f[0]) {
		return "", 0, bad
	}
	n, err := cgroups.ParseSize(strings.TrimSuffix(f[1], "/s"))
	if err != nil || n < 0 {
		return "", 0, bad
	}
	return f[0], float64(n), nil
}

// checkRate judges the rate printed by load io against expect_rate.
func checkRate(out, expect string) error {
	op, want, err := parseRate(expect)
	if err != nil {
		return err
	}
	m := rateRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return fmt.Errorf("expect_rate %s: load io printed no rate", expect)
	}
	mib, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
	got := mib * (1 << 20)
	if ok, _ := compareNum(got, op, want); !ok {
		return fmt.Errorf("read at %.2f MiB/s (%.0f bytes/s), want %s (%.0f bytes/s)", mib, got, expect, want)
	}
	return nil
}
