// Command lbbench runs one Flotilla load balancer in front of fixed
// upstreams, for orchestrator/lb/lbbench/bench-lb.sh (make bench-lb):
//
//	go run ./orchestrator/lb/lbbench --listen 127.0.0.1:8100 --upstreams 127.0.0.1:8001,127.0.0.1:8002
//
// It prints "listening on ADDR" once it serves, and stops on SIGINT or
// SIGTERM. --engine=fasthttp runs the balancer on its fasthttp data path
// rather than the default (the event loop, on Linux); --engine=httputil
// runs instead a plain net/http httputil.ReverseProxy with a tuned
// transport, round-robin: the baselines the package doc compares the data
// path with.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flotilla/flotilla/orchestrator/lb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lbbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("lbbench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	listen := flags.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	upstreams := flags.String("upstreams", "", "comma-separated host:port of the replicas")
	policy := flags.String("policy", lb.DefaultPolicy, "selection policy: "+strings.Join(lb.Policies(), ", "))
	engine := flags.String("engine", "flotilla", "flotilla (the default data path); fasthttp for the balancer's fasthttp data path; httputil for the net/http baseline")
	cpuprofile := flags.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := flags.Parse(args); err != nil {
		return err
	}
	var ups []lb.Upstream
	for i, a := range strings.Split(*upstreams, ",") {
		if a = strings.TrimSpace(a); a != "" {
			ups = append(ups, lb.Upstream{ID: a, Name: fmt.Sprintf("bench-%d", i+1), Addr: a})
		}
	}
	if len(ups) == 0 {
		return errors.New("--upstreams is empty")
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	switch *engine {
	case "flotilla":
		return runFlotilla(ctx, *listen, *policy, "", ups, stdout)
	case "fasthttp":
		return runFlotilla(ctx, *listen, *policy, lb.DataPathFasthttp, ups, stdout)
	case "httputil":
		return runHTTPUtil(ctx, *listen, ups, stdout)
	}
	return fmt.Errorf("unknown --engine %q", *engine)
}

func runFlotilla(ctx context.Context, listen, policy, dataPath string, ups []lb.Upstream, stdout io.Writer) error {
	b, err := lb.New(lb.Config{Group: "bench", Listen: listen, Policy: policy, DataPath: dataPath})
	if err != nil {
		return err
	}
	b.SetUpstreams(ups)
	if err := b.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "listening on", b.Endpoint())
	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return b.Close(closeCtx)
}

// runHTTPUtil is the baseline: the standard library's reverse proxy with a
// transport tuned for keep-alive to a few upstreams.
func runHTTPUtil(ctx context.Context, listen string, ups []lb.Upstream, stdout io.Writer) error {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(r *httputil.ProxyRequest) {
			u := ups[(next.Add(1)-1)%uint64(len(ups))]
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = u.Addr
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintln(stdout, "listening on", ln.Addr())
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
