package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// A container that is created but not started, or that exited and is
// started again, is kept as a saved record: its config and its saved
// upper layers. `start` stacks those layers (top-most first) over the
// image's as overlay lowerdirs and gives the new container a fresh
// upperdir, so nothing written before is lost.
type savedContainer struct {
	Name       string              `json:"name"` // kernel name
	Image      string              `json:"image,omitempty"`
	Args       []string            `json:"args"`
	Env        []string            `json:"env"`
	Cwd        string              `json:"cwd,omitempty"`
	Namespaces []sandbox.Namespace `json:"namespaces"`
	Hostname   string              `json:"hostname,omitempty"`
	Limits     cgroups.Limits      `json:"limits"`
	Net        bool                `json:"net"`
	Lowers     []string            `json:"lowers"` // image (or rootfs) layers, top-most first
	Saved      []string            `json:"saved"`  // saved upper layers, top-most first
	Created    time.Time           `json:"created"`
}

func savedDir(name string) string { return filepath.Join(sandbox.DataDir, "saved", name) }

func loadSaved(name string) (*savedContainer, error) {
	b, err := os.ReadFile(filepath.Join(savedDir(name), "config.json"))
	if err != nil {
		return nil, err
	}
	var s savedContainer
	return &s, json.Unmarshal(b, &s)
}

func (s *savedContainer) save() error {
	if err := os.MkdirAll(savedDir(s.Name), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	return os.WriteFile(filepath.Join(savedDir(s.Name), "config.json"), b, 0o600)
}

// removeSaved deletes a container's saved record and layers (ctlab rm).
func removeSaved(name string) bool {
	if _, err := os.Stat(savedDir(name)); err != nil {
		return false
	}
	return os.RemoveAll(savedDir(name)) == nil
}

func newCreateCmd() *cobra.Command {
	var name string
	var env []string
	var net bool
	cmd := &cobra.Command{
		Use:   "create [--name NAME] [-e K=V] [--net] IMAGE [CMD...]",
		Short: "Create a container from an image without starting it",
		Long: `create records the container's configuration (the image's entrypoint, cmd,
env and workdir, or the CMD you give) and an empty layer of its own under
/var/lib/ctlab/saved/NAME: no namespace, cgroup or process exists yet.
ctlab cp works on it (the "build, then copy out" method); ctlab start makes
the kernel objects, with that layer stacked over the image's.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				name = fmt.Sprintf("c%x", time.Now().UnixNano()&0xffffffff)
			}
			kname := kernelName(name)
			if err := sandbox.ValidName(kname); err != nil {
				return err
			}
			if _, err := sandbox.Load(kname); err == nil {
				return &sandbox.InputError{Problem: fmt.Sprintf("the name %q is already in use", name), Fix: "ctlab rm " + name}
			}
			if _, err := loadSaved(kname); err == nil {
				return &sandbox.InputError{Problem: fmt.Sprintf("the name %q is already in use by a created container", name), Fix: "ctlab rm " + name}
			}
			cfg := sandbox.Config{Name: kname, Namespaces: append([]sandbox.Namespace(nil), sandbox.AllNamespaces...)}
			sub := &cobra.Command{}
			sub.Flags().StringArrayP("env", "e", env, "")
			sub.Flags().String("rootfs", "", "")
			sub.Flags().String("ns", "", "")
			sub.Flags().String("name", "", "")
			sub.SetContext(cmd.Context())
			sub.SetErr(cmd.ErrOrStderr())
			if err := applyImage(sub, &cfg, args); err != nil {
				return storeErr(err)
			}
			if len(cfg.Layers) == 0 {
				return &sandbox.InputError{Problem: fmt.Sprintf("no image %s in the store", args[0]), Fix: "see ctlab images"}
			}
			upper := filepath.Join(savedDir(kname), "layer-0")
			if err := os.MkdirAll(upper, 0o755); err != nil {
				return err
			}
			s := &savedContainer{Name: kname, Image: args[0], Args: cfg.Args, Env: cfg.Env, Cwd: cfg.Cwd, Namespaces: cfg.Namespaces,
				Net: net, Lowers: cfg.Layers, Saved: []string{upper}, Created: time.Now()}
			if err := s.save(); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), kname)
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&name, "name", "", "container name (docker's grammar)")
	cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "set K=V in its environment")
	cmd.Flags().BoolVar(&net, "net", false, "add a veth pair when started")
	return cmd
}

// savedFromExited saves an exited container's upperdir as a layer, removes
// the container, and returns the record start needs.
func savedFromExited(ctx context.Context, c *sandbox.Container) (*savedContainer, error) {
	s, err := loadSaved(c.Name)
	if err != nil {
		s = &savedContainer{Name: c.Name, Args: c.Args, Env: c.Env, Namespaces: c.Namespaces, Hostname: c.Hostname,
			Limits: c.Limits, Net: c.Net != nil, Lowers: c.Layout.Lower, Created: c.Created}
		var r imageRecord
		if b, err := os.ReadFile(imageRecordPath(c.Name)); err == nil && json.Unmarshal(b, &r) == nil {
			s.Image, s.Cwd = r.Image, r.Cwd
		}
	}
	dst := filepath.Join(savedDir(c.Name), fmt.Sprintf("layer-%d", len(s.Saved)))
	if err := os.MkdirAll(savedDir(c.Name), 0o700); err != nil {
		return nil, err
	}
	if err := overlay.CommitDir(c.Layout, dst); err != nil {
		return nil, err
	}
	s.Saved = append([]string{dst}, s.Saved...)
	if err := s.save(); err != nil {
		return nil, err
	}
	if err := c.Remove(ctx, true); err != nil {
		return nil, err
	}
	return s, nil
}

// startSaved starts a created or exited container again, detached.
func startSaved(ctx context.Context, name string) error {
	var s *savedContainer
	if c, err := sandbox.Load(name); err == nil {
		if c.Running() {
			return nil
		}
		if s, err = savedFromExited(ctx, c); err != nil {
			return fmt.Errorf("save %s's upperdir: %w", name, err)
		}
	} else if s, err = loadSaved(name); err != nil {
		return &sandbox.InputError{Problem: fmt.Sprintf("no container %q", name), Fix: "see ctlab ps -a"}
	}
	cfg := sandbox.Config{
		Name: s.Name, Namespaces: s.Namespaces, Hostname: s.Hostname, Layers: append(append([]string(nil), s.Saved...), s.Lowers...),
		Args: s.Args, Env: s.Env, Cwd: s.Cwd, Limits: s.Limits, Net: s.Net, Detach: true,
	}
	if _, err := sandbox.Start(ctx, cfg); err != nil {
		return err
	}
	return nil
}

func newStartCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "start NAME...",
		Short: "Start a created or exited container again, with its config and its files",
		Long: `start makes the kernel objects of a created container, or of an exited one
again: its upperdir is first copied into a saved layer (whiteouts and opaque
markers kept), the old container is removed, and a new one with the same
command, env, namespaces, limits and network stacks that layer over the
image's, so the files it wrote are still there. It runs detached
(ctlab logs NAME).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range args {
				if err := startSaved(cmd.Context(), kernelName(n)); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
}

func newRestartCmd() *cobra.Command {
	var secs int
	cmd := &cobra.Command{
		Use:   "restart [-t SECONDS] NAME...",
		Short: "Stop, then start containers (files kept)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range args {
				c, err := loadContainer(n)
				if err != nil {
					return err
				}
				stopContainer(c, secs)
				if err := startSaved(cmd.Context(), c.Name); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&secs, "time", "t", 10, "seconds to wait before SIGKILL")
	return cmd
}

// cpCreated copies out of or into a created container: its files are the
// image's layers plus its own saved layer, read through image.Merged.
func cpCreated(s *savedContainer, p, hostPath string, out bool) error {
	m, err := image.NewMerged(append(append([]string(nil), s.Saved...), s.Lowers...))
	if err != nil {
		return err
	}
	defer m.Close()
	if !out {
		dir := "/"
		if fi, err := m.Stat(path.Dir(path.Clean("/" + p))); err == nil && fi.Mode.IsDir() {
			dir = fi.Path
		} else {
			return &sandbox.InputError{Problem: fmt.Sprintf("%s: no directory %s in the container", s.Name, path.Dir(p))}
		}
		target := filepath.Join(s.Saved[0], dir, path.Base(p))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return copyTree(hostPath, target)
	}
	return copyMergedOut(m, path.Clean("/"+p), hostPath)
}

func copyMergedOut(m *image.Merged, p, dst string) error {
	fi, err := m.Stat(p)
	if err != nil {
		return &sandbox.InputError{Problem: fmt.Sprintf("%s: %v", p, err)}
	}
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		dst = filepath.Join(dst, path.Base(p))
	}
	if fi.Mode.IsDir() {
		if err := os.MkdirAll(dst, fi.Mode.Perm()); err != nil {
			return err
		}
		names, err := m.ReadDir(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := copyMergedOut(m, path.Join(p, n), filepath.Join(dst, n)); err != nil {
				return err
			}
		}
		return nil
	}
	if !fi.Mode.IsRegular() {
		return nil
	}
	data, trunc, err := m.ReadFile(p, 1<<30)
	if err != nil {
		return err
	}
	if trunc {
		return fmt.Errorf("%s is larger than 1 GiB", p)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode.Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(f, strings.NewReader(string(data)))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// createdContainers lists saved records without a container (ctlab ps).
func createdContainers() []*savedContainer {
	ents, _ := os.ReadDir(filepath.Join(sandbox.DataDir, "saved"))
	var out []*savedContainer
	for _, e := range ents {
		if _, err := sandbox.Load(e.Name()); err == nil {
			continue
		}
		if s, err := loadSaved(e.Name()); err == nil {
			out = append(out, s)
		}
	}
	return out
}
