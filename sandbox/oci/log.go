package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CallLog is ctlab's own record of every call the runtime receives (the
// lesson shows it: which caller ran which subcommand with which flags).
var CallLog = "/run/ctlab/oci-calls.log"

// Call is one line of the call log.
type Call struct {
	Time   time.Time `json:"time"`
	Pid    int       `json:"pid"`
	Caller string    `json:"caller"` // the parent's comm: containerd-shim, conmon, ...
	Args   []string  `json:"args"`
	Error  string    `json:"error,omitempty"`
}

// NewCall describes this process's invocation.
func NewCall(args []string) Call {
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", os.Getppid()))
	return Call{Time: time.Now().UTC(), Pid: os.Getpid(), Caller: strings.TrimSpace(string(comm)), Args: args}
}

// Record appends c to the call log and, when the caller gave --log, to that
// file in runc's format (json: one {"level","msg","time"} object a line,
// which go-runc reads back for errors; text: a plain line).
func (c Call) Record(logFile, format string) {
	if b, err := json.Marshal(c); err == nil {
		appendLine(CallLog, b)
	}
	if logFile == "" {
		return
	}
	level, msg := "info", "ctlab-oci "+strings.Join(c.Args, " ")
	if c.Error != "" {
		level, msg = "error", c.Error
	}
	if format == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": c.Time.Format(time.RFC3339Nano)})
		appendLine(logFile, b)
		return
	}
	appendLine(logFile, []byte(fmt.Sprintf("time=%q level=%s msg=%q", c.Time.Format(time.RFC3339Nano), level, msg)))
}

// appendLine is best effort: a log that cannot be written must not fail
// the call itself.
func appendLine(path string, b []byte) {
	os.MkdirAll(filepath.Dir(path), 0o700)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(append(b, '\n'))
}
