package rootfs

// ELFDeps returns what the ELF files at paths need to start, transitively:
// program interpreters and DT_NEEDED libraries, as the loader opens them
// (not symlink-resolved), each once. Non-ELF files need nothing. The image
// importer uses it to make a package's binaries runnable without the rest
// of the host.
func ELFDeps(paths []string) ([]string, error) {
	d := newELFDeps()
	var out []string
	for _, p := range paths {
		deps, err := d.deps(p)
		if err != nil {
			return nil, err
		}
		out = append(out, deps...)
	}
	return out, nil
}
