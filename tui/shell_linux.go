package tui

import (
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	tea "charm.land/bubbletea/v2"
	"golang.org/x/sys/unix"
)

// shellCommand runs the learner's shell for tea.Exec and, when it exits,
// takes the terminal's foreground back.
//
// Why: an interactive sh makes its own process group the terminal's
// foreground group (job control). The shell runs in the container's pid
// namespace, where ctlab's process group does not exist, so on exit it
// cannot hand the terminal back; ctlab would then be a background group
// and its next read of the terminal fails with EIO.
type shellCommand struct {
	*exec.Cmd
	banner string // printed before the shell starts: how to get back
}

func (c shellCommand) Run() error {
	if c.banner != "" && c.Stdout != nil {
		io.WriteString(c.Stdout, c.banner+"\r\n")
	}
	err := c.Cmd.Run()
	reclaimTerminal(c.Cmd.Stdin)
	return err
}

// SetStdin and friends connect the terminal unless the command already
// has its own streams (as osExecCommand in Bubble Tea does).
func (c shellCommand) SetStdin(r io.Reader) {
	if c.Stdin == nil {
		c.Stdin = r
	}
}

func (c shellCommand) SetStdout(w io.Writer) {
	if c.Stdout == nil {
		c.Stdout = w
	}
}

func (c shellCommand) SetStderr(w io.Writer) {
	if c.Stderr == nil {
		c.Stderr = w
	}
}

// reclaimTerminal makes our process group the foreground group of the
// terminal on in again. SIGTTOU is ignored for the call: a background
// group calling tcsetpgrp would otherwise be stopped by it.
func reclaimTerminal(in io.Reader) {
	f, ok := in.(*os.File)
	if !ok {
		return
	}
	fd := int(f.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return // not a terminal
	}
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, unix.Getpgrp())
}

// execShell hands the shell to Bubble Tea, which releases the terminal
// while it runs and redraws after.
func execShell(cmd *exec.Cmd, banner string, fn tea.ExecCallback) tea.Cmd {
	return tea.Exec(shellCommand{Cmd: cmd, banner: banner}, fn)
}
