package images

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (slash-separated path → content) under a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		writeFile(t, root, name, content)
	}
	return root
}

func writeFile(t *testing.T, root, name, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeSource is a minimal Flotilla checkout: a module with a shop and a bus
// command that build, and each image's Dockerfile and files.
func fakeSource(t *testing.T) string {
	return writeTree(t, map[string]string{
		"go.mod":                                  "module github.com/flotilla/flotilla // the real one\n\ngo 1.22\n",
		"images/shop/Dockerfile":                  "FROM scratch\nCOPY shop /shop\n",
		"cmd/shop/main.go":                        "package main\n\nimport \"github.com/flotilla/flotilla/sample-services/catalog\"\n\nfunc main() { println(catalog.Name) }\n",
		"cmd/shop/main_test.go":                   "package main\n",
		"sample-services/catalog/catalog.go":      "package catalog\n\nconst Name = \"catalog\"\n",
		"sample-services/catalog/testdata/x.json": "{}",
		"orchestrator/other.go":                   "package orchestrator\n",
		"images/bus/Dockerfile":                   "FROM scratch\nCOPY bus /bus\nCOPY data/README /data/README\n",
		"images/bus/data/README":                  "the store\n",
		"cmd/bus/main.go":                         "package main\n\nimport \"github.com/flotilla/flotilla/sample-services/bus\"\n\nfunc main() { println(bus.Name) }\n",
		"sample-services/internal/httpjson/x.go":  "package httpjson\n",
		"sample-services/bus/bus.go":              "package bus\n\nconst Name = \"bus\"\n",
	})
}

var (
	shopImage = Image{Name: "shop", Main: "./cmd/shop", Sources: []string{"cmd/shop", "sample-services"}}
	busImage  = Image{Name: "bus", Main: "./cmd/bus", Sources: []string{"cmd/bus", "sample-services/bus", "sample-services/internal"}}
)

func TestFindSource(t *testing.T) {
	root := fakeSource(t)
	// A nested module of another path must be walked past.
	writeFile(t, root, "tools/go.mod", "module example.com/tools\n")
	writeFile(t, root, "tools/deep/er/x.txt", "")
	for _, start := range []string{root, filepath.Join(root, "tools", "deep", "er"), filepath.Join(root, "cmd", "shop")} {
		got, err := FindSource(start)
		if err != nil || got != root {
			t.Errorf("FindSource(%s) = %q, %v; want %q", start, got, err, root)
		}
	}

	other := writeTree(t, map[string]string{"go.mod": "module github.com/flotilla/flotilla-fork\n"})
	_, err := FindSource(other)
	if !errors.Is(err, ErrNoSource) {
		t.Fatalf("err = %v, want ErrNoSource", err)
	}
	if !strings.Contains(err.Error(), "run from the Flotilla checkout, or pass --source") {
		t.Errorf("err = %q lacks the advice", err)
	}
}

func TestModulePath(t *testing.T) {
	tests := map[string]string{
		"module github.com/flotilla/flotilla\n":             "github.com/flotilla/flotilla",
		"// c\nmodule   \"github.com/flotilla/flotilla\"\n": "github.com/flotilla/flotilla",
		"module github.com/flotilla/flotilla // x\n":        "github.com/flotilla/flotilla",
		"modules x\n": "",
		"go 1.22\n":   "",
		"":            "",
	}
	for in, want := range tests {
		if got := modulePath([]byte(in)); got != want {
			t.Errorf("modulePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContentHash(t *testing.T) {
	root := fakeSource(t)
	base, err := ContentHash(root, shopImage)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := ContentHash(root, shopImage); again != base {
		t.Fatalf("hash is not stable: %s then %s", base, again)
	}

	files, err := hashedFiles(root, shopImage)
	if err != nil {
		t.Fatal(err)
	}
	want := "cmd/shop/main.go go.mod images/shop/Dockerfile sample-services/bus/bus.go sample-services/catalog/catalog.go sample-services/internal/httpjson/x.go"
	if got := strings.Join(files, " "); got != want {
		t.Errorf("hashed files = %s, want %s", got, want)
	}
	// The bus's hash covers its own folders and the files beside its
	// Dockerfile, not the shop's.
	busFiles, err := hashedFiles(root, busImage)
	if err != nil {
		t.Fatal(err)
	}
	wantBus := "cmd/bus/main.go go.mod images/bus/Dockerfile images/bus/data/README sample-services/bus/bus.go sample-services/internal/httpjson/x.go"
	if got := strings.Join(busFiles, " "); got != wantBus {
		t.Errorf("bus hashed files = %s, want %s", got, wantBus)
	}

	// Each of these changes what the image holds, so each must change the hash.
	changes := []struct {
		name string
		file string
		data string
	}{
		{"service source", "sample-services/catalog/catalog.go", "package catalog\n\nconst Name = \"katalog\"\n"},
		{"new service file", "sample-services/catalog/extra.go", "package catalog\n"},
		{"embedded asset", "sample-services/catalog/page.html", "<p>hi</p>"},
		{"command source", "cmd/shop/main.go", "package main\n\nfunc main() {}\n"},
		{"Dockerfile", "images/shop/Dockerfile", "FROM scratch\nCOPY shop /bin/shop\n"},
		{"image folder file", "images/shop/passwd", "nobody:x:65534:65534:::\n"},
		{"go.mod", "go.mod", "module github.com/flotilla/flotilla\n\ngo 1.23\n"},
		{"go.sum", "go.sum", "example.com/x v1.0.0 h1:abc=\n"},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			root := fakeSource(t)
			writeFile(t, root, c.file, c.data)
			got, err := ContentHash(root, shopImage)
			if err != nil {
				t.Fatal(err)
			}
			if got == base {
				t.Errorf("changing %s left the hash at %s", c.file, got)
			}
		})
	}

	// These cannot reach the binary, so they must not force a rebuild.
	same := []struct {
		name string
		file string
	}{
		{"test file", "sample-services/catalog/catalog_test.go"},
		{"testdata", "sample-services/catalog/testdata/y.json"},
		{"hidden file", "cmd/shop/.main.go.swp"},
		{"file outside the sources", "orchestrator/more.go"},
	}
	for _, c := range same {
		t.Run("not "+c.name, func(t *testing.T) {
			root := fakeSource(t)
			writeFile(t, root, c.file, "package x\n")
			if got, _ := ContentHash(root, shopImage); got != base {
				t.Errorf("adding %s changed the hash", c.file)
			}
		})
	}

	// A path and content are kept apart: moving bytes between them must show.
	renamed := fakeSource(t)
	if err := os.Rename(filepath.Join(renamed, "sample-services/catalog/catalog.go"), filepath.Join(renamed, "sample-services/catalog/catalog2.go")); err != nil {
		t.Fatal(err)
	}
	if got, _ := ContentHash(renamed, shopImage); got == base {
		t.Error("renaming a file left the hash unchanged")
	}

	other := shopImage
	other.Name = "shop2"
	writeFile(t, root, "images/shop2/Dockerfile", "FROM scratch\nCOPY shop /shop\n")
	if got, _ := ContentHash(root, other); got == base {
		t.Error("the image name is not part of the hash")
	}
}

func TestContentHashErrors(t *testing.T) {
	root := fakeSource(t)
	if _, err := ContentHash(root, Image{Name: "nope", Main: "./cmd/nope"}); err == nil || !strings.Contains(err.Error(), "no Dockerfile") {
		t.Errorf("missing Dockerfile: err = %v", err)
	}
	missing := shopImage
	missing.Sources = []string{"cmd/shop", "no-such-dir"}
	if _, err := ContentHash(root, missing); err == nil {
		t.Error("a missing source folder was accepted")
	}
}

func TestTagAndLabels(t *testing.T) {
	hash := "0123456789abcdef0123"
	if got := Tag("flotilla-", "shop", hash); got != "flotilla-shop:0123456789ab" {
		t.Errorf("Tag = %q", got)
	}
	extra := map[string]string{"x": "y"}
	l := Labels("shop", hash, extra)
	want := map[string]string{"io.flotilla.managed": "true", "io.flotilla.image": "shop", "io.flotilla.content-hash": hash, "x": "y"}
	if len(l) != len(want) {
		t.Errorf("Labels = %v, want %v", l, want)
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("Labels[%s] = %q, want %q", k, l[k], v)
		}
	}
	if len(extra) != 1 {
		t.Error("Labels modified its argument")
	}
}
