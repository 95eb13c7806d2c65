package load

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

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

// Main runs a load generator from plain arguments, without the CLI
// (package tests use it, re-executing their own binary inside containers):
//
//	load cpu SECONDS | load mem SIZE_BYTES SECONDS | load fork N |
//	load io FILE SIZE_BYTES | load serve PORT BODY SECONDS | load shm KEY |
//	load count FILE SECONDS | load sleep SECONDS
//
// It returns the process exit status.
func Main(args []string) int {
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "load: missing kind")
		return 2
	}
	num := func(i int) int64 {
		if i >= len(args) {
			return 0
		}
		n, _ := strconv.ParseInt(args[i], 0, 64)
		return n
	}
	secs := func(i int) (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Duration(num(i))*time.Second)
	}
	var err error
	switch args[0] {
	case "cpu":
		ctx, cancel := secs(1)
		defer cancel()
		CPU(ctx, 1)
	case "mem":
		ctx, cancel := secs(2)
		defer cancel()
		err = Memory(ctx, num(1), os.Stdout)
	case "fork":
		var got int
		got, err = Fork(context.Background(), int(num(1)), os.Stdout)
		if err == nil && got < int(num(1)) {
			return 3
		}
	case "io":
		_, err = IORead(context.Background(), args[1], num(2), os.Stdout)
	case "serve":
		ctx, cancel := secs(3)
		defer cancel()
		err = Serve(ctx, int(num(1)), args[2])
	case "shm":
		err = SysVShm(int(num(1)), os.Stdout)
	case "count":
		ctx, cancel := secs(2)
		defer cancel()
		for i := 0; ctx.Err() == nil && err == nil; i++ {
			err = os.WriteFile(args[1], []byte(strconv.Itoa(i)+"\n"), 0o644)
			time.Sleep(10 * time.Millisecond)
		}
	case "sleep":
		if num(1) == 0 {
			args = append(args[:1], "10")
		}
		ctx, cancel := secs(1)
		defer cancel()
		<-ctx.Done()
	default:
		fmt.Fprintln(os.Stderr, "load: unknown kind", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 1
	}
	return 0
}
