package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// rawHeader builds one ustar header block by hand, for entries the stdlib
// writer refuses to produce (PAX sparse headers).
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", 1700000000))
	b[156] = typ
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func paxRecord(k, v string) string {
	rec := fmt.Sprintf(" %s=%s\n", k, v)
	n := len(rec)
	for {
		s := fmt.Sprintf("%d%s", n, rec)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

func pad(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// sparseTar is a layer with one PAX 0.1 sparse file of the given apparent
// size whose only data is an 'x' in its last byte.
func sparseTar(name string, size int64) []byte {
	recs := paxRecord("GNU.sparse.size", fmt.Sprint(size)) + paxRecord("GNU.sparse.numblocks", "1") +
		paxRecord("GNU.sparse.map", fmt.Sprintf("%d,1", size-1)) + paxRecord("GNU.sparse.name", name)
	var buf bytes.Buffer
	buf.Write(rawHeader("PaxHeaders/"+name, 'x', int64(len(recs))))
	buf.Write(pad([]byte(recs)))
	buf.Write(rawHeader(name, '0', 1))
	buf.Write(pad([]byte{'x'}))
	buf.Write(make([]byte, 1024))
	return buf.Bytes()
}

// TestSparseGiant: a PAX 0.1 sparse entry claiming 1 TiB with no stored
// data is refused by the apparent-size cap before anything is written
// (security-checklist row 36).
func TestSparseGiant(t *testing.T) {
	data := sparseTar("giant", 1<<40)
	c := newCanary(t)
	cache, _ := NewCache(c.cache, Limits{MaxFileBytes: 1 << 20})
	_, err := cache.Unpack(context.Background(), &BytesSource{ID: sha(data), Data: data})
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("want the size cap to refuse a 1 TiB sparse file, got %v", err)
	}
	c.check(t)
}
