package api

import (
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/gin-gonic/gin"
)

// serveAssets serves every file at the root of assets under its own name,
// and index.html at /, with a Content-Security-Policy that lets the page
// talk to this controller and nothing else.
func serveAssets(e *gin.Engine, assets fs.FS) error {
	entries, err := fs.ReadDir(assets, ".")
	if err != nil {
		return err
	}
	for _, ent := range entries {
		if ent.IsDir() {
			continue
		}
		name := ent.Name()
		body, err := fs.ReadFile(assets, name)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(name))
		if ctype == "" {
			ctype = http.DetectContentType(body)
		}
		handler := func(c *gin.Context) {
			h := c.Writer.Header()
			h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws://"+c.Request.Host+" wss://"+c.Request.Host+"; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			c.Data(http.StatusOK, ctype, body)
		}
		e.GET("/"+name, handler)
		if name == "index.html" {
			e.GET("/", handler)
		}
	}
	return nil
}
