package http1

import "testing"

// TestValidValue checks the eight-at-a-time check against the byte table
// for every byte at every position of a word.
func TestValidValue(t *testing.T) {
	for c := range 256 {
		for pos := range 11 {
			b := []byte("abcdefghijk")
			b[pos] = byte(c)
			if got, want := validValue(b), all(b, &valueChars); got != want {
				t.Fatalf("byte %#x at %d: %v, want %v", c, pos, got, want)
			}
		}
	}
}

func FuzzValidValue(f *testing.F) {
	f.Add([]byte("text/html; charset=utf-8"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validValue(b), all(b, &valueChars); got != want {
			t.Fatalf("%q: %v, want %v", b, got, want)
		}
	})
}
