//go:build !(linux && (amd64 || arm64))

package main

import (
	"context"
	"errors"
	"io"

	"github.com/flotilla/flotilla/orchestrator/lb"
)

func runEvloop(context.Context, string, []lb.Upstream, io.Writer) error {
	return errors.New("the evloop prototype runs on Linux (amd64, arm64) only")
}
