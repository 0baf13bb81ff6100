// Package scenarios holds the stages of Flotilla's story as YAML files a
// learner can read, copy and change: each names its groups and says what to
// try and what to look for. The controller applies one with
// PUT /api/v1/scenario or "flotilla apply scenario NAME".
package scenarios

import (
	"embed"
	"io/fs"
)

//go:embed *.yaml
var files embed.FS

// Files returns the scenario files.
func Files() fs.FS { return files }
