package grade

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ctlab/ctlab/sandbox/image"
)

// RunSpec is what the serves check asks a Runner to start: the image's own
// command on its unpacked layers.
type RunSpec struct {
	Name     string
	Layers   []string // overlay lowerdirs, top-most first
	Args     []string // entrypoint + cmd
	Env      []string
	Cwd      string
	User     string // the image's USER, resolved in the image's own /etc/passwd
	MemoryMB int
	Pids     int
	Output   io.Writer // the process's stdout+stderr (bounded by the caller)
}

// Process is a started image command.
type Process interface {
	Addr() netip.Addr // where to dial it
	Running() bool
	// Stop kills the process and removes every kernel object it had.
	Stop(ctx context.Context) error
}

// Runner starts image commands. The production runner is the ctlab
// sandbox (SandboxRunner); the interface keeps the HTTP logic testable and
// the grader usable on hosts where only some checks can run.
type Runner interface {
	Start(ctx context.Context, spec RunSpec) (Process, error)
}

// boundedBuffer keeps the first max bytes a process writes.
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
	cut bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
			b.cut = true
		} else {
			b.buf.Write(p)
		}
	} else if len(p) > 0 {
		b.cut = true
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if b.cut {
		s += "\n[output truncated]"
	}
	return s
}

func randomName() string {
	var b [4]byte
	rand.Read(b[:])
	return "grade-" + hex.EncodeToString(b[:])
}

// httpResult is what one GET saw.
type httpResult struct {
	Status int
	Body   []byte
	Trunc  bool
}

// maxBody bounds what the grader reads from a student's server.
const maxBody = 1 << 20

// newHTTPClient is deliberately paranoid: the server is untrusted code.
// No proxy (a learner VM's HTTP_PROXY must not see or reroute the request),
// no redirects (a redirect to a host address would make the grader attack
// the host), no keep-alive, bounded headers, a hard overall timeout.
func newHTTPClient(timeout time.Duration, dial dialFunc) *http.Client {
	return &http.Client{
		Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, netw, addr string) (net.Conn, error) {
				ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				return dial(ctx, netw, addr)
			},
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: 64 << 10,
			ResponseHeaderTimeout:  timeout,
			DisableCompression:     true,
		},
	}
}

// dialFunc opens a connection, as net.Dialer.DialContext.
type dialFunc func(ctx context.Context, netw, addr string) (net.Conn, error)

// Dialer is a Process that must be dialled its own way: the sandbox's
// grading containers are reachable only from a private network namespace.
type Dialer interface {
	DialContext(ctx context.Context, netw, addr string) (net.Conn, error)
}

// probeHTTP waits until addr accepts TCP connections (or alive reports the
// process gone, or ctx ends), then GETs path once; dial (nil: the host's
// network) makes every connection.
func probeHTTP(ctx context.Context, addr netip.AddrPort, path string, alive func() bool, dial dialFunc) (*httpResult, error) {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	// Poll fast at first (nginx usually listens within a few ms of exec),
	// then back off so a slow starter is not hammered.
	wait := 5 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("nothing listened on port %d before the timeout", addr.Port())
		}
		if alive != nil && !alive() {
			return nil, errExited
		}
		dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		conn, err := dial(dctx, "tcp", addr.String())
		cancel()
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
	remaining := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < remaining {
		remaining = time.Until(dl)
	}
	client := newHTTPClient(remaining, dial)
	url := "http://" + addr.String() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "ctlab-grade")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	r := &httpResult{Status: resp.StatusCode, Body: body}
	if len(body) > maxBody {
		r.Body, r.Trunc = body[:maxBody], true
	}
	return r, nil
}

var errExited = errors.New("the container's process exited")

// serves runs the image's command in the sandbox and checks the answer.
func (g *Grader) serves(ctx context.Context, sub *Submission, c *Serves) (outcome, error) {
	if g.Runner == nil {
		return outcome{}, errors.New(g.tr("no sandbox available on this host to run the image", "此主机上没有可用的沙箱来运行镜像"))
	}
	cfg := sub.Image.Config.Config
	args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(args) == 0 {
		return outcome{false, []string{g.tr("the image has no ENTRYPOINT or CMD", "镜像没有 ENTRYPOINT 或 CMD")}}, nil
	}
	var ev []string
	ev = append(ev, fmt.Sprintf(g.tr("command: %s", "命令：%s"), excerpt([]byte(strings.Join(args, " ")), 200)))
	if u := cfg.User; u != "" {
		ev = append(ev, fmt.Sprintf(g.tr("USER %s (in a user namespace)", "USER %s（在用户命名空间中）"), u))
	}
	timeout := time.Duration(c.Timeout)
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &boundedBuffer{max: 16 << 10}
	spec := RunSpec{Name: randomName(), Layers: image.LowerDirs(sub.Layers), Args: args, Env: cfg.Env, Cwd: cfg.WorkingDir, User: cfg.User,
		MemoryMB: c.MemoryMB, Pids: c.Pids, Output: out}
	start := time.Now()
	p, err := g.Runner.Start(rctx, spec)
	if err != nil {
		if rctx.Err() != nil {
			return outcome{false, append(ev, fmt.Sprintf(g.tr("did not start within %s: %s", "%s 内未能启动：%s"), timeout, sanitize(err.Error())))}, nil
		}
		// A command that cannot be exec'd (missing binary) is the student's
		// failure, not the grader's: report it as a fail with the reason.
		return outcome{false, append(ev, g.tr("could not start: ", "无法启动：")+sanitize(err.Error()))}, nil
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer scancel()
		_ = p.Stop(sctx)
	}()
	addr := netip.AddrPortFrom(p.Addr(), uint16(c.Port))
	var dial dialFunc
	if d, ok := p.(Dialer); ok {
		dial = d.DialContext
	}
	r, err := probeHTTP(rctx, addr, c.Path, p.Running, dial)
	if err != nil {
		msg := sanitize(err.Error())
		if errors.Is(err, errExited) {
			msg = g.tr("the command exited before anything listened on port ", "命令在端口监听之前就退出了：") + strconv.Itoa(c.Port)
		} else if rctx.Err() != nil {
			msg = fmt.Sprintf(g.tr("nothing answered on port %d within %s", "%[2]s 内端口 %[1]d 没有响应"), c.Port, timeout)
		}
		ev = append(ev, msg)
		if o := strings.TrimSpace(out.String()); o != "" {
			ev = append(ev, g.tr("output: ", "输出：")+excerpt([]byte(o), 600))
		}
		return outcome{false, ev}, nil
	}
	ev = append(ev, fmt.Sprintf(g.tr("GET http://%s%s -> %d after %s, %d bytes", "GET http://%s%s -> %d，用时 %s，%d 字节"),
		addr, c.Path, r.Status, time.Since(start).Round(time.Millisecond), len(r.Body)))
	ok := r.Status == c.Status
	if !ok {
		ev = append(ev, fmt.Sprintf(g.tr("expected status %d", "期望状态码 %d"), c.Status))
	}
	if c.BodyContains != "" && !bytes.Contains(r.Body, []byte(c.BodyContains)) {
		ok = false
		ev = append(ev, fmt.Sprintf(g.tr("body does not contain %q: %s", "响应体不包含 %q：%s"), c.BodyContains, excerpt(r.Body, 160)))
	} else if c.BodyContains != "" {
		ev = append(ev, fmt.Sprintf(g.tr("body contains %q", "响应体包含 %q"), c.BodyContains))
	}
	if c.BodyNotContains != "" && bytes.Contains(r.Body, []byte(c.BodyNotContains)) {
		ok = false
		ev = append(ev, fmt.Sprintf(g.tr("body still contains %q", "响应体仍包含 %q"), c.BodyNotContains))
	}
	return outcome{ok, ev}, nil
}
