package images

import (
	"fmt"
	"io"
	"path"
	"strings"
)

// cpioWriter writes the "newc" cpio format, the one the Linux kernel
// unpacks as an initramfs (Documentation/driver-api/early-userspace/
// buffer-format.rst): a 110-byte ASCII header, the NUL-terminated name and
// the data, each padded to four bytes, ended by a TRAILER!!! entry.
type cpioWriter struct {
	w     io.Writer
	inode uint32
	dirs  map[string]bool
	err   error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, inode: 1, dirs: map[string]bool{}}
}

// Mode bits of the entry types the initramfs needs.
const (
	cpioDir  = 0o040000
	cpioFile = 0o100000
	cpioChar = 0o020000
)

// Dir adds a directory and its missing parents.
func (c *cpioWriter) Dir(name string, perm uint32) {
	name = strings.Trim(path.Clean("/"+name), "/")
	if name == "" || c.dirs[name] {
		return
	}
	if parent := path.Dir(name); parent != "." {
		c.Dir(parent, 0o755)
	}
	c.dirs[name] = true
	c.entry(name, cpioDir|perm, 0, 0, nil)
}

// File adds a regular file, creating its directory.
func (c *cpioWriter) File(name string, perm uint32, data []byte) {
	name = strings.Trim(path.Clean("/"+name), "/")
	if parent := path.Dir(name); parent != "." {
		c.Dir(parent, 0o755)
	}
	c.entry(name, cpioFile|perm, 0, 0, data)
}

// CharDevice adds a character device node: the kernel opens /dev/console
// for init's standard streams before anything could mount devtmpfs.
func (c *cpioWriter) CharDevice(name string, perm, major, minor uint32) {
	name = strings.Trim(path.Clean("/"+name), "/")
	if parent := path.Dir(name); parent != "." {
		c.Dir(parent, 0o755)
	}
	c.entry(name, cpioChar|perm, major, minor, nil)
}

// Close writes the trailer and returns the first error met.
func (c *cpioWriter) Close() error {
	c.inode = 0
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	return c.err
}

func (c *cpioWriter) entry(name string, mode, rmajor, rminor uint32, data []byte) {
	if c.err != nil {
		return
	}
	nlink := 1
	if mode&cpioDir == cpioDir && mode&cpioFile != cpioFile {
		nlink = 2
	}
	ino := c.inode
	if ino != 0 {
		c.inode++
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	buf := make([]byte, 0, len(hdr)+len(name)+4)
	buf = append(append(append(buf, hdr...), name...), 0)
	buf = pad4(buf)
	if _, err := c.w.Write(buf); err != nil {
		c.err = err
		return
	}
	if len(data) == 0 {
		return
	}
	if _, err := c.w.Write(data); err != nil {
		c.err = err
		return
	}
	if r := len(data) % 4; r != 0 {
		if _, err := c.w.Write(make([]byte, 4-r)); err != nil {
			c.err = err
		}
	}
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
