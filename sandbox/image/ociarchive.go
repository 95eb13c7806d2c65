package image

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var blobName = regexp.MustCompile(`^blobs/sha256/[0-9a-f]{64}$`)

// openOCIArchive reads an OCI layout stored in a tar without unpacking it
// blindly: only "oci-layout", "index.json" and "blobs/sha256/<hex>" regular
// files are considered (links, devices, other names are ignored or refused,
// so nothing in the archive can point outside it, ggcr#2306). Small blobs
// (manifests, configs) are copied into a private temp layout that ggcr's
// layout package reads; big blobs (layers) are read in place from the tar
// through a section reader, so a 1 GB image is not copied before grading.
func openOCIArchive(ref, p string) (*Image, error) {
	f, err := openRegular(p)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "ctlab-oci-archive-")
	if err != nil {
		f.Close()
		return nil, err
	}
	cleanup := func() { f.Close(); os.RemoveAll(tmp) }
	inPlace, err := scanOCIArchive(f, tmp)
	if err != nil {
		cleanup()
		return nil, err
	}
	open := func(h v1.Hash) (io.ReadCloser, bool, error) {
		sec, ok := inPlace[h.Hex]
		if !ok || h.Algorithm != "sha256" {
			return nil, false, nil
		}
		return io.NopCloser(io.NewSectionReader(f, sec[0], sec[1])), true, nil
	}
	im, err := openBlobLayout(ref, FormatOCIArchive, tmp, open)
	if err != nil {
		cleanup()
		return nil, err
	}
	im.cleanup = append(im.cleanup, cleanup)
	return im, nil
}

// scanOCIArchive copies metadata-sized files into dir and returns the
// offset and size of each larger blob inside f.
func scanOCIArchive(f *os.File, dir string) (map[string][2]int64, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o700); err != nil {
		return nil, err
	}
	inPlace := map[string][2]int64{}
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read oci-archive: %w", ErrInvalidLayer, err)
		}
		if n > 100_000 {
			return nil, fmt.Errorf("%w: oci-archive has more than 100000 entries", ErrLimit)
		}
		name := path.Clean(strings.TrimLeft(hdr.Name, "/"))
		if name != "oci-layout" && name != "index.json" && !blobName.MatchString(name) {
			continue
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			return nil, fmt.Errorf("%w: %s in the oci-archive is not a regular file", ErrInvalidLayer, Quote(hdr.Name))
		}
		if hdr.Size > maxMetaBytes && blobName.MatchString(name) {
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, fmt.Errorf("locate blob: %w", err)
			}
			inPlace[path.Base(name)] = [2]int64{off, hdr.Size}
			continue
		}
		if hdr.Size > maxMetaBytes {
			return nil, fmt.Errorf("%w: %s is %d bytes", ErrLimit, name, hdr.Size)
		}
		out, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(name)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(out, io.LimitReader(tr, hdr.Size))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", name, err)
		}
	}
	return inPlace, nil
}
