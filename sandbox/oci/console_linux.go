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
// socket (SCM_RIGHTS, as runc does) and returns the slave, which becomes
// the container's stdio. The pty lives in the host's devpts: the process
// holds it open, so the container needs no path to it.
func NewConsole(socket string, size *specs.Box) (*os.File, error) {
	if socket == "" {
		return nil, fmt.Errorf("process.terminal is true but no --console-socket was given")
	}
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer master.Close()
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("pty number: %w", err)
	}
	if size != nil {
		unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)})
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open pty slave: %w", err)
	}
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

func jsonState(st *State) ([]byte, error) { return json.Marshal(st) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
