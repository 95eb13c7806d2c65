package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// NewConsole makes a pty pair, sends the master to the caller's console
// socket (SCM_RIGHTS, as runc does) and returns the slave (exec's stdio).
// The pty lives in the host's devpts: the process holds it open, but
// ttyname inside the container finds no such /dev/pts entry.
func NewConsole(socket string, size *specs.Box) (*os.File, error) {
	if socket == "" {
		return nil, fmt.Errorf("process.terminal is true but no --console-socket was given")
	}
	master, slave, err := openPty(size)
	if err != nil {
		return nil, err
	}
	defer master.Close()
	if err := sendFd(socket, master); err != nil {
		slave.Close()
		return nil, err
	}
	return slave, nil
}

func sendFd(socket string, f *os.File) error {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("console socket %s is not a unix socket", socket)
	}
	oob := unix.UnixRights(int(f.Fd()))
	if _, _, err := uc.WriteMsgUnix([]byte(f.Name()), oob, nil); err != nil {
		return fmt.Errorf("send pty to console socket: %w", err)
	}
	return nil
}

// consoleSocketFile connects to the caller's console socket; the
// container gets the connection as its stdio, and its process init sends
// the pty it makes inside (consoleInside) back through it, as runc does:
// the pty then belongs to the container's own devpts, so ttyname works.
func consoleSocketFile(socket string) (*os.File, error) {
	if socket == "" {
		return nil, fmt.Errorf("process.terminal is true but no --console-socket was given")
	}
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("console socket %s is not a unix socket", socket)
	}
	return uc.File()
}

// consoleInside runs in the process init: fd 0 is the console socket. It
// opens a pty in the container's /dev/pts, sends the master through the
// socket and makes the slave its stdio.
func consoleInside(size *specs.Box) error {
	master, slave, err := openPty(size)
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	oob := unix.UnixRights(int(master.Fd()))
	if err := unix.Sendmsg(0, []byte("/dev/ptmx"), oob, nil, 0); err != nil {
		return fmt.Errorf("send pty to console socket: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return fmt.Errorf("pty as stdio: %w", err)
		}
	}
	return nil
}

func openPty(size *specs.Box) (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	if size != nil {
		unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)})
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("open pty slave: %w", err)
	}
	return master, slave, nil
}

func jsonState(st *State) ([]byte, error) { return json.Marshal(st) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
