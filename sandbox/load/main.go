package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Serve answers every TCP connection on port with body and closes it: the
// smallest server a network lesson (or test) needs inside a container.
func Serve(ctx context.Context, port int, body string) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		io.WriteString(conn, body)
		conn.Close()
	}
}

// SysVShm creates a System V shared memory segment with key and prints its
// id. Such objects live in the ipc namespace: `ipcs -m` elsewhere does not
// list it.
func SysVShm(key int, w io.Writer) error {
	id, err := unix.SysvShmGet(key, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		return fmt.Errorf("shmget: %w", err)
	}
	fmt.Fprintf(w, "created shm key %#x id %d\n", key, id)
	return nil
}

// Main runs `ctlab load ARGS...` -- the same cobra command as the CLI --
// and returns the exit status: 0, 1 on failure, 2 for bad arguments, 3
// when fork was refused. Test binaries that play /.ctlab/ctlab inside
// containers call it, so tests exercise the grammar that really runs.
func Main(args []string) int {
	cmd := Command()
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	var ee ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	fmt.Fprintln(os.Stderr, "load:", err)
	var ue UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
