package grade

import (
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// WriteText writes the readable report: one block per image.
func WriteText(w io.Writer, spec *Spec, results []*Result, lang string) error {
	tr := func(en, zh string) string {
		if lang == "zh" {
			return zh
		}
		return en
	}
	mark := map[Status]string{Pass: "PASS", Fail: "FAIL", Error: "ERROR"}
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s — %s\n", spec.Title.In(lang), sanitize(r.Image))
		if r.Info != nil {
			fmt.Fprintf(w, tr("  image %s (%s), %d layers, %s stored, %s unpacked\n", "  镜像 %s（%s），%d 层，存储 %s，解包后 %s\n"),
				r.Info.Digest, r.Info.Format, len(r.Info.Layers), human(r.Info.Size), human(r.Info.Unpacked))
		}
		if r.Status == Error && r.Message != "" {
			fmt.Fprintf(w, "  %s: %s\n", tr("error", "错误"), sanitize(r.Message))
		}
		for _, c := range r.Criteria {
			sym := map[Status]string{Pass: "✔", Fail: "✘", Error: "!"}[c.Status]
			pts := fmt.Sprintf("%d/%d", c.Points, c.MaxPoints)
			if c.Informative {
				sym, pts = "i", tr("info", "信息")
			}
			fmt.Fprintf(w, "  %s %d. %-44s %s\n", sym, c.TaskID, sanitize(c.Title), pts)
			if c.Message != "" && c.Status != Pass || c.Informative && c.Message != "" {
				fmt.Fprintf(w, "      %s\n", sanitize(c.Message))
			}
			for _, e := range c.Evidence {
				for _, line := range strings.Split(sanitize(e), "\n") {
					fmt.Fprintf(w, "      %s\n", line)
				}
			}
		}
		fmt.Fprintf(w, tr("  total: %d/%d  %s  (%s)\n", "  总分：%d/%d  %s（%s）\n"), r.Points, r.MaxPoints, mark[r.Status], r.Duration.Round(1e6))
	}
	return nil
}

// exercismTest is one entry of results.json "tests" (version 3).
type exercismTest struct {
	Name     string `json:"name"`
	TaskID   int    `json:"task_id"`
	Status   Status `json:"status"`
	Message  string `json:"message,omitempty"`
	Output   string `json:"output,omitempty"`
	TestCode string `json:"test_code,omitempty"`
	Points   int    `json:"points"`
	Max      int    `json:"max_points"`
}

type exercismResult struct {
	Version   int            `json:"version"`
	Status    Status         `json:"status"`
	Message   string         `json:"message,omitempty"`
	Image     string         `json:"image"`
	Points    int            `json:"points"`
	MaxPoints int            `json:"max_points"`
	Tests     []exercismTest `json:"tests"`
	Info      any            `json:"info,omitempty"`
}

func toExercism(r *Result) exercismResult {
	er := exercismResult{Version: 3, Status: r.Status, Image: r.Image, Points: r.Points, MaxPoints: r.MaxPoints, Tests: []exercismTest{}}
	if r.Status != Pass {
		er.Message = r.Message
	}
	if r.Info != nil {
		er.Info = r.Info
	}
	for _, c := range r.Criteria {
		er.Tests = append(er.Tests, exercismTest{Name: c.Title, TaskID: c.TaskID, Status: c.Status, Message: c.Message,
			Output: strings.Join(c.Evidence, "\n"), TestCode: c.ID, Points: c.Points, Max: c.MaxPoints})
	}
	return er
}

// WriteJSON writes results in the Exercism results.json v3 shape (one
// object for one image, an array for several), with points added.
func WriteJSON(w io.Writer, results []*Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(results) == 1 {
		return enc.Encode(toExercism(results[0]))
	}
	all := make([]exercismResult, 0, len(results))
	for _, r := range results {
		all = append(all, toExercism(r))
	}
	return enc.Encode(all)
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Class     string     `xml:"classname,attr"`
	Name      string     `xml:"name,attr"`
	Time      float64    `xml:"time,attr"`
	Failure   *junitFail `xml:"failure,omitempty"`
	Error     *junitFail `xml:"error,omitempty"`
	SystemOut string     `xml:"system-out,omitempty"`
}

type junitFail struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes one testsuite per image, one testcase per criterion.
func WriteJUnit(w io.Writer, spec *Spec, results []*Result) error {
	var s junitSuites
	for _, r := range results {
		suite := junitSuite{Name: spec.ID + ": " + sanitize(r.Image), Time: r.Duration.Seconds()}
		for _, c := range r.Criteria {
			jc := junitCase{Class: spec.ID, Name: fmt.Sprintf("%d. %s", c.TaskID, c.Title), Time: c.Duration.Seconds(),
				SystemOut: strings.Join(c.Evidence, "\n")}
			switch c.Status {
			case Fail:
				suite.Failures++
				jc.Failure = &junitFail{Message: c.Message, Body: jc.SystemOut}
			case Error:
				suite.Errors++
				msg := c.Message
				if r.Message != "" && r.Status == Error {
					msg += ": " + r.Message
				}
				jc.Error = &junitFail{Message: msg, Body: jc.SystemOut}
			}
			suite.Tests++
			suite.Cases = append(suite.Cases, jc)
		}
		s.Suites = append(s.Suites, suite)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteTAP writes TAP version 13, one test point per image and criterion.
func WriteTAP(w io.Writer, results []*Result) error {
	n := 0
	for _, r := range results {
		n += len(r.Criteria)
	}
	fmt.Fprintf(w, "TAP version 13\n1..%d\n", n)
	i := 0
	for _, r := range results {
		for _, c := range r.Criteria {
			i++
			ok := "ok"
			if c.Status != Pass {
				ok = "not ok"
			}
			fmt.Fprintf(w, "%s %d - %s: %s\n", ok, i, tapEscape(r.Image), tapEscape(c.Title))
			if c.Status != Pass || len(c.Evidence) > 0 {
				fmt.Fprintf(w, "  ---\n  status: %s\n  points: %d/%d\n  message: %q\n", c.Status, c.Points, c.MaxPoints, c.Message)
				if len(c.Evidence) > 0 {
					fmt.Fprintln(w, "  evidence:")
					for _, e := range c.Evidence {
						fmt.Fprintf(w, "    - %q\n", e)
					}
				}
				fmt.Fprintln(w, "  ...")
			}
		}
	}
	return nil
}

func tapEscape(s string) string {
	s = sanitize(s)
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "#", "\\#")
}

// WriteRoster writes one CSV row per image: the gradebook view.
func WriteRoster(w io.Writer, spec *Spec, results []*Result) error {
	cw := csv.NewWriter(w)
	head := []string{"image", "status", "points", "max_points"}
	for _, c := range spec.Criteria {
		if !c.Informative {
			head = append(head, c.ID)
		}
	}
	head = append(head, "message")
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, r := range results {
		row := []string{csvSafe(r.Image), string(r.Status), fmt.Sprint(r.Points), fmt.Sprint(r.MaxPoints)}
		for _, c := range r.Criteria {
			if !c.Informative {
				row = append(row, string(c.Status))
			}
		}
		row = append(row, csvSafe(r.Message))
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses spreadsheet formula injection: a file named
// "=HYPERLINK(...)" must stay text when an instructor opens the roster.
func csvSafe(s string) string {
	s = sanitize(s)
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// ExitCode is 0 when every image passed, 1 otherwise.
func ExitCode(results []*Result) int {
	for _, r := range results {
		if r.Status != Pass {
			return 1
		}
	}
	return 0
}
