package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox/build"
	"github.com/ctlab/ctlab/sandbox/image"
)

type buildOptions struct {
	tags, args         []string
	file, target, netw string
	progress           string
	noCache, insecure  bool
}

func newBuildCmd() *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build [-t NAME[:TAG]] [-f Dockerfile] [flags] CONTEXT",
		Short: "Build an image from a Dockerfile: each RUN is a ctlab container whose upperdir becomes a layer",
		Long: `build is the classic Docker builder made visible. The Dockerfile is parsed
with Docker's own parser (moby/buildkit frontend/dockerfile). Then, per step:

  FROM     an image of the store (pulled first if missing), scratch, or an
           earlier stage; its layers are unpacked into /var/lib/ctlab/layers
  RUN      starts a ctlab container (new mount, uts, ipc, pid and cgroup
           namespaces; the host's network, or its own with --network none)
           whose rootfs is an overlay: lowerdir = the stage's layers so far,
           upperdir = empty. When it exits 0, the upperdir is the layer:
           new and changed files as they are, deleted ones as OCI whiteouts
           (.wh.NAME), replaced directories with an opaque marker.
  COPY/ADD writes a layer from the build context (.dockerignore honoured),
           another stage (--from) or an image; ADD unpacks local tars
  ENV, ARG, WORKDIR, USER, CMD, ENTRYPOINT, EXPOSE, LABEL, STOPSIGNAL,
  VOLUME, HEALTHCHECK, SHELL change only the image config

The log shows each RUN's container, the upperdir's changes (+ added,
~ modified, - whiteout, opaque) and the layer's diffID and size. Layers are
cached by parent + instruction (+ the content of COPY sources, + build
args): a hit prints CACHED. Only the target stage's layers end up in the
image, which goes into ctlab's store (ctlab images).

Exit status: 0 built, 1 a RUN failed (its status and last lines are
shown), 2 bad input (Dockerfile file:line, unknown stage, a COPY source
outside the context, a missing base image).`,
		Example: `  sudo ctlab image import-packages --tag nginx:latest nginx   # an offline base
  printf 'FROM nginx:latest\nRUN sed -i "s/Welcome to nginx/Hello World/" /usr/share/nginx/html/index.html\n' > Dockerfile
  sudo ctlab build -t hello .
  sudo ctlab history hello`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.tags, "tag", "t", nil, "name the image NAME[:TAG] (repeatable)")
	f.StringVarP(&o.file, "file", "f", "", "the Dockerfile (default CONTEXT/Dockerfile)")
	f.StringVar(&o.target, "target", "", "build up to this stage")
	f.StringArrayVar(&o.args, "build-arg", nil, "set a build argument K=V (repeatable)")
	f.BoolVar(&o.noCache, "no-cache", false, "do not use the layer cache")
	f.StringVar(&o.netw, "network", "host", "RUN's network: host, or none (a network namespace with only lo)")
	f.StringVar(&o.progress, "progress", "auto", "plain: the full log, line by line; auto: on a terminal one live line per step (its RUN container and elapsed time), plain otherwise")
	f.BoolVar(&o.insecure, "insecure", false, "pull a missing FROM image over plain HTTP / unverified TLS")
	return cmd
}

func runBuild(cmd *cobra.Command, o buildOptions, dir string) error {
	if o.progress != "auto" && o.progress != "plain" {
		return usageError{fmt.Errorf("--progress %q: use auto or plain", o.progress)}
	}
	bargs := map[string]string{}
	for _, a := range o.args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			v, ok = os.LookupEnv(k) // docker: --build-arg K takes K from the environment
		}
		if ok {
			bargs[k] = v
		}
	}
	s, err := openStore()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bo := build.Options{
		Context: dir, Dockerfile: o.file, Target: o.target, BuildArgs: bargs, NoCache: o.noCache,
		Network: o.netw, Tags: o.tags, Store: s, Log: cmd.OutOrStdout(),
		Remote: image.RemoteOptions{Insecure: o.insecure},
	}
	var live *liveView
	if f, ok := cmd.OutOrStdout().(*os.File); ok && o.progress == "auto" && term.IsTerminal(f.Fd()) {
		live = newLiveView(f)
		bo.Log, bo.Progress = &live.log, live.event
	}
	_, err = build.Build(ctx, bo)
	if live != nil {
		live.close(err != nil)
	}
	var be *build.Error
	if errors.As(err, &be) {
		fmt.Fprintln(cmd.ErrOrStderr(), "ctlab build:", be.Msg)
		return exitError{be.Status}
	}
	if ctx.Err() != nil && err != nil {
		return fmt.Errorf("build interrupted; its RUN container was removed: %w", err)
	}
	return err
}

// liveView is --progress auto on a terminal: one line per step, the
// current one redrawn with its RUN container and elapsed time, finished
// with the step's result (layer digest and size, CACHED, config only).
// The full plain log is kept and its tail shown when the build fails.
type liveView struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	log   tailBuffer
	cur   build.Event
	run   string
	start time.Time
	open  bool
	stop  chan struct{}
	done  chan struct{}
}

func newLiveView(f *os.File) *liveView {
	v := &liveView{w: f, width: 80, stop: make(chan struct{}), done: make(chan struct{})}
	if w, _, err := term.GetSize(f.Fd()); err == nil && w > 20 {
		v.width = w
	}
	go func() {
		defer close(v.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-v.stop:
				return
			case <-t.C:
				v.mu.Lock()
				if v.open {
					v.draw("")
				}
				v.mu.Unlock()
			}
		}
	}()
	return v
}

// event is build.Options.Progress.
func (v *liveView) event(ev build.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch ev.Kind {
	case build.EventStep:
		v.finish("")
		v.cur, v.run, v.start, v.open = ev, "", time.Now(), true
		v.draw("")
	case build.EventRun:
		v.run = ev.Text
		v.draw("")
	case build.EventDone:
		v.finish(ev.Text)
	}
}

// draw rewrites the current line: [n/total] instruction  container  time.
func (v *liveView) draw(result string) {
	tail := fmt.Sprintf("  %5.1fs", time.Since(v.start).Seconds())
	if v.run != "" {
		tail = "  " + v.run + tail
	}
	if result != "" {
		tail += "  " + result
	}
	head := fmt.Sprintf("[%d/%d] %s", v.cur.Step, v.cur.Total, strings.Join(strings.Fields(v.cur.Text), " "))
	if room := v.width - 1 - len([]rune(tail)); len([]rune(head)) > room {
		head = string([]rune(head)[:max(room-1, 8)]) + "…"
	}
	fmt.Fprintf(v.w, "\r\033[K%s%s", head, tail)
}

func (v *liveView) finish(result string) {
	if !v.open {
		return
	}
	v.draw(result)
	fmt.Fprintln(v.w)
	v.open = false
}

// close stops the redraw; after a failure it prints the log's last lines
// (the RUN's output), which the live lines left out, else the image ID
// and names.
func (v *liveView) close(failed bool) {
	close(v.stop)
	<-v.done
	v.mu.Lock()
	defer v.mu.Unlock()
	v.finish("")
	if failed {
		fmt.Fprint(v.w, v.log.tail(30))
		return
	}
	for _, l := range strings.SplitAfter(v.log.tail(10), "\n") {
		if strings.HasPrefix(l, "Successfully ") { // the image ID and its names
			fmt.Fprint(v.w, l)
		}
	}
}

// tailBuffer keeps the last 1 MiB written to it (by the build and by its
// RUN output copier).
type tailBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if t.b.Len() > 1<<20 {
		keep := append([]byte(nil), t.b.Bytes()[t.b.Len()-(1<<19):]...)
		t.b.Reset()
		t.b.Write(keep)
	}
	return len(p), nil
}

// tail returns the last n lines.
func (t *tailBuffer) tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.SplitAfter(t.b.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
