// Package dashboard holds the web dashboard's assets: one page, its scripts
// (app.js, serverless.js for the panel of autoscaled groups, rollout.js for
// versions and rollouts, nodes.js for the nodes view) and its style sheet, plain HTML, CSS and
// JavaScript with no build step and nothing loaded from any other origin.
// The API serves them at / and the page talks back to the same origin: REST
// under /api/v1 and the websocket at /api/v1/stream.
package dashboard

import (
	"embed"
	"io/fs"
)

//go:embed index.html app.js serverless.js rollout.js nodes.js style.css
var files embed.FS

// Assets returns the dashboard's files, served at / by the API.
func Assets() fs.FS { return files }
