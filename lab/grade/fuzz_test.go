package grade

import (
	"strings"
	"testing"
	"time"

	"github.com/ctlab/ctlab/scenarios/homework"
)

// FuzzParseSpec: no input makes the spec loader panic or hang
// (security-checklist §5: aliases, deep nesting, unknown keys).
//
//	go test ./lab/grade/ -run '^$' -fuzz FuzzParseSpec -fuzztime 60s
func FuzzParseSpec(f *testing.F) {
	hw, err := homework.Open("nginx-hello")
	if err != nil {
		f.Fatal(err)
	}
	var sb strings.Builder
	buf := make([]byte, 64<<10)
	n, _ := hw.Read(buf)
	sb.Write(buf[:n])
	hw.Close()
	f.Add(sb.String())
	f.Add("id: x\ncriteria: [{id: a, title: {en: A}, checks: [{serves: {port: 80}}]}]\n")
	f.Add("a: &a [1]\nb: *a\n")
	f.Add(strings.Repeat("[", 5000))
	f.Fuzz(func(t *testing.T, y string) {
		start := time.Now()
		s, err := ParseSpec(strings.NewReader(y))
		if err == nil {
			if verr := s.Validate(); verr != nil {
				t.Fatalf("ParseSpec accepted an invalid spec: %v", verr)
			}
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("ParseSpec took %s", time.Since(start))
		}
	})
}
