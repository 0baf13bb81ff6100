package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// maxLogBytes bounds what Logs reads, so a chatty replica cannot make the
// controller hold its whole history.
const maxLogBytes = 1 << 20

// Logs returns the last tail lines an owned container wrote, standard
// output and error interleaved as the engine stored them: for a VM replica,
// its guest's serial console. At most 1 MiB is returned.
func (d *Driver) Logs(ctx context.Context, id string, tail int) (string, error) {
	c, err := d.owned(ctx, "logs of", id)
	if err != nil {
		return "", err
	}
	return d.logs(ctx, c, id, tail)
}

// logs reads the logs of c, a container already known to be ours.
func (d *Driver) logs(ctx context.Context, c container.InspectResponse, id string, tail int) (string, error) {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "all"}
	if tail > 0 {
		opts.Tail = fmt.Sprint(tail)
	}
	rc, err := d.cli.ContainerLogs(ctx, c.ID, opts)
	if err != nil {
		return "", translate("logs of "+id, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	w := &limitWriter{w: &buf, n: maxLogBytes}
	src := io.Reader(rc)
	if c.Config.Tty {
		_, err = io.Copy(w, src)
	} else {
		_, err = stdcopy.StdCopy(w, w, src)
	}
	if err != nil && err != errLogLimit {
		return buf.String(), fmt.Errorf("logs of %s: %w", id, err)
	}
	return buf.String(), nil
}

var errLogLimit = fmt.Errorf("log limit reached")

// limitWriter keeps the first n bytes and then refuses.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errLogLimit
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.w.Write(p)
	l.n -= n
	if err == nil && l.n <= 0 {
		return n, errLogLimit
	}
	return n, err
}
