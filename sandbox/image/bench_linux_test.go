package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkExtractEntries unpacks layers of many tiny files (row 37: time
// per entry must stay flat as the count grows: no superlinear walks), and
// one opaque directory with all of them as children plus plain whiteouts.
//
//	go test ./sandbox/image/ -run '^$' -bench ExtractEntries -benchtime 2x
func BenchmarkExtractEntries(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755})
		tw.WriteHeader(&tar.Header{Name: "d/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644})
		for i := 0; i < n; i++ {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d/s%03d/f%07d", i%512, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
			tw.Write([]byte{'x'})
			if i%10 == 0 {
				tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d/s%03d/.wh.gone%07d", i%512, i), Typeflag: tar.TypeReg, Mode: 0o644})
			}
		}
		tw.Close()
		data := buf.Bytes()
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				cache, err := NewCache(filepath.Join(dir, "c"), Limits{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := cache.Unpack(context.Background(), &BytesSource{ID: sha(data), Data: data}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
		})
	}
}
