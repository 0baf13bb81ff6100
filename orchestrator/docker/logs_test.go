package docker

import (
	"bytes"
	"testing"
)

func TestLimitWriterKeepsTheFirstBytes(t *testing.T) {
	var buf bytes.Buffer
	w := &limitWriter{w: &buf, n: 5}
	if n, err := w.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("first write = %d, %v", n, err)
	}
	if n, err := w.Write([]byte("defgh")); n != 2 || err != errLogLimit {
		t.Fatalf("second write = %d, %v; want 2 and the limit", n, err)
	}
	if _, err := w.Write([]byte("x")); err != errLogLimit {
		t.Fatalf("write past the limit: %v", err)
	}
	if buf.String() != "abcde" {
		t.Errorf("kept %q, want abcde", buf.String())
	}
}
