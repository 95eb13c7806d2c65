package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

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
	f.StringVar(&o.progress, "progress", "auto", "log style: auto or plain (ctlab prints the same plain log either way)")
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
	_, err = build.Build(ctx, build.Options{
		Context: dir, Dockerfile: o.file, Target: o.target, BuildArgs: bargs, NoCache: o.noCache,
		Network: o.netw, Tags: o.tags, Store: s, Log: cmd.OutOrStdout(),
		Remote: image.RemoteOptions{Insecure: o.insecure},
	})
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
