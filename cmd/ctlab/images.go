package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/charmbracelet/x/term"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/build"
	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/sandbox/rootfs"
)

// The image store's commands, with docker's names and flags. Each Long text
// says what happens on disk and in the kernel.

const storeHelp = "\n" + `
The store is an OCI image layout in /var/lib/ctlab/images (index.json names
the images, blobs/sha256/ holds manifests, configs and gzip layers). Layers
are unpacked once per diffID into /var/lib/ctlab/layers, the cache the
grader shares; a container stacks those directories as overlay lowerdirs.`

// addImageCommands registers the docker-style image commands on root.
func addImageCommands(root *cobra.Command) {
	img := &cobra.Command{
		Use:   "image",
		Short: "Manage images in ctlab's store (ls, rm, tag, inspect, history, prune, import-packages, ...)",
		Long:  "image groups the image commands, as docker image does." + storeHelp,
	}
	ls := newImagesCmd()
	ls.Use, ls.Aliases = "ls", []string{"list"}
	rm := newRmiCmd()
	rm.Use = "rm [-f] IMAGE..."
	img.AddCommand(ls, rm, newTagCmd(), newHistoryCmd(), newImageInspectCmd(), newImagePruneCmd(),
		newImportPackagesCmd(), newSaveCmd(), newPullCmd(), newPushCmd(), newImageLoadCmd())
	addLifecycleCommands(root)
	root.AddCommand(img, newBuildCmd(), newImagesCmd(), newRmiCmd(), newTagCmd(), newHistoryCmd(), newSaveCmd(), newPullCmd(), newPushCmd())
}

func openStore() (*image.Store, error) {
	return image.OpenStore("", nil)
}

// storeErr makes "no such image" an input error (exit status 2).
func storeErr(err error) error {
	if errors.Is(err, image.ErrNotInStore) {
		return &sandbox.InputError{Problem: err.Error()}
	}
	return err
}

func progressFor(w io.Writer) *image.Progress {
	live := false
	if f, ok := w.(*os.File); ok {
		live = term.IsTerminal(f.Fd())
	}
	return &image.Progress{W: w, Live: live}
}

// ago prints a time the way docker's CREATED column does.
func ago(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
	return fmt.Sprintf("%d months ago", int(d.Hours()/24/30))
}

func splitName(n string) (repo, tag string) {
	if n == "" {
		return "<none>", "<none>"
	}
	i := strings.LastIndex(n, ":")
	return n[:i], n[i+1:]
}

func newImagesCmd() *cobra.Command {
	var asJSON, quiet bool
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the images in ctlab's store",
		Long: `images lists every name in the store's index.json with its image ID (the
sha256 of the config blob, first 12 digits), when it was created and its size
(the sum of its compressed layer blobs).` + storeHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore()
			if err != nil {
				return err
			}
			all, err := s.List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			if quiet {
				for _, e := range all {
					fmt.Fprintln(out, e.ShortID())
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			for _, e := range all {
				repo, tag := splitName(e.Name)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", repo, tag, e.ShortID(), ago(e.Created), image.HumanSize(e.Size))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print image IDs only")
	return cmd
}

func newRmiCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [-f] IMAGE...",
		Short: "Remove image names from the store",
		Long: `rmi removes a name from the store's index.json. Given an image ID it removes
every name of that image (-f when there are several). Blobs and unpacked
layers stay until ctlab image prune: a running container may still have
those layers as its overlay lowerdirs.` + storeHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore()
			if err != nil {
				return err
			}
			for _, a := range args {
				removed, err := s.Remove(cmd.Context(), a, force)
				if err != nil {
					return storeErr(err)
				}
				for _, n := range removed {
					if n == "" {
						n = a
					}
					fmt.Fprintln(cmd.OutOrStdout(), "Untagged:", n)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove every name of an image given by ID")
	return cmd
}

func newTagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE TARGET_IMAGE[:TAG]",
		Short: "Give an image in the store another name",
		Long: `tag adds a descriptor to the store's index.json that points at the same
manifest blob, annotated with the new name: nothing is copied.` + storeHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore()
			if err != nil {
				return err
			}
			if _, err := image.NormalizeName(args[1]); err != nil {
				return usageError{err}
			}
			_, err = s.Tag(cmd.Context(), args[0], args[1])
			return storeErr(err)
		},
	}
}

func newHistoryCmd() *cobra.Command {
	var noTrunc bool
	cmd := &cobra.Command{
		Use:   "history IMAGE",
		Short: "Show the steps that made an image, with each layer's size",
		Long: `history prints the config's history, newest first: the instruction that
created each step and the size of the layer it added (0B for steps that only
changed the config: ENV, CMD, EXPOSE...). A RUN that deletes a file adds a
layer with a whiteout, so the image does not shrink: the file is still in the
layer below.` + storeHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore()
			if err != nil {
				return err
			}
			im, err := s.Open(args[0])
			if err != nil {
				return storeErr(err)
			}
			return printHistory(cmd.OutOrStdout(), im, noTrunc)
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not shorten CREATED BY")
	return cmd
}

func printHistory(w io.Writer, im *image.Image, noTrunc bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tCREATED\tCREATED BY\tSIZE")
	hist := im.Config.History
	li := 0
	type row struct{ layer, created, by, size string }
	var rows []row
	for _, h := range hist {
		r := row{layer: "-", created: ago(h.Created.Time), by: h.CreatedBy, size: "0B"}
		if !h.EmptyLayer && li < len(im.Manifest.Layers) {
			r.layer = im.Manifest.Layers[li].Digest.Hex[:12]
			r.size = image.HumanSize(im.Manifest.Layers[li].Size)
			li++
		}
		if !noTrunc && len(r.by) > 60 {
			r.by = r.by[:57] + "..."
		}
		rows = append(rows, r)
	}
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.layer, r.created, strings.ReplaceAll(r.by, "\t", " "), r.size)
	}
	return tw.Flush()
}

// inspectJSON is docker image inspect's shape, for the fields ctlab has.
type inspectJSON struct {
	ID           string    `json:"Id"`
	RepoTags     []string  `json:"RepoTags"`
	Digest       string    `json:"ManifestDigest"`
	Created      time.Time `json:"Created"`
	Architecture string    `json:"Architecture"`
	Os           string    `json:"Os"`
	Size         int64     `json:"Size"`
	Config       v1.Config `json:"Config"`
	RootFS       struct {
		Type   string   `json:"Type"`
		Layers []string `json:"Layers"`
	} `json:"RootFS"`
	Blobs []v1.Descriptor `json:"LayerBlobs"`
}

func newImageInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show an image's config and layers",
		Long: `inspect reads the image's manifest and config blobs from the store: the run
configuration (entrypoint, cmd, env, workdir, user, ports, stop signal) and,
per layer, its diffID (sha256 of the uncompressed tar, the name of its
directory in the layer cache) and its blob digest and size.` + storeHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore()
			if err != nil {
				return err
			}
			im, err := s.Open(args[0])
			if err != nil {
				return storeErr(err)
			}
			var j inspectJSON
			j.ID, j.Digest = im.Manifest.Config.Digest.String(), im.Digest.String()
			all, _ := s.List()
			for _, e := range all {
				if e.Digest == im.Digest && e.Name != "" {
					j.RepoTags = append(j.RepoTags, e.Name)
				}
			}
			cf := im.Config
			j.Created, j.Architecture, j.Os, j.Config = cf.Created.Time, cf.Architecture, cf.OS, cf.Config
			j.RootFS.Type = "layers"
			for i, d := range cf.RootFS.DiffIDs {
				j.RootFS.Layers = append(j.RootFS.Layers, d.String())
				j.Size += im.Manifest.Layers[i].Size
			}
			j.Blobs = im.Manifest.Layers
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode([]inspectJSON{j})
			}
			return printInspect(cmd.OutOrStdout(), j)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (docker image inspect's fields)")
	return cmd
}

func printInspect(w io.Writer, j inspectJSON) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	q := func(s []string) string { b, _ := json.Marshal(s); return string(b) }
	c := j.Config
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	for _, kv := range [][2]string{
		{"Names", strings.Join(j.RepoTags, ", ")}, {"ID", j.ID}, {"Manifest", j.Digest},
		{"Created", j.Created.Format(time.RFC3339)}, {"Platform", j.Os + "/" + j.Architecture},
		{"Entrypoint", q(c.Entrypoint)}, {"Cmd", q(c.Cmd)}, {"Env", strings.Join(c.Env, " ")},
		{"WorkingDir", c.WorkingDir}, {"User", c.User}, {"ExposedPorts", strings.Join(ports, " ")},
		{"StopSignal", c.StopSignal}, {"Size", image.HumanSize(j.Size)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	fmt.Fprintln(tw, "Layers (bottom first):")
	for i, d := range j.RootFS.Layers {
		fmt.Fprintf(tw, "  %d\tdiffID %s\tblob %s\t%s\n", i, d, j.Blobs[i].Digest, image.HumanSize(j.Blobs[i].Size))
	}
	return tw.Flush()
}

func newImagePruneCmd() *cobra.Command {
	var buildCache bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove blobs and unpacked layers no image in the store uses",
		Long: `prune deletes the blobs in blobs/sha256/ that no name in index.json reaches,
and the unpacked layer directories in /var/lib/ctlab/layers that no store
image lists and no mounted overlay uses (read from /proc/self/mountinfo).
The grader shares that cache: it unpacks a graded image again next time.` + storeHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore()
			if err != nil {
				return err
			}
			rep, err := s.Prune(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted %d blobs (%s) and %d unpacked layers (%s)\n",
				rep.Blobs, image.HumanSize(rep.BlobBytes), rep.Layers, image.HumanSize(rep.LayerBytes))
			if buildCache {
				n, size, err := build.PruneCache("")
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted %d build cache layers (%s)\n", n, image.HumanSize(size))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&buildCache, "build-cache", false, "also empty ctlab build's layer cache (/var/lib/ctlab/build-cache), like docker builder prune")
	return cmd
}

func newImportPackagesCmd() *cobra.Command {
	var tag string
	cmd := &cobra.Command{
		Use:   "import-packages --tag NAME[:TAG] PACKAGE...",
		Short: "Build a base image offline from Debian packages installed on this host",
		Long: `import-packages makes a base image without a registry: layer 1 is ctlab's
default rootfs (busybox: sh, sed, ...), layer 2 the files dpkg lists for each
PACKAGE (/var/lib/dpkg/info/PACKAGE.list, plus installed packages built from
the same source, e.g. nginx-common) and the shared libraries their ELF files
need (PT_INTERP and DT_NEEDED, as the loader finds them). For nginx it adds
the official image's config: nginx.conf serving /usr/share/nginx/html on
port 80, CMD ["nginx","-g","daemon off;"], EXPOSE 80, STOPSIGNAL SIGQUIT.
Online, ctlab pull nginx:latest fetches the official image instead.` + storeHelp,
		Example: `  sudo apt-get install nginx && sudo ctlab image import-packages --tag nginx:latest nginx`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tag == "" {
				return usageError{errors.New("--tag NAME[:TAG] is required")}
			}
			if _, err := image.NormalizeName(tag); err != nil {
				return usageError{err}
			}
			s, err := openStore()
			if err != nil {
				return err
			}
			base, err := rootfs.Ensure(cmd.Context(), "default", filepath.Join(sandbox.DataDir, "rootfs"), rootfs.Owner{})
			if err != nil {
				return err
			}
			tmp, err := os.MkdirTemp(s.Root, ".import-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			b, err := image.PackageImport{Packages: args, RootfsDir: base, TmpDir: tmp}.Import(cmd.Context())
			if err != nil {
				return &sandbox.InputError{Problem: err.Error()}
			}
			img, err := b.Image()
			if err != nil {
				return err
			}
			e, err := s.Put(cmd.Context(), img, []string{tag}, progressFor(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%d layers, %s)\n", e.Name, e.ShortID(), e.Layers, image.HumanSize(e.Size))
			return nil
		},
	}
	cmd.Flags().StringVarP(&tag, "tag", "t", "", "name for the image, e.g. nginx:latest")
	return cmd
}

func newSaveCmd() *cobra.Command {
	var out, format string
	cmd := &cobra.Command{
		Use:   "save -o FILE [--format docker-archive|oci-archive|oci-dir] IMAGE...",
		Short: "Write images to a tar file (docker save) or an OCI layout",
		Long: `save copies images out of the store: docker-archive (default) is what docker
load, podman load and skopeo read (manifest.json, config, one blob per layer);
oci-archive is an OCI image layout in a tar; oci-dir the layout directory
itself (umoci unpack --image DIR:TAG).` + storeHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("-o FILE is required")}
			}
			switch format {
			case image.SaveDockerArchive, image.SaveOCIArchive, image.SaveOCIDir:
			default:
				return usageError{fmt.Errorf("unknown --format %q: use docker-archive, oci-archive or oci-dir", format)}
			}
			s, err := openStore()
			if err != nil {
				return err
			}
			return storeErr(s.Save(cmd.Context(), args, format, out))
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file (or directory for oci-dir) to write")
	cmd.Flags().StringVar(&format, "format", image.SaveDockerArchive, "docker-archive, oci-archive or oci-dir")
	return cmd
}

// runImageLoad is `ctlab load -i FILE`: load shares its name with the load
// generators (ctlab load cpu|mem|...), which stay subcommands.
func runImageLoad(cmd *cobra.Command, file string) error {
	s, err := openStore()
	if err != nil {
		return err
	}
	got, err := s.Load(cmd.Context(), file, progressFor(cmd.ErrOrStderr()))
	if err != nil {
		return &sandbox.InputError{Problem: fmt.Sprintf("load %s: %v", file, err)}
	}
	for _, e := range got {
		n := e.Name
		if n == "" {
			n = "ID sha256:" + e.ID.Hex
		}
		fmt.Fprintln(cmd.OutOrStdout(), "Loaded image:", n)
	}
	return nil
}

const loadHelp = `load -i FILE reads a docker-save tar, an oci-archive or an OCI layout
directory and adds its images to the store under the names they carry:
layer blobs are checked against their digests and written beside the
others (blobs the store has are skipped).`

// addImageLoadFlag gives the load generators' parent command docker's
// "load -i FILE"; without -i it prints its help as before.
func addImageLoadFlag(load *cobra.Command) {
	var file string
	load.Flags().StringVarP(&file, "input", "i", "", "load images from a docker-save tar, oci-archive or OCI layout directory")
	load.Long += "\n\nImages: " + loadHelp + storeHelp
	load.Example = "  sudo ctlab load -i hello.tar          # docker load -i\n  /.ctlab/ctlab load cpu --seconds 5    # a load generator, inside a container"
	load.Args = cobra.NoArgs
	load.RunE = func(cmd *cobra.Command, args []string) error {
		if file == "" {
			return cmd.Help()
		}
		return runImageLoad(cmd, file)
	}
}

func newImageLoadCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "load -i FILE",
		Short: "Load images from a tar file or an OCI layout",
		Long:  loadHelp + storeHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageError{errors.New("-i FILE is required")}
			}
			return runImageLoad(cmd, file)
		},
	}
	cmd.Flags().StringVarP(&file, "input", "i", "", "docker-save tar, oci-archive or OCI layout directory")
	return cmd
}

const remoteHelp = "\n" + `
HTTP_PROXY, HTTPS_PROXY and NO_PROXY are honoured (loopback is never
proxied); credentials come from ~/.docker/config.json. --insecure allows
plain HTTP and unverified TLS, for a class registry.`

func newPullCmd() *cobra.Command {
	var insecure bool
	cmd := &cobra.Command{
		Use:   "pull NAME[:TAG]",
		Short: "Download an image from a registry into the store",
		Long: `pull speaks the registry protocol (go-containerregistry's remote): it fetches
the manifest (for this machine's platform from a multi-platform index), then
each layer blob not already in the store, checking every digest.` + remoteHelp + storeHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore()
			if err != nil {
				return err
			}
			e, err := s.Pull(cmd.Context(), args[0], image.RemoteOptions{Insecure: insecure, Progress: progressFor(cmd.ErrOrStderr())})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Digest: %s\nStatus: downloaded %s\n", e.Digest, e.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS")
	return cmd
}

func newPushCmd() *cobra.Command {
	var insecure bool
	cmd := &cobra.Command{
		Use:   "push IMAGE [DEST]",
		Short: "Upload an image from the store to a registry",
		Long: `push uploads each layer blob the registry does not have, then the config and
the manifest, to DEST (default: the image's own name, e.g. localhost:5000/hello:v1).` + remoteHelp + storeHelp,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore()
			if err != nil {
				return err
			}
			dst := ""
			if len(args) == 2 {
				dst = args[1]
			}
			return storeErr(s.Push(cmd.Context(), args[0], dst, image.RemoteOptions{Insecure: insecure, Progress: progressFor(cmd.ErrOrStderr())}))
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS")
	return cmd
}
