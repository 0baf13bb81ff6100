// Package server assembles the controller process: it opens the state
// directory, connects to the engine, builds any missing image, starts the
// reconcile loop and serves the API until its context ends.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flotilla/flotilla/dashboard"
	"github.com/flotilla/flotilla/orchestrator/api"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/docker"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/images"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/orchestrator/store"
	"github.com/flotilla/flotilla/sample-services/scenarios"
)

// Config is what `flotilla serve` takes.
type Config struct {
	Addr         string
	StateDir     string
	Token        string
	AllowedHosts []string
	MaxReplicas  int
	// Source is the Flotilla checkout images are built from; found from
	// the working directory when empty.
	Source string
	// Project names the network and prefixes container names.
	Project string
	// ImageRepository prefixes image tags (default "flotilla-") and
	// ImageLabels are extra labels on built images; tests use both to
	// build images of their own and remove them afterwards.
	ImageRepository string
	ImageLabels     map[string]string
	// Assets are the dashboard's files; nil serves the embedded dashboard.
	Assets fs.FS
	// Timeouts bound the API's clients; zero fields take the defaults.
	Timeouts api.Timeouts
	// NoVM leaves VM groups off: no VM image is built, no accelerator
	// probed, and vm groups are refused. Tests that boot no guest set it.
	NoVM bool
	// Runtime is RuntimeEngine ("" too: each replica a container of the
	// local engine) or RuntimeSwarm (each group a Swarm-mode service).
	Runtime string
	// SwarmInit initialises a single-node swarm when the swarm runtime
	// finds swarm mode inactive.
	SwarmInit bool
}

// Serve runs the controller and its API until ctx ends.
func Serve(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	instance, err := store.InstanceID(cfg.StateDir)
	if err != nil {
		return err
	}
	busSecret, err := store.BusSecret(cfg.StateDir)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.StateDir)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: another `flotilla serve` uses %s; stop it, or pass a different --state-dir", err, cfg.StateDir)
	}
	if err != nil {
		return err
	}
	defer st.Close()

	drv, err := docker.New(ctx, docker.Options{Instance: instance, Project: cfg.Project, Logger: log})
	if err != nil {
		return err
	}
	defer drv.Close()
	fmt.Fprintf(stdout, "flotilla: instance %s, project %q, state in %s\n", instance, drv.Project(), cfg.StateDir)

	// Listen before building images so a taken port fails at once.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()

	refs, err := images.Ensure(ctx, drv, images.Options{Source: cfg.Source, Progress: stdout, Repository: cfg.ImageRepository, Labels: cfg.ImageLabels, Prune: true})
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	var (
		rt     controller.Runtime = drv
		leaver *swarmLeaver
	)
	switch cfg.Runtime {
	case "", RuntimeEngine:
		cfg.Runtime = RuntimeEngine
	case RuntimeSwarm:
		sw, l, err := openSwarm(ctx, drv, cfg, stdout, log)
		if err != nil {
			return err
		}
		rt, leaver = sw, l
		cfg.NoVM = true
		fmt.Fprintf(stdout, "flotilla: runtime swarm: each group is a service of the swarm (this node %s)\n", sw.NodeID())
	default:
		return fmt.Errorf("runtime %q: choose %s or %s", cfg.Runtime, RuntimeEngine, RuntimeSwarm)
	}
	vmRef, accel, noVM := setupVM(ctx, drv, cfg, stdout)
	if noVM != nil {
		fmt.Fprintf(stdout, "flotilla: VM groups are unavailable: %v\n", noVM)
	} else {
		refs[controller.VMImage] = vmRef
	}

	events := hub.New(hub.Options{})
	defer events.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctrl := controller.New(controller.Options{
		Runtime:     rt,
		RuntimeName: cfg.Runtime,
		Store:       st,
		Images:      refs,
		NoVM:        noVM,
		VMAccel:     accel,
		VMMemoryMiB: vmMemoryMiB("/proc/meminfo"),
		MaxReplicas: cfg.MaxReplicas,
		Metrics:     reg,
		Events:      events,
		Log:         log,
		BusSecret:   busSecret,
	})
	injector := faults.New(faults.Options{Controller: ctrl, Runtime: rt, Events: events, Log: log})
	loads := load.NewManager(load.ManagerOptions{})
	defer loads.Close()
	if err := ctrl.Load(); err != nil {
		return err
	}
	assets := cfg.Assets
	if assets == nil {
		assets = dashboard.Assets()
	}
	stages, err := spec.LoadScenarios(scenarios.Files(), cfg.MaxReplicas)
	if err != nil {
		return fmt.Errorf("scenarios: %w", err)
	}
	var swarmAPI api.SwarmLeaver
	if leaver != nil {
		swarmAPI = leaver // never a nil pointer in the interface
	}
	handler, err := api.New(api.Options{
		Swarm:        swarmAPI,
		Scenarios:    stages,
		Faults:       injector,
		Bus:          ctrl,
		Log:          stderr,
		Controller:   ctrl,
		Token:        cfg.Token,
		AllowedHosts: cfg.AllowedHosts,
		Load:         loads,
		Hub:          events,
		Assets:       assets,
		Metrics:      promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		// A balancer on 127.0.0.1 cannot share the API's port, whatever
		// address the API listens on.
		ReservedPorts: []int{ln.Addr().(*net.TCPAddr).Port},
	})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if leaver != nil {
		leaver.stop = cancel
	}
	ctrlDone := make(chan error, 1)
	go func() { ctrlDone <- ctrl.Run(ctx) }()

	srv := api.NewServer(handler, cfg.Timeouts)
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "flotilla: API listening on http://%s\n", ln.Addr())
	if cfg.Token != "" {
		fmt.Fprintf(stdout, "flotilla: dashboard at http://%s/?token=<your token>\n", ln.Addr())
	} else {
		fmt.Fprintf(stdout, "flotilla: dashboard at http://%s/\n", ln.Addr())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-ctrlDone:
		runErr = fmt.Errorf("controller stopped: %w", err)
		ctrlDone <- nil
	case err := <-srvDone:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("serve API: %w", err)
		}
	}
	cancel()
	// Closing the hub ends every open stream with a close frame; Shutdown
	// does not wait for hijacked connections.
	events.Close()
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	_ = srv.Shutdown(shutdownCtx)
	if err := <-ctrlDone; err != nil && runErr == nil {
		runErr = err
	}
	if leaver != nil && leaver.left.Load() {
		fmt.Fprintln(stdout, "flotilla: stopped, having removed everything and left the swarm it had initialised")
	} else {
		fmt.Fprintln(stdout, "flotilla: stopped; replicas keep running and are adopted at the next start (`flotilla down` removes them)")
	}
	return runErr
}

// DefaultStateDir is $FLOTILLA_STATE_DIR, else ~/.local/state/flotilla.
func DefaultStateDir() string {
	if d := os.Getenv("FLOTILLA_STATE_DIR"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return home + "/.local/state/flotilla"
	}
	return ".flotilla"
}

// setupVM builds the VM image and chooses the accelerator of its guests
// once, when this machine can run them; otherwise why says what is
// missing, and the controller refuses vm groups with it. A machine without
// QEMU is not an error: everything else runs.
func setupVM(ctx context.Context, b images.Builder, cfg Config, stdout io.Writer) (ref, accel string, why error) {
	if cfg.Runtime == RuntimeSwarm {
		return "", "", errors.New("the swarm runtime runs containers only")
	}
	if cfg.NoVM {
		return "", "", errors.New("this controller was started with VM groups off")
	}
	source := cfg.Source
	if source == "" {
		src, err := images.FindSource(".")
		if err != nil {
			return "", "", err
		}
		source = src
	}
	if _, err := images.FindVMHost(source); err != nil {
		return "", "", err
	}
	ref, err := images.EnsureVM(ctx, b, images.Options{Source: source, Progress: stdout, Repository: cfg.ImageRepository, Labels: cfg.ImageLabels, Prune: true})
	if err != nil {
		return "", "", fmt.Errorf("build the VM image: %w", err)
	}
	accel, reason := images.ChooseAccel(ctx, source)
	fmt.Fprintf(stdout, "flotilla: VM groups run under %s: %s\n", accel, reason)
	return ref, accel, nil
}

// BuildImages builds any missing or outdated image into the engine named by
// the environment. Images are shared by every instance: they are named by
// the hash of their sources, so no instance label is needed to own them.
func BuildImages(ctx context.Context, source string, stdout io.Writer) error {
	drv, err := docker.New(ctx, docker.Options{Instance: imageBuilderInstance})
	if err != nil {
		return err
	}
	defer drv.Close()
	refs, err := images.Ensure(ctx, drv, images.Options{Source: source, Progress: stdout, Prune: true})
	if err != nil {
		return err
	}
	for name, ref := range refs {
		fmt.Fprintf(stdout, "%s: %s\n", name, ref)
	}
	return nil
}

// imageBuilderInstance identifies a driver that only builds images and
// creates no container or network.
const imageBuilderInstance = "00000000-0000-4000-8000-000000000000"

// vmMemoryMiB is the memory VM replicas may take in all: three quarters of
// the machine's, leaving the rest to the host, the controller and the other
// groups. 0 (no bound) where the machine's memory cannot be read.
func vmMemoryMiB(meminfo string) int64 {
	b, err := os.ReadFile(meminfo)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kib / 1024 * 3 / 4
		}
	}
	return 0
}
