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

func TestValidHost(t *testing.T) {
	for v, want := range map[string]bool{
		"": true, "shop": true, "shop.local:8080": true, "127.0.0.1:1": true, "[::1]:80": true, "[::1]": true,
		"a%41b": true, "a:": true, "a b": false, "a:b": false, "a%4": false, "[::1": false, "[::1]x": false,
		"a]": false, "a:1:2": false, "a/b": false, "a@b": false,
	} {
		if got := validHost([]byte(v)); got != want {
			t.Errorf("validHost(%q) = %v, want %v", v, got, want)
		}
	}
}
