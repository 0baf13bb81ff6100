package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/flotilla/flotilla/orchestrator/replica"
)

// FileSpec is one file of a build context: read from Path on disk, or Data
// when Path is empty.
type FileSpec struct {
	Path string
	Data []byte
	// Mode is the file's permission bits; default 0644.
	Mode fs.FileMode
}

// BuildRequest is an image to build from a Dockerfile and a handful of files.
// There is no directory context: only the files named here are sent, so a
// build never depends on what else lies around.
type BuildRequest struct {
	// Tag names the image, e.g. "flotilla-shop:0123456789ab".
	Tag        string
	Dockerfile []byte
	// Files maps a slash-separated name in the context to its content.
	Files map[string]FileSpec
	// Labels are set on the image; LabelManaged=true is always added.
	Labels map[string]string
	// Progress receives the builder's output; nil discards it.
	Progress io.Writer
}

// contextEpoch is every file's modification time in a build context, so the
// same inputs make the same context.
var contextEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// writeBuildContext writes req's Dockerfile and files to w as a tar stream,
// in sorted order with fixed ownership and times.
func writeBuildContext(w io.Writer, req BuildRequest) error {
	tw := tar.NewWriter(w)
	files := map[string]FileSpec{"Dockerfile": {Data: req.Dockerfile}}
	for name, f := range req.Files {
		clean := path.Clean(name)
		if clean == "." || strings.HasPrefix(clean, "../") || clean == ".." || path.IsAbs(clean) {
			return fmt.Errorf("build context: file name %q leaves the context", name)
		}
		if clean == "Dockerfile" {
			return fmt.Errorf("build context: %q is reserved for the Dockerfile", name)
		}
		files[clean] = f
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, name := range names {
		for _, dir := range parentDirs(name) {
			if dirs[dir] {
				continue
			}
			dirs[dir] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: contextEpoch}); err != nil {
				return err
			}
		}
		if err := writeContextFile(tw, name, files[name]); err != nil {
			return fmt.Errorf("build context: %s: %w", name, err)
		}
	}
	return tw.Close()
}

// parentDirs returns "a", "a/b" for "a/b/c".
func parentDirs(name string) []string {
	var out []string
	for i, r := range name {
		if r == '/' {
			out = append(out, name[:i])
		}
	}
	return out
}

func writeContextFile(tw *tar.Writer, name string, f FileSpec) error {
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(mode), ModTime: contextEpoch}
	if f.Path == "" {
		hdr.Size = int64(len(f.Data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(f.Data)
		return err
	}
	file, err := os.Open(f.Path)
	if err != nil {
		return err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.Path)
	}
	hdr.Size = st.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, file)
	return err
}

// BuildImage builds req with the engine's classic builder (BuildKit needs a
// session and is not what every engine has), streaming the context from
// memory and disk, and returns the image ID. An error in the build output
// is an error here.
func (d *Driver) BuildImage(ctx context.Context, req BuildRequest) (string, error) {
	if req.Tag == "" {
		return "", errors.New("build image: a tag is required")
	}
	op := "build image " + req.Tag
	labels := map[string]string{}
	for k, v := range req.Labels {
		labels[k] = v
	}
	labels[LabelManaged] = managedValue
	label, err := labelInstruction(labels)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	// The classic builder turns each build-time label into its own step,
	// and each step is a container; one LABEL line is one step.
	body := bytes.TrimRight(req.Dockerfile, "\n")
	req.Dockerfile = append(append(append(make([]byte, 0, len(body)+1+len(label)), body...), '\n'), label...)

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeBuildContext(pw, req)) }()
	defer pr.Close() // unblocks the writer if the engine stops reading

	resp, err := d.cli.ImageBuild(ctx, pr, build.ImageBuildOptions{
		Tags:        []string{req.Tag},
		Dockerfile:  "Dockerfile",
		Version:     build.BuilderV1,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return "", translate(op, err)
	}
	defer resp.Body.Close()
	id, err := readBuildOutput(resp.Body, req.Progress)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	// Older engines do not report the ID in the stream; the tag knows it.
	if id == "" {
		img, err := d.cli.ImageInspect(ctx, req.Tag)
		if err != nil {
			return "", translate(op+": inspect result", err)
		}
		id = img.ID
	}
	return id, nil
}

// labelInstruction is one Dockerfile LABEL line setting labels, in sorted order.
func labelInstruction(labels map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("LABEL")
	for _, k := range keys {
		v := labels[k]
		if k == "" || strings.ContainsAny(k, " \t\r\n=\"'\\$") || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("label %q=%q cannot be set", k, v)
		}
		// Dockerfile double quotes take backslash escapes; escape $ too, so
		// a value is never expanded as a variable.
		v = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(v)
		fmt.Fprintf(&b, " %s=\"%s\"", k, v)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// readBuildOutput decodes the builder's JSON message stream, copies its text
// to progress and returns the built image's ID, or the first error message.
func readBuildOutput(r io.Reader, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	dec := json.NewDecoder(r)
	var id string
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return id, nil
			}
			return id, fmt.Errorf("read build output: %w", err)
		}
		if m.Error != nil && m.Error.Message != "" {
			return id, fmt.Errorf("build failed: %s", strings.TrimSpace(m.Error.Message))
		}
		if m.ErrorMessage != "" { //nolint:staticcheck // old engines only set this
			return id, fmt.Errorf("build failed: %s", strings.TrimSpace(m.ErrorMessage)) //nolint:staticcheck
		}
		if m.Stream != "" {
			_, _ = io.WriteString(progress, m.Stream)
		}
		if m.Aux != nil {
			var aux build.Result
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
}

// FindImage returns the ID of the image tagged tag if it carries
// LabelManaged=true and every label in labels; otherwise replica.ErrNotFound, so a
// stale or foreign image of the same tag is never mistaken for ours.
func (d *Driver) FindImage(ctx context.Context, tag string, labels map[string]string) (string, error) {
	img, err := d.cli.ImageInspect(ctx, tag)
	if err != nil {
		return "", translate("find image "+tag, err)
	}
	var have map[string]string
	if img.Config != nil {
		have = img.Config.Labels
	}
	want := map[string]string{LabelManaged: managedValue}
	for k, v := range labels {
		want[k] = v
	}
	if !hasLabels(have, want) {
		return "", fmt.Errorf("find image %s: %w: it exists but lacks the expected labels", tag, replica.ErrNotFound)
	}
	return img.ID, nil
}

// RemoveImages removes every image that carries LabelManaged=true and all of
// labels, with their untagged parents. An image still used by a container
// is left, and reported as an error.
func (d *Driver) RemoveImages(ctx context.Context, labels map[string]string) error {
	f := filters.NewArgs(filters.Arg("label", LabelManaged+"="+managedValue))
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	imgs, err := d.cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		return translate("list images", err)
	}
	want := map[string]string{LabelManaged: managedValue}
	for k, v := range labels {
		want[k] = v
	}
	var errs []error
	for _, img := range imgs {
		if !hasLabels(img.Labels, want) {
			continue
		}
		// Untag each name rather than force-removing the ID: the last
		// untag deletes the image, and an image in use stays.
		refs := img.RepoTags
		if len(refs) == 0 || (len(refs) == 1 && refs[0] == "<none>:<none>") {
			refs = []string{img.ID}
		}
		for _, ref := range refs {
			_, err := d.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
			if err != nil && !isSDKNotFound(err) {
				errs = append(errs, translate("remove image "+ref, err))
			}
		}
	}
	return errors.Join(errs...)
}
