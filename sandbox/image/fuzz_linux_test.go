package image

import (
	"archive/tar"
	"context"
	"os"
	"testing"
	"time"
)

// FuzzExtract feeds arbitrary bytes to the cache+extractor (modelled on
// containerd's FuzzApply) and adds the canary oracle: whatever the input,
// nothing outside the unpack root changes and no temp dir is left.
//
//	go test ./sandbox/image/ -run '^$' -fuzz FuzzExtract -fuzztime 60s
func FuzzExtract(f *testing.F) {
	seeds := [][]te{
		{file("a", "a")},
		{dir("etc"), symlink("localetc", "/etc"), file("localetc/x", "x")},
		{symlink("foo", "/"), file("foo/tmp/breakout-f", "x")},
		{symlink("s", "/etc/passwd"), hardlink("h", "s")},
		{file("../../x", "x")},
		{file("a/.wh..wh..opq", ""), file("a/.wh.b", ""), file("a/c", "c")},
		{dir("d"), file(".wh.d", ""), dir("d")},
		{{name: "dev/sda", typ: tar.TypeBlock, major: 8}},
	}
	for _, s := range seeds {
		f.Add(mkTar(f, s...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newCanary(t)
		cache, err := NewCache(c.cache, Limits{MaxTotalBytes: 8 << 20, MaxEntries: 2000, MaxDuration: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		u, err := cache.Unpack(context.Background(), &BytesSource{ID: sha(data), Data: data})
		if err == nil {
			// Whatever was created must be inside the layer dir; the walk
			// must not leave it (no symlink followed).
			if _, err := os.Lstat(u.Dir); err != nil {
				t.Fatalf("layer dir vanished: %v", err)
			}
		}
		c.check(t)
	})
}
