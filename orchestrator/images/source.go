package images

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoSource means no Flotilla checkout was found to build images from.
var ErrNoSource = errors.New("cannot find the Flotilla source tree to build images: run from the Flotilla checkout, or pass --source")

// FindSource walks up from start to the folder whose go.mod declares
// module ModulePath.
func FindSource(start string) (string, error) {
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", fmt.Errorf("%w (%v)", ErrNoSource, err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(data) == ModulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w (searched upwards from %s)", ErrNoSource, start)
		}
		dir = parent
	}
}

// modulePath returns the path of go.mod's module directive, or "".
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		rest, ok := strings.CutPrefix(line, "module")
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t' && rest[0] != '"') {
			continue
		}
		rest = strings.TrimSpace(rest)
		if p, err := strconv.Unquote(rest); err == nil {
			return p
		}
		return rest
	}
	return ""
}

// recipe names how images are made. Changing how they are compiled or
// assembled must change it, so old images are not taken for new ones.
const recipe = "flotilla-image/v1 CGO_ENABLED=0 -trimpath -ldflags=-s -w"

// ContentHash is the hex SHA-256 of everything that shapes img: its name,
// the build recipe and target, go.mod, go.sum, every file of images/<name>/
// and every file under its Sources, each as path and content, in sorted
// path order. Test files, testdata and hidden files are left out: they do not
// reach the binary. Non-Go files are included because a binary may embed them.
func ContentHash(source string, img Image) (string, error) {
	files, err := hashedFiles(source, img)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	writeField := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	writeField([]byte(recipe))
	writeField([]byte("linux/" + targetArch()))
	writeField([]byte(img.Name))
	writeField([]byte(img.Main))
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(source, filepath.FromSlash(rel)))
		if err != nil {
			return "", fmt.Errorf("content hash: %w", err)
		}
		writeField([]byte(rel))
		writeField(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashedFiles lists the inputs of img as sorted slash-separated paths
// relative to source.
func hashedFiles(source string, img Image) ([]string, error) {
	set := map[string]bool{"go.mod": true}
	if _, err := os.Stat(filepath.Join(source, "go.sum")); err == nil {
		set["go.sum"] = true
	}
	if _, err := os.Stat(filepath.Join(source, "go.mod")); err != nil {
		return nil, fmt.Errorf("content hash: %w", err)
	}
	dirFiles, err := imageDirFiles(source, img)
	if err != nil {
		return nil, err
	}
	for _, f := range dirFiles {
		set[f] = true
	}
	set[path.Join("images", img.Name, "Dockerfile")] = true
	for _, dir := range img.Sources {
		found, err := walkInputs(source, dir)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			set[f] = true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

// imageDirFiles lists the files of images/<name>/ other than the Dockerfile.
func imageDirFiles(source string, img Image) ([]string, error) {
	dir := path.Join("images", img.Name)
	if _, err := os.Stat(filepath.Join(source, filepath.FromSlash(dir), "Dockerfile")); err != nil {
		return nil, fmt.Errorf("image %s has no Dockerfile: %w", img.Name, err)
	}
	all, err := walkInputs(source, dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range all {
		if f != dir+"/Dockerfile" {
			out = append(out, f)
		}
	}
	return out, nil
}

// walkInputs lists the regular files under dir (slash-separated, relative
// to source) that can reach a build, as the go tool sees it: no tests, no
// testdata, nothing hidden or starting with '_'.
func walkInputs(source, dir string) ([]string, error) {
	root := filepath.Join(source, filepath.FromSlash(dir))
	var out []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := e.Name()
		if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			if name == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, "_test.go") {
			return nil
		}
		if !e.Type().IsRegular() && e.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, err := filepath.Rel(source, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("content hash: %w", err)
	}
	return out, nil
}
