package docker

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteBuildContext(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "shop")
	if err := os.WriteFile(bin, []byte("\x7fELF binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	req := BuildRequest{
		Tag:        "x:y",
		Dockerfile: []byte("FROM scratch\nCOPY shop /shop\n"),
		Files: map[string]FileSpec{
			"shop":           {Path: bin, Mode: 0o755},
			"etc/passwd":     {Data: []byte("nobody:x:65534:65534::/:/shop\n")},
			"etc/ssl/ca.pem": {Data: []byte("pem")},
		},
	}
	var buf bytes.Buffer
	if err := writeBuildContext(&buf, req); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		typ  byte
		mode int64
		body string
	}
	got := map[string]entry{}
	var order []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		got[h.Name] = entry{h.Typeflag, h.Mode, string(body)}
		order = append(order, h.Name)
		if !h.ModTime.Equal(contextEpoch) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d, want fixed", h.Name, h.ModTime, h.Uid, h.Gid)
		}
	}
	want := map[string]entry{
		"Dockerfile":     {tar.TypeReg, 0o644, "FROM scratch\nCOPY shop /shop\n"},
		"etc/":           {tar.TypeDir, 0o755, ""},
		"etc/passwd":     {tar.TypeReg, 0o644, "nobody:x:65534:65534::/:/shop\n"},
		"etc/ssl/":       {tar.TypeDir, 0o755, ""},
		"etc/ssl/ca.pem": {tar.TypeReg, 0o644, "pem"},
		"shop":           {tar.TypeReg, 0o755, "\x7fELF binary"},
	}
	if len(got) != len(want) {
		t.Errorf("entries = %v, want %d", order, len(want))
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s = %+v (present %v), want %+v", name, g, ok, w)
		}
	}
	if want := "Dockerfile etc/ etc/passwd etc/ssl/ etc/ssl/ca.pem shop"; strings.Join(order, " ") != want {
		t.Errorf("order = %v, want %s", order, want)
	}
}

func TestWriteBuildContextRejectsEscapes(t *testing.T) {
	for _, name := range []string{"../x", "/etc/passwd", "a/../../x", "Dockerfile", "."} {
		err := writeBuildContext(io.Discard, BuildRequest{Files: map[string]FileSpec{name: {Data: []byte("x")}}})
		if err == nil {
			t.Errorf("%q: accepted", name)
		}
	}
	err := writeBuildContext(io.Discard, BuildRequest{Files: map[string]FileSpec{"x": {Path: filepath.Join(t.TempDir(), "missing")}}})
	if err == nil {
		t.Error("a missing file was accepted")
	}
}

func TestReadBuildOutput(t *testing.T) {
	ok := `{"stream":"Step 1/2 : FROM scratch\n"}
{"stream":" ---\u003e \n"}
{"aux":{"ID":"sha256:0123456789abcdef"}}
{"stream":"Successfully built 0123456789ab\n"}
`
	var progress bytes.Buffer
	id, err := readBuildOutput(strings.NewReader(ok), &progress)
	if err != nil || id != "sha256:0123456789abcdef" {
		t.Fatalf("id, err = %q, %v", id, err)
	}
	if !strings.Contains(progress.String(), "Step 1/2 : FROM scratch\n") || !strings.Contains(progress.String(), "Successfully built") {
		t.Errorf("progress = %q", progress.String())
	}

	failed := `{"stream":"Step 2/2 : COPY missing /x\n"}
{"errorDetail":{"message":"COPY failed: file not found in build context"},"error":"COPY failed: file not found in build context"}
`
	_, err = readBuildOutput(strings.NewReader(failed), nil)
	if err == nil || !strings.Contains(err.Error(), "COPY failed: file not found") {
		t.Errorf("err = %v, want the build's error", err)
	}

	_, err = readBuildOutput(strings.NewReader(`{"error":"old style failure"}`), nil)
	if err == nil || !strings.Contains(err.Error(), "old style failure") {
		t.Errorf("err = %v, want the old-style error", err)
	}

	_, err = readBuildOutput(strings.NewReader(`{"stream":"trunc`), nil)
	if err == nil {
		t.Error("a truncated stream was accepted")
	}
}

func TestLabelInstruction(t *testing.T) {
	got, err := labelInstruction(map[string]string{"b.x": `say "hi" $HOME \o/`, "a": "1", "c": ""})
	if err != nil {
		t.Fatal(err)
	}
	want := `LABEL a="1" b.x="say \"hi\" \$HOME \\o/" c=""` + "\n"
	if string(got) != want {
		t.Errorf("got  %s want %s", got, want)
	}
	for _, bad := range []map[string]string{{"": "x"}, {"a b": "x"}, {"a=b": "x"}, {"a": "line\nbreak"}} {
		if _, err := labelInstruction(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
