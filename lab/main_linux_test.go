package lab

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
	ctload "github.com/ctlab/ctlab/sandbox/load"
)

// TestMain lets the test binary play the roles of the ctlab binary that
// the sandbox re-executes: container init, and the load generators at
// /.ctlab/ctlab inside containers (the exec helper is the C constructor).
func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(ctload.Main(cliToMain(os.Args[2:])))
	}
	os.Exit(m.Run())
}

// cliToMain turns the `ctlab load` command line that scenarios use
// ("mem 40M --seconds 2") into load.Main's positional form ("mem 41943040 2"),
// since this test binary has no cobra CLI.
func cliToMain(args []string) []string {
	secs := "10" // the CLI's default
	var pos []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--seconds":
			if i+1 < len(args) {
				f, _ := strconv.ParseFloat(args[i+1], 64)
				secs = strconv.Itoa(max(1, int(f+0.5)))
				i++
			}
		case "--threads":
			i++
		default:
			pos = append(pos, args[i])
		}
	}
	if len(pos) == 0 {
		return args
	}
	size := func(s string) string {
		n, err := cgroups.ParseSize(s)
		if err != nil {
			return s
		}
		return fmt.Sprint(n)
	}
	switch pos[0] {
	case "cpu", "sleep":
		return []string{pos[0], secs}
	case "mem":
		if len(pos) > 1 {
			return []string{"mem", size(pos[1]), secs}
		}
	case "io":
		if len(pos) > 2 {
			return []string{"io", pos[1], size(pos[2])}
		}
	case "count":
		if len(pos) > 1 {
			return []string{"count", pos[1], secs}
		}
	}
	return pos
}
