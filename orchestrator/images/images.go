// Package images builds Flotilla's container images from the Flotilla source
// tree, on the local engine, because there is no registry to pull from.
//
// Each image is images/<name>/Dockerfile (FROM scratch) plus one static Go
// binary compiled here. An image is tagged <repository><name>:<hash[:12]>,
// where the hash covers every input that shapes it, so Ensure rebuilds
// exactly when a source file changed and otherwise reuses what is there.
package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/replica"
)

// ModulePath is the module whose checkout holds the image sources.
const ModulePath = "github.com/flotilla/flotilla"

// DefaultRepository prefixes image names in tags: flotilla-shop:<hash>.
const DefaultRepository = "flotilla-"

// Image is one of Flotilla's images.
type Image struct {
	// Name is the folder under images/ holding its Dockerfile, and the
	// name of its binary in the build context.
	Name string
	// Main is the Go package compiled into the binary, relative to the source root.
	Main string
	// Sources are folders, relative to the source root, whose files feed
	// the binary; with go.mod, go.sum and images/<Name>/ they make the
	// content hash.
	Sources []string
}

// All are the images Flotilla runs.
var All = []Image{
	{Name: "shop", Main: "./cmd/shop", Sources: []string{"cmd/shop", "sample-services"}},
	// The bus embeds the NATS server: an image of its own, so the shop's
	// binary does not carry a broker.
	{Name: "bus", Main: "./cmd/bus", Sources: []string{"cmd/bus", "sample-services/bus", "sample-services/internal"}},
}

// Builder is what Ensure needs of an engine; *docker.Driver is one.
type Builder interface {
	// FindImage returns the ID of the image tagged tag if it exists and
	// carries every label in labels, and an error wrapping
	// replica.ErrNotFound otherwise.
	FindImage(ctx context.Context, tag string, labels map[string]string) (string, error)
	// BuildImage builds req and returns the new image's ID; a failed build
	// is an error.
	BuildImage(ctx context.Context, req docker.BuildRequest) (string, error)
}

// Options configure Ensure.
type Options struct {
	// Source is the root of the Flotilla checkout; default FindSource(".").
	Source string
	// Progress receives one line per step and the builder's output; nil discards.
	Progress io.Writer
	// Repository prefixes image names in tags; default DefaultRepository.
	Repository string
	// Labels are extra labels set on built images and required of found ones.
	Labels map[string]string
	// Prune removes older images of the same repository and labels that no
	// container uses, once the current one is there. It needs a Builder
	// that is also a Pruner; a failure to prune is reported, not returned.
	Prune bool
}

// withDefaults fills in what opts leave unset.
func (opts Options) withDefaults() (Options, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Repository == "" {
		opts.Repository = DefaultRepository
	}
	if opts.Source == "" {
		src, err := FindSource(".")
		if err != nil {
			return opts, err
		}
		opts.Source = src
	}
	return opts, nil
}

// Pruner removes outdated images; *docker.Driver is one.
type Pruner interface {
	// PruneImages removes the images req names that no container uses and
	// returns their tags.
	PruneImages(ctx context.Context, req docker.PruneRequest) ([]string, error)
}

// Ensure makes sure every image of All exists for the current sources,
// building what is missing or outdated, and returns each image's reference
// (its tag) by name.
func Ensure(ctx context.Context, b Builder, opts Options) (map[string]string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	refs := make(map[string]string, len(All))
	for _, img := range All {
		ref, err := ensure(ctx, b, img, opts)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		refs[img.Name] = ref
		pruneOlder(ctx, b, img, ref, opts)
	}
	return refs, nil
}

// upToDate reports whether the image tagged tag, with labels, is already
// built; an error other than its absence is returned.
func upToDate(ctx context.Context, b Builder, tag string, labels map[string]string, progress io.Writer) (bool, error) {
	_, err := b.FindImage(ctx, tag, labels)
	switch {
	case err == nil:
		fmt.Fprintf(progress, "image %s is up to date\n", tag)
		return true, nil
	case errors.Is(err, replica.ErrNotFound):
		return false, nil
	}
	return false, err
}

// pruneOlder removes img's older builds when opts ask for it and b can:
// every source change makes a new tag, and without this they pile up on
// the engine.
func pruneOlder(ctx context.Context, b Builder, img Image, current string, opts Options) {
	p, ok := b.(Pruner)
	if !ok || !opts.Prune {
		return
	}
	labels := maps.Clone(opts.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[docker.LabelImage] = img.Name
	removed, err := p.PruneImages(ctx, docker.PruneRequest{Prefix: opts.Repository + img.Name + ":", Keep: current, Labels: labels})
	for _, tag := range removed {
		fmt.Fprintf(opts.Progress, "removed outdated image %s\n", tag)
	}
	if err != nil {
		fmt.Fprintf(opts.Progress, "could not remove every outdated %s image: %v\n", img.Name, err)
	}
}

func ensure(ctx context.Context, b Builder, img Image, opts Options) (string, error) {
	hash, err := ContentHash(opts.Source, img)
	if err != nil {
		return "", err
	}
	tag := Tag(opts.Repository, img.Name, hash)
	labels := Labels(img.Name, hash, opts.Labels)
	if found, err := upToDate(ctx, b, tag, labels, opts.Progress); found || err != nil {
		return tag, err
	}

	tmp, err := os.MkdirTemp("", "flotilla-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	binary := filepath.Join(tmp, img.Name)
	if err := compile(ctx, opts.Source, img, binary, opts.Progress); err != nil {
		return "", err
	}
	req, err := buildRequest(opts.Source, img, tag, labels, binary)
	if err != nil {
		return "", err
	}
	req.Progress = opts.Progress
	fmt.Fprintf(opts.Progress, "building image %s...\n", tag)
	start := time.Now()
	id, err := b.BuildImage(ctx, req)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(opts.Progress, "built image %s (%s) in %s\n", tag, shortID(id), time.Since(start).Round(time.Millisecond))
	return tag, nil
}

// Tag is <repository><name>:<hash[:12]>.
func Tag(repository, name, hash string) string {
	if len(hash) > 12 {
		hash = hash[:12]
	}
	return repository + name + ":" + hash
}

// Labels are the labels of the image name built from content hash, plus extra.
func Labels(name, hash string, extra map[string]string) map[string]string {
	l := maps.Clone(extra)
	if l == nil {
		l = map[string]string{}
	}
	l[docker.LabelManaged] = "true"
	l[docker.LabelImage] = name
	l[docker.LabelContentHash] = hash
	return l
}

// targetArch is the architecture binaries are built for: the engine runs
// Linux on this machine's architecture (Docker Desktop included) unless
// GOARCH says otherwise.
func targetArch() string {
	if a := os.Getenv("GOARCH"); a != "" {
		return a
	}
	return runtime.GOARCH
}

// compile builds img's static binary into out with the go tool in source.
func compile(ctx context.Context, source string, img Image, out string, progress io.Writer) error {
	fmt.Fprintf(progress, "building %s binary...\n", img.Name)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, img.Main)
	cmd.Dir = source
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+targetArch())
	output, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("build %s binary: the go tool is not on PATH; it is needed to build Flotilla's images: %w", img.Name, err)
		}
		return fmt.Errorf("build %s binary: %w\n%s", img.Name, err, strings.TrimSpace(string(output)))
	}
	fmt.Fprintf(progress, "built %s binary in %s\n", img.Name, time.Since(start).Round(time.Millisecond))
	return nil
}

// buildRequest assembles the build context: the Dockerfile, the other files
// of images/<name>/, and the binary under the image's name.
func buildRequest(source string, img Image, tag string, labels map[string]string, binary string) (docker.BuildRequest, error) {
	dir := filepath.Join(source, "images", img.Name)
	dockerfile, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		return docker.BuildRequest{}, fmt.Errorf("read Dockerfile: %w", err)
	}
	files := map[string]docker.FileSpec{}
	extra, err := imageDirFiles(source, img)
	if err != nil {
		return docker.BuildRequest{}, err
	}
	for _, rel := range extra {
		name := strings.TrimPrefix(rel, "images/"+img.Name+"/")
		files[name] = docker.FileSpec{Path: filepath.Join(source, filepath.FromSlash(rel))}
	}
	files[img.Name] = docker.FileSpec{Path: binary, Mode: 0o755}
	return docker.BuildRequest{Tag: tag, Dockerfile: dockerfile, Files: files, Labels: labels}, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}
