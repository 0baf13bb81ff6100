package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// ServeConfig is what "flotilla serve" was asked for, already validated.
type ServeConfig struct {
	// Addr is the host:port the API listens on.
	Addr string
	// StateDir is an absolute directory for the controller's state.
	StateDir string
	// Token, when not empty, is required on every API request. It is never
	// empty when Addr is not a loopback address.
	Token string
	// AllowedHosts are the Host names the API answers besides loopback
	// ones; it includes Addr's host when that is a specific non-loopback
	// address, since that is what clients connecting to it send.
	AllowedHosts []string
	// MaxReplicas bounds the size of a group.
	MaxReplicas int
	// Source is the absolute path of the Flotilla source tree images are
	// built from, or empty if none was given and Serve should find it.
	Source string
	// Project names the Docker network and prefixes container names, so
	// two controllers on one engine never share a name.
	Project string
	// Runtime is RuntimeEngine (each replica a container of the local
	// engine) or RuntimeSwarm (each group a Docker Swarm-mode service).
	Runtime string
	// SwarmInit initialises a single-node swarm advertised on 127.0.0.1
	// when swarm mode is not active (only with RuntimeSwarm).
	SwarmInit bool
}

// The runtimes "flotilla serve --runtime" takes.
const (
	RuntimeEngine = "engine"
	RuntimeSwarm  = "swarm"
)

// Serve runs the controller until ctx is cancelled. It is wired in by the
// package that assembles the controller, so that the CLI links no Docker
// SDK package; while it is nil, "flotilla serve" fails.
var Serve func(ctx context.Context, cfg ServeConfig, stdout, stderr io.Writer) error

// BuildImages builds any missing or outdated image from the source tree
// (empty: found from the working directory). Like Serve, it is wired in by
// the package that talks to Docker.
var BuildImages func(ctx context.Context, source string, stdout io.Writer) error

func runImages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("images", "[flags]", `
Build Flotilla's images (FROM scratch, from static Go binaries compiled
here) into the local Docker engine, unless they are up to date. "flotilla
serve" does the same at start; this verb is for building ahead of time.`, stdout, stderr)
	source := c.fs.String("source", os.Getenv("FLOTILLA_SOURCE"), "`directory` of the Flotilla source tree (env FLOTILLA_SOURCE)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usageError("takes no arguments, got %q", pos)
	}
	if BuildImages == nil {
		return errors.New("images is not available in this build of flotilla: nothing is wired into cli.BuildImages")
	}
	return BuildImages(ctx, *source, stdout)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// maxMaxReplicas keeps --max-replicas within what a development machine runs.
const maxMaxReplicas = 1000

// minRemoteToken is the shortest token accepted when the API is reachable
// from the network.
const minRemoteToken = 16

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("serve", "[flags]", `
Run the controller: it keeps the groups you ask for running as Docker
containers, balances their traffic and serves the REST API and dashboard.
It runs until interrupted (Ctrl-C).

The API listens on loopback only unless --addr says otherwise. Listening on
any other address requires a token (--token or FLOTILLA_TOKEN), since whoever
reaches the API can start containers on this machine.`, stdout, stderr)
	cfg := ServeConfig{}
	var hosts stringList
	c.fs.StringVar(&cfg.Addr, "addr", api.DefaultAddr, "`host:port` the API listens on")
	c.fs.StringVar(&cfg.StateDir, "state-dir", defaultStateDir(), "`directory` for the controller's state (env FLOTILLA_STATE_DIR)")
	c.fs.StringVar(&cfg.Token, "token", "", "require this bearer `token` on every API request (env FLOTILLA_TOKEN)")
	c.fs.Var(&hosts, "allowed-host", "also answer requests for this `host[:port]`, besides localhost, 127.0.0.1 and [::1] (repeatable)")
	c.fs.IntVar(&cfg.MaxReplicas, "max-replicas", spec.DefaultMaxReplicas, "the most replicas a group may have")
	c.fs.StringVar(&cfg.Source, "source", os.Getenv("FLOTILLA_SOURCE"), "`directory` of the Flotilla source tree, to build images from (env FLOTILLA_SOURCE)")
	c.fs.StringVar(&cfg.Project, "project", envOr("FLOTILLA_PROJECT", "flotilla"), "`name` of the Docker network and prefix of container names (env FLOTILLA_PROJECT)")
	c.fs.StringVar(&cfg.Runtime, "runtime", envOr("FLOTILLA_RUNTIME", RuntimeEngine), "what runs the groups: `engine` (each replica a container of the local engine) or swarm (each group a Docker Swarm-mode service) (env FLOTILLA_RUNTIME)")
	c.fs.BoolVar(&cfg.SwarmInit, "swarm-init", false, "with --runtime swarm: initialise a single-node swarm advertised on 127.0.0.1 if swarm mode is not active (flotilla down --leave-swarm leaves it)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return c.usageError("takes no arguments, got %q", pos)
	}
	if cfg.Token == "" {
		cfg.Token = os.Getenv("FLOTILLA_TOKEN")
	}
	cfg.AllowedHosts = hosts
	if err := checkServeConfig(&cfg); err != nil {
		return err
	}
	if Serve == nil {
		return errors.New("serve is not available in this build of flotilla: nothing is wired into cli.Serve")
	}
	return Serve(ctx, cfg, stdout, stderr)
}

// checkServeConfig validates cfg and fills in what follows from it.
func checkServeConfig(cfg *ServeConfig) error {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("--addr %q must be host:port, like %s: %v", cfg.Addr, api.DefaultAddr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("--addr %q: the port must be a number from 1 to 65535", cfg.Addr)
	}
	if err := api.CheckToken(cfg.Token); err != nil {
		return fmt.Errorf("--token: %w", err)
	}
	loopback := api.IsLoopbackHost(host)
	if !loopback {
		if cfg.Token == "" {
			return fmt.Errorf("refusing to serve on %s without a token: anyone who can reach that address could start containers on this machine. "+
				"Set one with --token or FLOTILLA_TOKEN (for example: export FLOTILLA_TOKEN=$(openssl rand -hex 16)), "+
				"or listen on loopback only with --addr %s", cfg.Addr, api.DefaultAddr)
		}
		if len(cfg.Token) < minRemoteToken {
			return fmt.Errorf("the token must be at least %d characters when serving on %s, which is reachable from the network (for example: export FLOTILLA_TOKEN=$(openssl rand -hex 16))", minRemoteToken, cfg.Addr)
		}
	}
	for _, h := range cfg.AllowedHosts {
		if err := api.CheckAllowedHost(h); err != nil {
			return fmt.Errorf("--allowed-host: %w", err)
		}
	}
	if !loopback && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			// Clients that dial this address send it as their Host.
			cfg.AllowedHosts = append(cfg.AllowedHosts, net.JoinHostPort(host, port))
		}
	}
	switch cfg.Runtime {
	case RuntimeEngine, RuntimeSwarm:
	default:
		return fmt.Errorf("--runtime %q: choose %s (the local engine, the default) or %s (Docker Swarm mode)", cfg.Runtime, RuntimeEngine, RuntimeSwarm)
	}
	if cfg.SwarmInit && cfg.Runtime != RuntimeSwarm {
		return fmt.Errorf("--swarm-init initialises a swarm for the swarm runtime: add --runtime %s, or leave --swarm-init out", RuntimeSwarm)
	}
	if cfg.MaxReplicas < 1 || cfg.MaxReplicas > maxMaxReplicas {
		return fmt.Errorf("--max-replicas must be 1 to %d, got %d", maxMaxReplicas, cfg.MaxReplicas)
	}
	if cfg.StateDir == "" {
		return errors.New("--state-dir must not be empty")
	}
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return fmt.Errorf("--state-dir: %w", err)
	}
	if st, err := os.Stat(cfg.StateDir); err == nil && !st.IsDir() {
		return fmt.Errorf("--state-dir %s is a file; it must be a directory (it is created if missing)", cfg.StateDir)
	}
	if cfg.Source != "" {
		if cfg.Source, err = filepath.Abs(cfg.Source); err != nil {
			return fmt.Errorf("--source: %w", err)
		}
		if _, err := os.Stat(filepath.Join(cfg.Source, "go.mod")); err != nil {
			return fmt.Errorf("--source %s is not the Flotilla source tree (no go.mod there): point it at the folder you cloned Flotilla into", cfg.Source)
		}
	}
	return nil
}

// defaultStateDir is $FLOTILLA_STATE_DIR, else ~/.local/state/flotilla, else
// .flotilla in the working directory when there is no home.
func defaultStateDir() string {
	if d := os.Getenv("FLOTILLA_STATE_DIR"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "flotilla")
	}
	return ".flotilla"
}
