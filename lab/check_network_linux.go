package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/kstate"
	"github.com/ctlab/ctlab/sandbox/network"
)

// Checks of network namespaces: links and addresses over netlink in the
// target's namespace, and a real HTTP request made from inside it.

// LinkHasAddress: a link in the target's net namespace carries an address.
type LinkHasAddress struct {
	In      string `yaml:"in" json:"in"`
	Link    string `yaml:"link,omitempty" json:"link,omitempty" vocab:"any link"`
	Address string `yaml:"address" json:"address" vocab:"CIDR, IP or any"`
}

func (t *LinkHasAddress) validate(v *validator) {
	v.target(t.In, "host", "container")
	if a := t.Address; a != "any" {
		if _, err := netip.ParsePrefix(a); err != nil {
			if _, err := netip.ParseAddr(a); err != nil {
				v.errf("address %q: want an IP, a CIDR or any", a)
			}
		}
	}
}

func (t *LinkHasAddress) eval(_ context.Context, e *Engine) Evidence {
	links, src, ev := e.links(t.In)
	if ev != nil {
		return *ev
	}
	var seen []string
	ok := false
	for _, l := range links {
		if t.Link != "" && l.Name != t.Link {
			continue
		}
		for _, a := range l.Addrs {
			seen = append(seen, l.Name+" "+a)
			if addrMatches(a, t.Address) {
				ok = true
			}
		}
	}
	want := "address " + t.Address
	if t.Link != "" {
		want += " on " + t.Link
	}
	return Evidence{Target: t.In, Source: src, Expected: want, Actual: fmt.Sprintf("%v", seen), Pass: ok}
}

// LinkCount compares the number of links in the target's net namespace.
type LinkCount struct {
	In    string `yaml:"in" json:"in"`
	Op    string `yaml:"op" json:"op"`
	Value int    `yaml:"value" json:"value"`
}

func (t *LinkCount) validate(v *validator) {
	v.target(t.In, "host", "container")
	v.op(t.Op)
}

func (t *LinkCount) eval(_ context.Context, e *Engine) Evidence {
	links, src, ev := e.links(t.In)
	if ev != nil {
		return *ev
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Name)
	}
	ok, _ := compareNum(float64(len(links)), t.Op, float64(t.Value))
	return Evidence{Target: t.In, Source: src, Expected: fmt.Sprintf("link count %s %d", t.Op, t.Value),
		Actual: fmt.Sprintf("%d %v", len(links), names), Pass: ok}
}

// links lists the links of target's net namespace (or says why not).
func (e *Engine) links(in string) ([]network.Link, string, *Evidence) {
	ns := ""
	if in != "host" {
		pid, err := e.pidOf(in)
		if err != nil {
			return nil, "", &Evidence{Target: in, Source: "netlink", Actual: "(unreadable)", Err: err.Error()}
		}
		ns = fmt.Sprintf("/proc/%d/ns/net", pid)
	}
	links, src, err := kstate.Links(ns)
	if err != nil {
		return nil, src, &Evidence{Target: in, Source: src, Actual: "(unreadable)", Err: err.Error()}
	}
	return links, src, nil
}

// addrMatches: have is a CIDR from the kernel; want is "any" (a non-
// loopback IPv4), a CIDR (exact) or an address.
func addrMatches(have, want string) bool {
	p, err := netip.ParsePrefix(have)
	if err != nil {
		return false
	}
	if want == "any" {
		return p.Addr().Is4() && !p.Addr().IsLoopback()
	}
	if w, err := netip.ParsePrefix(want); err == nil {
		return w == p
	}
	if a, err := netip.ParseAddr(want); err == nil {
		return a == p.Addr()
	}
	return false
}

// HTTPBodyContains does GET http://127.0.0.1:port/path inside the
// container's net namespace and looks for Value in the body.
type HTTPBodyContains struct {
	In     string `yaml:"in" json:"in"`
	Port   int    `yaml:"port" json:"port"`
	Path   string `yaml:"path,omitempty" json:"path,omitempty" vocab:"/"`
	Value  string `yaml:"value" json:"value"`
	Status int    `yaml:"status,omitempty" json:"status,omitempty"`
}

func (t *HTTPBodyContains) validate(v *validator) {
	v.target(t.In, "container")
	if t.Port < 1 || t.Port > 65535 {
		v.errf("port %d: want 1..65535", t.Port)
	}
	if t.Path == "" {
		t.Path = "/"
	}
	if !strings.HasPrefix(t.Path, "/") {
		v.errf("path %q must start with /", t.Path)
	}
}

// eval: the socket is created on a thread that has joined the container's
// net namespace, and a socket stays in the namespace it was made in.
func (t *HTTPBodyContains) eval(ctx context.Context, e *Engine) Evidence {
	pid, err := e.pidOf(t.In)
	src := fmt.Sprintf("GET http://127.0.0.1:%d%s in /proc/<pid>/ns/net", t.Port, t.Path)
	want := "body containing " + strconv.Quote(t.Value)
	if t.Status != 0 {
		want = fmt.Sprintf("status %d, %s", t.Status, want)
	}
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	src = fmt.Sprintf("GET http://127.0.0.1:%d%s in /proc/%d/ns/net", t.Port, t.Path, pid)
	var conn net.Conn
	err = kstate.InNamespace(pid, "net", func() error {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var derr error
		conn, derr = d.DialContext(dctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(t.Port)))
		return derr
	})
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "no connection: " + err.Error()}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: ctlab\r\nConnection: close\r\n\r\n", t.Path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "bad response: " + err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ok := strings.Contains(string(body), t.Value) && (t.Status == 0 || resp.StatusCode == t.Status)
	return Evidence{Target: t.In, Source: src, Expected: want, Actual: fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(truncate(string(body), 300))), Pass: ok}
}
