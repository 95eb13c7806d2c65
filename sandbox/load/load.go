// Package load generates the load that lessons use to show a cgroup limit
// biting: a cpu burner, a memory hog, a fork loop and an O_DIRECT reader.
// They run inside containers as `/.ctlab/ctlab load ...`, so no tool is
// needed in the container image.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// CPU spins on n goroutines until ctx ends. Under a cpu quota the kernel
// throttles it; cpu.stat's nr_throttled grows.
func CPU(ctx context.Context, n int) {
	if n < 1 {
		n = 1
	}
	runtime.GOMAXPROCS(n)
	done := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			x := uint64(1)
			for {
				select {
				case <-done:
					return
				default:
				}
				for j := 0; j < 1e5; j++ {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
		}()
	}
	<-ctx.Done()
	close(done)
}

// Memory allocates size bytes in steps and touches every page, printing
// progress, then holds it until ctx ends. Above memory.max the kernel's OOM
// killer ends the process with SIGKILL (it never sees an error).
func Memory(ctx context.Context, size int64, w io.Writer) error {
	const step = 4 << 20
	var chunks [][]byte
	for got := int64(0); got < size; got += step {
		b, err := unix.Mmap(-1, 0, step, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			return fmt.Errorf("mmap after %d MiB: %w", got>>20, err)
		}
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		chunks = append(chunks, b)
		fmt.Fprintf(w, "allocated %d MiB\n", (got+step)>>20)
	}
	fmt.Fprintf(w, "holding %d MiB\n", size>>20)
	<-ctx.Done()
	runtime.KeepAlive(chunks)
	return nil
}

// Fork starts up to n children that sleep, and reports how many the kernel
// allowed. Under pids.max, fork fails with EAGAIN ("Resource temporarily
// unavailable") once the limit is reached.
func Fork(ctx context.Context, n int, w io.Writer) (int, error) {
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	var kids []*exec.Cmd
	defer func() {
		for _, k := range kids {
			k.Process.Kill()
			k.Wait()
		}
	}()
	for i := 0; i < n; i++ {
		cmd := exec.Command(self, "load", "sleep")
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(w, "fork %d refused: %v\n", i+1, err)
			if errors.Is(err, syscall.EAGAIN) {
				return i, nil
			}
			return i, err
		}
		kids = append(kids, cmd)
	}
	fmt.Fprintf(w, "started %d processes\n", n)
	select {
	case <-ctx.Done():
	case <-time.After(200 * time.Millisecond):
	}
	return n, nil
}

// IORead writes a file of size bytes at path (if missing) and reads it back
// with O_DIRECT, bypassing the page cache, so every byte comes from the
// block device and is subject to blkio/io throttling. It returns the read
// rate in bytes per second.
func IORead(ctx context.Context, path string, size int64, w io.Writer) (float64, error) {
	const bs = 1 << 20
	if fi, err := os.Stat(path); err != nil || fi.Size() < size {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return 0, err
		}
		buf := make([]byte, bs)
		for i := range buf {
			buf[i] = byte(i)
		}
		for n := int64(0); n < size; n += bs {
			if _, err := f.Write(buf); err != nil {
				f.Close()
				return 0, err
			}
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return 0, err
		}
		f.Close()
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s with O_DIRECT: %w", path, err)
	}
	defer unix.Close(fd)
	// O_DIRECT needs an aligned buffer.
	raw := make([]byte, bs+4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&raw[0]))&4095)
	buf := raw[off : off+bs]
	start := time.Now()
	var total int64
	for total < size {
		if ctx.Err() != nil {
			break
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			break
		}
		total += int64(n)
	}
	secs := time.Since(start).Seconds()
	rate := float64(total) / secs
	fmt.Fprintf(w, "read %d MiB in %.2f s with O_DIRECT: %.2f MiB/s\n", total>>20, secs, rate/(1<<20))
	return rate, nil
}
