package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/ctlab/ctlab/sandbox/image"
)

// A class registry on loopback, so `pull` and `push` run offline: the
// registry protocol server of go-containerregistry (pkg/registry), in
// ctlab's own process, listening on 127.0.0.1. It keeps blobs in memory
// and stops at the scenario's reset (or dies with the process: nothing is
// left behind).

// registries holds each scenario's running registries by `as` name.
var registries = struct {
	sync.Mutex
	m map[string]map[string]*loopRegistry
}{m: map[string]map[string]*loopRegistry{}}

type loopRegistry struct {
	addr string // 127.0.0.1:PORT
	srv  *http.Server
}

// registry returns a running registry of the scenario.
func (e *Engine) registry(as string) (*loopRegistry, error) {
	registries.Lock()
	defer registries.Unlock()
	if r := registries.m[e.s.ID][as]; r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("registry %s is not running", as)
}

// stopRegistries shuts the scenario's registries down (a reset).
func (e *Engine) stopRegistries() {
	registries.Lock()
	rs := registries.m[e.s.ID]
	delete(registries.m, e.s.ID)
	registries.Unlock()
	for _, r := range rs {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = r.srv.Shutdown(ctx)
		cancel()
	}
}

// remoteRef is where image tag of the scenario lives in registry r.
func (e *Engine) remoteRef(r *loopRegistry, tag string) string {
	return r.addr + "/" + e.s.ID + "/" + tag + ":latest"
}

// registryRef opens the store and names image in the scenario's registry.
func (e *Engine) registryRef(reg, img string) (*image.Store, string, error) {
	r, err := e.registry(reg)
	if err != nil {
		return nil, "", err
	}
	s, err := image.OpenStore("", nil)
	if err != nil {
		return nil, "", err
	}
	return s, e.remoteRef(r, img), nil
}

// RegistryStart starts a registry on 127.0.0.1 (a free port).
type RegistryStart struct {
	As string `yaml:"as" json:"as"`
}

func (a *RegistryStart) validate(v *validator) {
	if !nameRE.MatchString(a.As) || v.targets[a.As] != "" {
		v.errf("as %q: want a new lower-case name", a.As)
		return
	}
	v.targets[a.As] = "registry"
}

func (a *RegistryStart) do(_ context.Context, e *Engine) (string, *int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("registry: %w", err)
	}
	r := &loopRegistry{addr: ln.Addr().String(),
		srv: &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = r.srv.Serve(ln) }()
	registries.Lock()
	if registries.m[e.s.ID] == nil {
		registries.m[e.s.ID] = map[string]*loopRegistry{}
	}
	old := registries.m[e.s.ID][a.As]
	registries.m[e.s.ID][a.As] = r
	registries.Unlock()
	if old != nil {
		_ = old.srv.Close()
	}
	return fmt.Sprintf("registry %s listening on http://%s (loopback)\n", a.As, r.addr), nil, nil
}

// ImagePush is `ctlab push --insecure`: a store image to a registry of
// the scenario, as <addr>/<scenario>/<image>:latest.
type ImagePush struct {
	Image    string `yaml:"image" json:"image"`
	Registry string `yaml:"registry" json:"registry"`
}

func (a *ImagePush) validate(v *validator) {
	v.target(a.Image, "image")
	v.target(a.Registry, "registry")
}

func (a *ImagePush) do(ctx context.Context, e *Engine) (string, *int, error) {
	s, ref, err := e.registryRef(a.Registry, a.Image)
	if err != nil {
		return "", nil, err
	}
	if err := s.Push(ctx, e.imageName(a.Image), ref, image.RemoteOptions{Insecure: true}); err != nil {
		return "", nil, err
	}
	return "pushed " + ref + "\n", nil, nil
}

// ImagePull is `ctlab pull --insecure`: manifest, config and layer blobs
// from a registry of the scenario into the store, named <scenario>-<as>.
type ImagePull struct {
	Registry string `yaml:"registry" json:"registry"`
	Image    string `yaml:"image" json:"image"`
	As       string `yaml:"as" json:"as"`
}

func (a *ImagePull) validate(v *validator) {
	v.target(a.Registry, "registry")
	if !nameRE.MatchString(a.Image) {
		v.errf("image %q: want the name it was pushed as", a.Image)
	}
	defineImage(v, a.As)
}

func (a *ImagePull) do(ctx context.Context, e *Engine) (string, *int, error) {
	s, ref, err := e.registryRef(a.Registry, a.Image)
	if err != nil {
		return "", nil, err
	}
	ent, err := s.Pull(ctx, ref, image.RemoteOptions{Insecure: true})
	if err != nil {
		return "", nil, err
	}
	// The store names a pulled image by its reference; the lesson's name
	// carries the scenario's, so a reset removes it.
	if _, err := s.Tag(ctx, ref, e.imageName(a.As)); err != nil {
		return "", nil, err
	}
	if _, err := s.Remove(ctx, ref, false); err != nil && !errors.Is(err, image.ErrNotInStore) {
		return "", nil, err
	}
	return fmt.Sprintf("pulled %s\nDigest: %s\n", ref, ent.Digest), nil, nil
}

// RegistryHas: the registry serves the image's manifest
// (GET /v2/<scenario>/<image>/manifests/latest answers 200).
type RegistryHas struct {
	Registry string `yaml:"registry" json:"registry"`
	Image    string `yaml:"image" json:"image"`
}

func (c *RegistryHas) validate(v *validator) {
	v.target(c.Registry, "registry")
	if !nameRE.MatchString(c.Image) {
		v.errf("image %q: want a lower-case name", c.Image)
	}
}

func (c *RegistryHas) eval(ctx context.Context, e *Engine) Evidence {
	r, err := e.registry(c.Registry)
	if err != nil {
		return failed(c.Registry, "registry", err)
	}
	url := fmt.Sprintf("http://%s/v2/%s/%s/manifests/latest", r.addr, e.s.ID, c.Image)
	ev := Evidence{Target: c.Registry, Source: "HEAD " + url, Expected: "200"}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return failed(c.Registry, ev.Source, err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return failed(c.Registry, ev.Source, err)
	}
	resp.Body.Close()
	ev.Actual = resp.Status
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" {
		ev.Actual += ", " + d
	}
	ev.Pass = resp.StatusCode == http.StatusOK
	return ev
}
