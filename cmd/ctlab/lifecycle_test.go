package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunImageLifecycle: run an image detached with --net, fetch its page
// from the address ps shows, then top, cp both ways, logs, stop (the
// image's STOPSIGNAL), and run IMAGE CMD with -e.
func TestRunImageLifecycle(t *testing.T) {
	base := nginxBase(t)
	const name = "ctlab-test-web"
	ctl("rm", "-f", name).Run()
	ctlOK(t, "run", "-d", "--net", "--name", name, base)
	defer ctl("rm", "-f", name).Run()
	ps := ctlOK(t, "ps", "-a")
	addr := regexp.MustCompile(name + `\s+\d+\s+running\s+\S+\s+(10\.213\.\d+\.\d+)`).FindStringSubmatch(ps)
	if addr == nil {
		t.Fatalf("ps shows no running %s with an address:\n%s", name, ps)
	}
	var body string
	for i := 0; i < 50 && !strings.Contains(body, "Welcome to nginx"); i++ {
		time.Sleep(50 * time.Millisecond)
		if r, err := http.Get("http://" + addr[1] + "/"); err == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			body = string(b)
		}
	}
	if !strings.Contains(body, "Welcome to nginx") {
		t.Fatalf("GET http://%s/: %q", addr[1], body)
	}
	if top := ctlOK(t, "top", name); !strings.Contains(top, "nginx: master process") || !strings.Contains(top, "nginx: worker process") {
		t.Errorf("top:\n%s", top)
	}
	dir := t.TempDir()
	ctlOK(t, "cp", name+":/etc/nginx/nginx.conf", dir)
	if b, _ := os.ReadFile(filepath.Join(dir, "nginx.conf")); !strings.Contains(string(b), "listen 80") {
		t.Errorf("cp out: %q", b)
	}
	os.WriteFile(filepath.Join(dir, "in.html"), []byte("copied in"), 0o644)
	ctlOK(t, "cp", filepath.Join(dir, "in.html"), name+":/usr/share/nginx/html/in.html")
	if r, err := http.Get("http://" + addr[1] + "/in.html"); err != nil {
		t.Error(err)
	} else if b, _ := io.ReadAll(r.Body); string(b) != "copied in" {
		t.Errorf("cp in: %q", b)
	}
	if out := ctlOK(t, "cp", name+":/../../../etc/hostname", dir); out != "" {
		t.Log(out)
	}
	host, _ := os.ReadFile("/etc/hostname")
	if b, _ := os.ReadFile(filepath.Join(dir, "hostname")); string(b) != "ctlab\n" || string(b) == string(host) {
		t.Errorf("cp of /../../../etc/hostname read %q, want the image's own (ctlab)", b)
	}
	if out := ctlOK(t, "stop", "-t", "5", name); !strings.Contains(out, "SIGQUIT") || strings.Contains(out, "SIGKILL") {
		t.Errorf("stop: %s", out)
	}
	if logs := ctlOK(t, "logs", name); !strings.Contains(logs, "GET /in.html") {
		t.Errorf("logs:\n%s", logs)
	}
	out := ctlOK(t, "run", "--rm", "-e", "GREETING=hi", base, "sh", "-c", "echo $GREETING $NGINX_VERSION; id -u")
	if !strings.HasPrefix(out, "hi 1.") || !strings.HasSuffix(strings.TrimSpace(out), "0") {
		t.Errorf("run IMAGE CMD -e: %q", out)
	}
}

// TestDockerNames: a name with capitals (docker's grammar) works with every
// command; the kernel objects carry a lower-case form with a hash suffix.
func TestDockerNames(t *testing.T) {
	base := nginxBase(t)
	const name = "ctlab-Test.Caps_A"
	ctl("rm", "-f", name).Run()
	kname := strings.TrimSpace(ctlOK(t, "run", "-d", "--name", name, base))
	defer ctl("rm", "-f", name).Run()
	if !regexp.MustCompile(`^ctlab-test\.caps_a-[0-9a-f]{8}$`).MatchString(kname) {
		t.Fatalf("kernel name %q", kname)
	}
	if _, err := os.Stat("/run/ctlab/containers/" + kname + ".json"); err != nil {
		t.Fatal(err)
	}
	if out := ctlOK(t, "exec", name, "--", "cat", "/etc/nginx/nginx.conf"); !strings.Contains(out, "listen 80") {
		t.Errorf("exec by docker name: %q", out)
	}
	ctlOK(t, "rm", "-f", name)
	if _, err := os.Stat("/run/ctlab/containers/" + kname + ".json"); err == nil {
		t.Error("rm by docker name left the container")
	}
	if err := ctl("run", "--name=_bad", base).Run(); exitCodeOf(err) != 2 {
		t.Errorf("a name outside docker's grammar: exit %d, want 2", exitCodeOf(err))
	}
}

// TestCreateCpStartRestart: the course's "build, then copy out" method and
// docker's lifecycle: create (no kernel objects), cp out and in, start,
// files survive restart and stop+start, rm removes the saved layers.
func TestCreateCpStartRestart(t *testing.T) {
	base := nginxBase(t)
	const name = "ctlab-test-Created"
	ctl("rm", "-f", name).Run()
	kname := strings.TrimSpace(ctlOK(t, "create", "--name", name, base))
	defer ctl("rm", "-f", name).Run()
	if ps := ctlOK(t, "ps", "-a"); !regexp.MustCompile(kname + `\s+-\s+created`).MatchString(ps) {
		t.Fatalf("ps -a:\n%s", ps)
	}
	if _, err := os.Stat("/run/ctlab/containers/" + kname + ".json"); err == nil {
		t.Fatal("create made a container")
	}
	if err := ctl("create", "--name", name, base).Run(); exitCodeOf(err) != 2 {
		t.Errorf("create with a name in use: exit %d, want 2", exitCodeOf(err))
	}
	dir := t.TempDir()
	ctlOK(t, "cp", name+":/etc/nginx", dir)
	if _, err := os.Stat(filepath.Join(dir, "nginx", "nginx.conf")); err != nil {
		t.Fatalf("cp of a directory out of a created container: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("in"), 0o644)
	ctlOK(t, "cp", filepath.Join(dir, "in.txt"), name+":/root/in.txt")
	ctlOK(t, "start", name)
	ctlOK(t, "exec", name, "--", "sh", "-c", "echo kept > /root/kept.txt")
	ctlOK(t, "restart", "-t", "2", name)
	for _, f := range []string{"/root/in.txt", "/root/kept.txt"} {
		if out := ctlOK(t, "exec", name, "--", "cat", f); out == "" {
			t.Errorf("%s lost across restart", f)
		}
	}
	ctlOK(t, "stop", name)
	ctlOK(t, "start", name)
	if out := ctlOK(t, "exec", name, "--", "cat", "/root/kept.txt"); out != "kept\n" {
		t.Errorf("after stop+start: %q", out)
	}
	ctlOK(t, "rm", "-f", name)
	if _, err := os.Stat("/var/lib/ctlab/saved/" + kname); err == nil {
		t.Error("rm left the saved layers")
	}
}
