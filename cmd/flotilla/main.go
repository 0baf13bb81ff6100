// Command flotilla runs a Flotilla controller ("flotilla serve") and drives
// it (ps, apply, scale, down, services). The verbs live in package cli; this
// file connects them to the process and to the controller's assembly.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/flotilla/flotilla/orchestrator/cli"
	"github.com/flotilla/flotilla/orchestrator/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "flotilla: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cli.Serve = serve
	cli.BuildImages = server.BuildImages
	return cli.Run(ctx, args, stdout, stderr)
}

func serve(ctx context.Context, cfg cli.ServeConfig, stdout, stderr io.Writer) error {
	return server.Serve(ctx, server.Config{
		Addr:         cfg.Addr,
		StateDir:     cfg.StateDir,
		Token:        cfg.Token,
		AllowedHosts: cfg.AllowedHosts,
		MaxReplicas:  cfg.MaxReplicas,
		Source:       cfg.Source,
		Project:      cfg.Project,
		Runtime:      cfg.Runtime,
		SwarmInit:    cfg.SwarmInit,
		// Tests build images of their own, under a repository and a label
		// they remove afterwards.
		ImageRepository: os.Getenv("FLOTILLA_IMAGE_REPOSITORY"),
		ImageLabels:     imageLabels(os.Getenv("FLOTILLA_IMAGE_LABEL")),
	}, stdout, stderr)
}

// imageLabels parses "key=value" into a label set; empty gives none.
func imageLabels(kv string) map[string]string {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return nil
	}
	return map[string]string{k: v}
}
