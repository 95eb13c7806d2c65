package lab

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// WriteJUnit writes scenario self-test reports as JUnit XML (one test
// suite per scenario, one test case per step), for CI systems.
func WriteJUnit(w io.Writer, reps []*TestReport) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type skipped struct {
		Message string `xml:"message,attr"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      float64  `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		Skipped   *skipped `xml:"skipped,omitempty"`
	}
	type suite struct {
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Skipped  int        `xml:"skipped,attr"`
		Time     float64    `xml:"time,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	type suites struct {
		XMLName xml.Name `xml:"testsuites"`
		Suites  []suite  `xml:"testsuite"`
	}
	var out suites
	for _, r := range reps {
		s := suite{Name: "scenario/" + r.Scenario, Time: r.Duration.Seconds()}
		if len(r.Skipped) > 0 {
			s.Cases = append(s.Cases, testcase{Name: "preflight", Classname: r.Scenario, Skipped: &skipped{Message: strings.Join(r.Skipped, "; ")}})
			s.Skipped++
		}
		for _, st := range r.Steps {
			tc := testcase{Name: st.ID, Classname: r.Scenario}
			if len(st.Defects) > 0 {
				tc.Failure = &failure{Message: st.Defects[0], Text: strings.Join(st.Defects, "\n")}
				s.Failures++
			}
			s.Cases = append(s.Cases, tc)
		}
		var extra []string
		for _, l := range r.Leaks {
			extra = append(extra, "left behind: "+l)
		}
		if r.Err != "" {
			extra = append(extra, r.Err)
		}
		if len(extra) > 0 {
			s.Cases = append(s.Cases, testcase{Name: "reset", Classname: r.Scenario, Failure: &failure{Message: extra[0], Text: strings.Join(extra, "\n")}})
			s.Failures++
		}
		s.Tests = len(s.Cases)
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
