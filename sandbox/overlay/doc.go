// Package overlay mounts overlayfs (lowerdirs, upperdir, workdir, merged) and reads back what the kernel wrote into the upperdir: copy-ups, whiteouts and opaque directories.
package overlay
