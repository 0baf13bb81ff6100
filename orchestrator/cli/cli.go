// Package cli is the flotilla command: "flotilla serve" runs the controller,
// and the other verbs (ps, apply, scale, bus, rollout, node, down, services) drive a running one
// through its REST API. Run is the whole command, so tests call it with
// arguments and buffers instead of a process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flotilla/flotilla/orchestrator/api"
)

// Stdin is what "flotilla apply -" reads; tests replace it.
var Stdin io.Reader = os.Stdin

// errHelpShown ends a verb after it printed its help because it was asked to.
var errHelpShown = errors.New("help shown")

type verb struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// verbs in the order "flotilla help" lists them.
var verbs []verb

func init() {
	verbs = []verb{
		{"serve", "run the controller and its REST API", runServe},
		{"ps", "list the groups and their replicas", runPs},
		{"services", "list the catalogue of services a group can run", runServices},
		{"apply", "create or update the groups of a YAML file, or switch scenario", runApply},
		{"scenarios", "list the stages of the story", runScenarios},
		{"scale", "set the number of replicas of a group", runScale},
		{"images", "build Flotilla's images into the local engine", runImages},
		{"fault", "break something on purpose, and revert it", runFault},
		{"load", "send load or shopper journeys at a group", runLoad},
		{"bus", "show the message bus's streams, consumers and dead letters; replay one", runBus},
		{"rollout", "follow a group's rollout, list its history, undo, pause or resume it", runRollout},
		{"node", "list the runtime's nodes and their replicas; drain, pause or activate one", runNode},
		{"demo", "walk through a stage of the story and check its lesson", runDemo},
		{"down", "delete every group and remove everything the controller made", runDown},
		{"version", "print the version of flotilla", runVersion},
		{"help", "show the help of a command", runHelp},
	}
}

// Run runs the flotilla command; args excludes the program name.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("no command given; pick one of the commands above")
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-version", "--version":
		name = "version"
	}
	for _, v := range verbs {
		if v.name == name {
			err := v.run(ctx, args[1:], stdout, stderr)
			if errors.Is(err, errHelpShown) {
				return nil
			}
			return err
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q; the commands are listed above", name)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `flotilla runs and drives a Flotilla controller, a container orchestration
playground on Docker: groups of replicas of sample services, scaled,
load-balanced and watched.

Usage:
  flotilla <command> [flags] [arguments]

Commands:
`)
	for _, v := range verbs {
		fmt.Fprintf(w, "  %-9s %s\n", v.name, v.summary)
	}
	fmt.Fprintf(w, `
Start the controller with "flotilla serve", then use the other commands
from another terminal. They reach it at $FLOTILLA_ADDR (default
%s) and send $FLOTILLA_TOKEN if the controller has a token.

Run "flotilla help <command>" for the flags of a command.
`, api.DefaultAddr)
}

func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 0:
		usage(stdout)
		return nil
	case len(args) > 1:
		usage(stderr)
		return errors.New(`help takes at most one command: "flotilla help <command>"`)
	case args[0] == "help":
		usage(stdout)
		return nil
	}
	for _, v := range verbs {
		if v.name == args[0] {
			return v.run(ctx, []string{"-h"}, stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q; the commands are listed above", args[0])
}

// command is one verb's flags and help text.
type command struct {
	name     string
	synopsis string // after "flotilla <name>", e.g. "[flags] GROUP N"
	about    string // a paragraph or two
	fs       *flag.FlagSet
	stdout   io.Writer
	stderr   io.Writer
}

func newCommand(name, synopsis, about string, stdout, stderr io.Writer) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package's own messages go nowhere; parse reports errors once,
	// with this command's usage.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{name: name, synopsis: synopsis, about: about, fs: fs, stdout: stdout, stderr: stderr}
}

func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage:\n  flotilla %s %s\n\n%s\n", c.name, c.synopsis, strings.TrimSpace(c.about))
	hasFlags := false
	c.fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nFlags:\n")
		c.fs.SetOutput(w)
		c.fs.PrintDefaults()
		c.fs.SetOutput(io.Discard)
	}
}

// usageError prints the usage to stderr and returns an error saying what was
// wrong with the command line.
func (c *command) usageError(format string, args ...any) error {
	c.usage(c.stderr)
	fmt.Fprintln(c.stderr)
	return fmt.Errorf("%s: %s", c.name, fmt.Sprintf(format, args...))
}

// parse parses flags anywhere on the command line, not only before the first
// argument, because "flotilla scale web 3 --addr ..." is what people type.
// A negative number is an argument, so that "scale web -1" can be refused
// with a message about N rather than about an unknown flag. After "--"
// everything is an argument.
func (c *command) parse(args []string) ([]string, error) {
	var pos []string
	for {
		for len(args) > 0 && isNegativeNumber(args[0]) {
			pos = append(pos, args[0])
			args = args[1:]
		}
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.usage(c.stdout)
				return nil, errHelpShown
			}
			return nil, c.usageError("%v", err)
		}
		rest := c.fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func isNegativeNumber(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	for _, r := range s[1:] {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return true
}

// clientFlags are the flags of every verb that talks to a running controller.
type clientFlags struct {
	addr  string
	token string
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	cf := &clientFlags{}
	def := os.Getenv("FLOTILLA_ADDR")
	if def == "" {
		def = api.DefaultAddr
	}
	fs.StringVar(&cf.addr, "addr", def, "`host:port` of the controller (env FLOTILLA_ADDR)")
	// No default shown: the help text must not print a secret from the environment.
	fs.StringVar(&cf.token, "token", "", "API `token`, if the controller was started with one (env FLOTILLA_TOKEN)")
	return cf
}

func (cf *clientFlags) client() *api.Client {
	token := cf.token
	if token == "" {
		token = os.Getenv("FLOTILLA_TOKEN")
	}
	return &api.Client{Addr: cf.addr, Token: token}
}

// explain adds how to fix an API error the user can fix from this side.
func explain(err error) error {
	var apiErr *api.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == 401 {
		return fmt.Errorf("%w; pass --token or set FLOTILLA_TOKEN", err)
	}
	return err
}
