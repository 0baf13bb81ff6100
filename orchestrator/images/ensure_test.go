package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

// fakeBuilder keeps images in memory, as tag → labels.
type fakeBuilder struct {
	images   map[string]map[string]string
	builds   []docker.BuildRequest
	binaries map[string][]byte // what each build's context held under the image name
	findErr  error
}

func (f *fakeBuilder) FindImage(_ context.Context, tag string, labels map[string]string) (string, error) {
	if f.findErr != nil {
		return "", f.findErr
	}
	have, ok := f.images[tag]
	if !ok {
		return "", fmt.Errorf("find image %s: %w", tag, replica.ErrNotFound)
	}
	for k, v := range labels {
		if have[k] != v {
			return "", fmt.Errorf("find image %s: label %s: %w", tag, k, replica.ErrNotFound)
		}
	}
	return "sha256:" + tag, nil
}

func (f *fakeBuilder) BuildImage(_ context.Context, req docker.BuildRequest) (string, error) {
	f.builds = append(f.builds, req)
	if f.images == nil {
		f.images = map[string]map[string]string{}
		f.binaries = map[string][]byte{}
	}
	// The binary lives in a temp dir that Ensure removes: read it now.
	for name, fs := range req.Files {
		if fs.Path != "" {
			data, err := os.ReadFile(fs.Path)
			if err != nil {
				return "", err
			}
			f.binaries[name] = data
		}
	}
	f.images[req.Tag] = req.Labels
	return "sha256:" + req.Tag, nil
}

func TestEnsureBuildsOnceThenReuses(t *testing.T) {
	root := fakeSource(t)
	b := &fakeBuilder{}
	var progress bytes.Buffer
	opts := Options{Source: root, Progress: &progress, Repository: "test-", Labels: map[string]string{"run": "r1"}}

	refs, err := Ensure(context.Background(), b, opts)
	if err != nil {
		t.Fatalf("Ensure: %v\n%s", err, progress.String())
	}
	hash, _ := ContentHash(root, shopImage)
	wantTag := "test-shop:" + hash[:12]
	busHash, _ := ContentHash(root, busImage)
	busTag := "test-bus:" + busHash[:12]
	if refs["shop"] != wantTag || refs["bus"] != busTag || len(refs) != len(All) {
		t.Fatalf("refs = %v, want shop → %s, bus → %s", refs, wantTag, busTag)
	}
	if len(b.builds) != 2 {
		t.Fatalf("%d builds, want 2", len(b.builds))
	}
	req := b.builds[0]
	if req.Tag != wantTag || string(req.Dockerfile) != "FROM scratch\nCOPY shop /shop\n" {
		t.Errorf("request tag %q, Dockerfile %q", req.Tag, req.Dockerfile)
	}
	if f, ok := req.Files["shop"]; !ok || f.Mode != 0o755 || len(req.Files) != 1 {
		t.Errorf("context files = %+v, want just an executable shop", req.Files)
	}
	// The bus's context holds its binary and the files of images/bus/.
	busReq := b.builds[1]
	if f, ok := busReq.Files["bus"]; !ok || f.Mode != 0o755 || busReq.Tag != busTag {
		t.Errorf("bus request %s, files %+v; want an executable bus", busReq.Tag, busReq.Files)
	}
	if _, ok := busReq.Files["data/README"]; !ok || len(busReq.Files) != 2 {
		t.Errorf("bus context files = %+v, want bus and data/README", busReq.Files)
	}
	for _, name := range []string{"shop", "bus"} {
		if bin := b.binaries[name]; !bytes.HasPrefix(bin, []byte("\x7fELF")) {
			t.Errorf("the %s binary is not a Linux executable (%d bytes)", name, len(bin))
		}
	}
	for k, v := range map[string]string{docker.LabelManaged: "true", docker.LabelImage: "shop", docker.LabelContentHash: hash, "run": "r1"} {
		if req.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, req.Labels[k], v)
		}
	}
	if busReq.Labels[docker.LabelImage] != "bus" || busReq.Labels[docker.LabelContentHash] != busHash {
		t.Errorf("bus labels = %v", busReq.Labels)
	}
	for _, line := range []string{"building shop binary...", "built shop binary in", "building image " + wantTag, "built image " + wantTag, "built image " + busTag} {
		if !strings.Contains(progress.String(), line) {
			t.Errorf("progress lacks %q:\n%s", line, progress.String())
		}
	}

	progress.Reset()
	if _, err := Ensure(context.Background(), b, opts); err != nil {
		t.Fatal(err)
	}
	if len(b.builds) != 2 {
		t.Errorf("an up-to-date image was rebuilt")
	}
	if !strings.Contains(progress.String(), "image "+wantTag+" is up to date") {
		t.Errorf("progress = %q", progress.String())
	}

	// Different extra labels are a different image: it must be built.
	opts.Labels = map[string]string{"run": "r2"}
	if _, err := Ensure(context.Background(), b, opts); err != nil {
		t.Fatal(err)
	}
	if len(b.builds) != 4 {
		t.Errorf("an image without the asked labels was reused")
	}

	// A changed source is a new tag.
	writeFile(t, root, "sample-services/catalog/catalog.go", "package catalog\n\nconst Name = \"new\"\n")
	refs2, err := Ensure(context.Background(), b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if refs2["shop"] == refs["shop"] || len(b.builds) != 5 {
		t.Errorf("after a change: ref %s (was %s), %d builds", refs2["shop"], refs["shop"], len(b.builds))
	}
	if refs2["bus"] != refs["bus"] {
		t.Errorf("a change to the catalog rebuilt the bus: %s → %s", refs["bus"], refs2["bus"])
	}
}

func TestEnsureErrors(t *testing.T) {
	root := fakeSource(t)
	unavailable := fmt.Errorf("find: %w", replica.ErrUnavailable)
	_, err := Ensure(context.Background(), &fakeBuilder{findErr: unavailable}, Options{Source: root})
	if !errors.Is(err, replica.ErrUnavailable) {
		t.Errorf("err = %v, want the builder's error", err)
	}

	writeFile(t, root, "cmd/shop/main.go", "package main\n\nfunc main() { undefined() }\n")
	b := &fakeBuilder{}
	_, err = Ensure(context.Background(), b, Options{Source: root})
	if err == nil || !strings.Contains(err.Error(), "build shop binary") || !strings.Contains(err.Error(), "undefined") {
		t.Errorf("err = %v, want the compiler's message", err)
	}
	if len(b.builds) != 0 {
		t.Error("an image was built without a binary")
	}

	_, err = Ensure(context.Background(), b, Options{Source: t.TempDir()})
	if err == nil {
		t.Error("a source tree without go.mod was accepted")
	}
}

// pruningBuilder records what it is asked to prune.
type pruningBuilder struct {
	fakeBuilder
	asked []docker.PruneRequest
}

func (p *pruningBuilder) PruneImages(_ context.Context, req docker.PruneRequest) ([]string, error) {
	p.asked = append(p.asked, req)
	return []string{req.Prefix + "0ld"}, nil
}

func TestEnsurePrunesOnlyWhenAsked(t *testing.T) {
	root := fakeSource(t)
	b := &pruningBuilder{}
	opts := Options{Source: root, Repository: "test-", Labels: map[string]string{"run": "r1"}}
	if _, err := Ensure(context.Background(), b, opts); err != nil {
		t.Fatal(err)
	}
	if len(b.asked) != 0 {
		t.Fatalf("pruned without Prune: %+v", b.asked)
	}

	var progress bytes.Buffer
	opts.Prune, opts.Progress = true, &progress
	refs, err := Ensure(context.Background(), b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.asked) != len(All) {
		t.Fatalf("asked to prune %d times, want once per image", len(b.asked))
	}
	got := b.asked[0]
	if got.Prefix != "test-shop:" || got.Keep != refs["shop"] || got.Labels["run"] != "r1" || got.Labels[docker.LabelImage] != "shop" {
		t.Errorf("prune request %+v; want prefix test-shop:, keep %s, labels run=r1 and image=shop", got, refs["shop"])
	}
	if !strings.Contains(progress.String(), "removed outdated image test-shop:0ld") {
		t.Errorf("progress does not report the removal:\n%s", progress.String())
	}
}
