package lab

import (
	"regexp"
	"strings"
	"testing"
)

// quizScenario is a one-step scenario whose step carries question (YAML,
// indented for the step).
func quizScenario(question string) string {
	return `id: q1
chapter: namespaces
title: {en: T, zh: T}
summary: {en: S, zh: S}
minutes: 5
containers:
  box: {namespaces: [uts, mnt], hostname: ctlab}
steps:
  - id: a
    kind: demo
    text: {en: t, zh: t}
    do:
      - start: {container: box}
    expect:
      - hostname_equals: {in: box, value: ctlab}
    question:
` + question
}

func TestQuestionLoads(t *testing.T) {
	s, err := (&Loader{Content: testContent}).Load("q1.yaml", strings.NewReader(quizScenario(`      en: Which name?
      zh: 哪个名字？
      choices:
        - {value: host, en: the host's, zh: 宿主机的}
        - {value: ctlab, en: ctlab, zh: ctlab}
      observe: {hostname_equals: {in: box, value: ctlab}}
`)))
	if err != nil {
		t.Fatal(err)
	}
	q := s.Steps[0].Question
	if q == nil || len(q.Choices) != 2 || q.Observe == nil || q.In("zh") != "哪个名字？" {
		t.Fatalf("question: %+v", q)
	}
}

// TestQuestionValidation: the loader stays strict (unknown keys with
// their line) and an answer must have exactly one source.
func TestQuestionValidation(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"unknown key": {`      en: Q
      zh: Q
      answer: 3
      number: {tolerance: 1}
      observe: {hostname_equals: {in: box, value: ctlab}}
`, `q1.yaml:19: unknown key "answer"`},
		"number without observe": {`      en: Q
      zh: Q
      number: {tolerance: 1}
`, "a number question needs observe"},
		"no correct choice": {`      en: Q
      zh: Q
      choices: [{en: a, zh: a}, {en: b, zh: b}]
`, "mark exactly one choice correct"},
		"correct and observe": {`      en: Q
      zh: Q
      choices: [{value: a, en: a, zh: a, correct: true}, {value: b, en: b, zh: b}]
      observe: {hostname_equals: {in: box, value: ctlab}}
`, "with observe the kernel says which choice is right"},
		"both kinds": {`      en: Q
      zh: Q
      choices: [{en: a, zh: a, correct: true}, {en: b, zh: b}]
      number: {tolerance: 1}
`, "give choices or number, not both"},
		"match pass values": {`      en: Q
      zh: Q
      choices: [{value: yes, en: a, zh: a}, {value: "false", en: b, zh: b}]
      observe: {hostname_equals: {in: box, value: ctlab}}
      match: pass
`, "a choice's value is true or false"},
		"missing zh": {`      en: Q
      choices: [{en: a, zh: a, correct: true}, {en: b, zh: b}]
`, "question"},
		"observe of an unknown target": {`      en: Q
      zh: Q
      number: {tolerance: 1}
      observe: {pid_in_ns_equals: {in: nobox, value: "1"}}
`, `"nobox" is not host or a container`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := (&Loader{Content: testContent}).Load("q1.yaml", strings.NewReader(quizScenario(c.yaml)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
		})
	}
}

func TestQuestionAnswerAndJudge(t *testing.T) {
	num := &Question{Number: &NumberQ{Tolerance: 10}, Observe: &Check{}}
	k, shown := num.answer(&Evidence{Actual: "31"}, "en")
	if k != "31" || shown != "31" || !num.judge("25", k) || num.judge("45", k) || num.judge("", k) {
		t.Errorf("number: kernel %q shown %q", k, shown)
	}
	ch := &Question{Choices: []*Choice{{Value: "0", EN: "zero"}, {Value: "1", EN: "one"}}, Observe: &Check{}}
	if k, shown := ch.answer(&Evidence{Actual: "oom_kill 1"}, "en"); k != "1" || shown != "one" || !ch.judge("1", k) {
		t.Errorf("numeric choice: %q %q", k, shown)
	}
	words := &Question{Choices: []*Choice{{Value: "whiteout", EN: "w"}, {Value: "absent", EN: "a"}}, Observe: &Check{}}
	if k, _ := words.answer(&Evidence{Actual: "whiteout (char 0/0)"}, "en"); k != "whiteout" {
		t.Errorf("word choice: %q", k)
	}
	pass := &Question{Match: "pass", Choices: []*Choice{{Value: "true", EN: "runs"}, {Value: "false", EN: "killed"}}, Observe: &Check{}}
	if k, shown := pass.answer(&Evidence{Actual: "process has exited", Pass: false}, "en"); k != "false" || shown != "killed" {
		t.Errorf("match pass: %q %q", k, shown)
	}
	static := &Question{Choices: []*Choice{{EN: "a"}, {EN: "b", Correct: true}}}
	if k, shown := static.answer(nil, "en"); k != "2" || shown != "b" || !static.judge("2", k) {
		t.Errorf("static choice: %q %q", k, shown)
	}
	if k, _ := num.answer(&Evidence{Err: "gone"}, "en"); k != "" {
		t.Errorf("unreadable evidence gave an answer %q", k)
	}
}

func TestProgressRecordsPredictions(t *testing.T) {
	p := &Progress{Scenarios: map[string]*ScenarioProgress{}}
	p.Record(nil, &Result{Scenario: "q1", Steps: []StepResult{{ID: "a", Status: "pass", Prediction: &Prediction{Answer: "1", Kernel: "1", Correct: true}}}})
	// a later headless run (skipped) does not overwrite the learner's answer
	p.Record(nil, &Result{Scenario: "q1", Steps: []StepResult{{ID: "a", Status: "pass", Prediction: &Prediction{Skipped: true, Kernel: "1"}}}})
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"predictions":{"a":{"answer":"1","kernel":"1","correct":true}}`) {
		t.Errorf("progress file: %s", b)
	}
}

// TestMessagesComplete: every message has both languages, with the same
// format verbs in the same order.
func TestMessagesComplete(t *testing.T) {
	verbs := regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)
	for id, m := range messages {
		if strings.TrimSpace(m[0]) == "" || strings.TrimSpace(m[1]) == "" {
			t.Errorf("%s: missing a language: %q", id, m)
		}
		if a, b := verbs.FindAllString(m[0], -1), verbs.FindAllString(m[1], -1); strings.Join(a, " ") != strings.Join(b, " ") {
			t.Errorf("%s: verbs %v in en, %v in zh", id, a, b)
		}
	}
}

func TestLocalizeEvidence(t *testing.T) {
	for in, want := range map[string]string{
		"running":                         "运行中",
		"different inodes":                "inode 不同",
		`not a file containing "root:"`:   `不是 文件包含 "root:"`,
		`output containing "uid=0\n"`:     `输出包含 "uid=0\n"`,
		"process box (pid 12) has exited": "process box (pid 12) 已退出",
		"whiteout (char 0/0)":             "whiteout（字符设备 0/0）",
		"31":                              "31",
	} {
		if got := LocalizeEvidence("zh", in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
		if got := LocalizeEvidence("en", in); got != in {
			t.Errorf("en changed %q to %q", in, got)
		}
	}
}
