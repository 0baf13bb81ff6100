// Package api serves Flotilla's REST API over gin: the catalogue of services,
// the groups with their replicas, and the verbs that change them (put, scale,
// delete, down).
//
// The API is meant for a learner's own machine. Every request passes one guard
// before any route runs: the Host header must be a loopback name or an allowed
// host (DNS rebinding protection), an Origin header must be this controller's
// own (a web page elsewhere cannot drive it), and when a token is set the
// request must carry it as a bearer token.
//
// Bad input always gets a 4xx with {"error": "what is wrong"}; a 5xx means the
// controller itself failed.
package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// Controller is what the API drives. The controller package satisfies it; tests
// hand in a fake.
type Controller interface {
	// Services returns the catalogue of runnable services, sorted by name.
	Services() []spec.Service
	// Groups returns the status of every group, sorted by name.
	Groups() []controller.GroupStatus
	// Group returns one group's status, or an error wrapping
	// controller.ErrNotFound if there is no group of that name.
	Group(name string) (controller.GroupStatus, error)
	// PutGroup creates or updates a group. g has its name set and no defaults
	// applied: the controller applies the spec defaults and validates, and a
	// validation failure is an error wrapping spec.ErrInvalid (typically a
	// *spec.ValidationError). created reports whether the group was new.
	PutGroup(ctx context.Context, g spec.Group) (st controller.GroupStatus, created bool, err error)
	// DeleteGroup removes a group and, in time, its replicas; an error wraps
	// controller.ErrNotFound if there is no group of that name.
	DeleteGroup(ctx context.Context, name string) error
	// Scale sets a group's desired replica count. The error wraps
	// controller.ErrNotFound for an unknown group, or spec.ErrInvalid if
	// replicas is out of range.
	Scale(ctx context.Context, name string, replicas int) (controller.GroupStatus, error)
	// Down deletes every group and removes every object this controller
	// instance owns.
	Down(ctx context.Context) error
	// ReplicaAction kills, pauses or unpauses one replica (named like
	// "web-2") of a group. The error wraps controller.ErrNotFound for an
	// unknown group or replica, controller.ErrConflict for a replica in
	// the wrong state.
	ReplicaAction(ctx context.Context, group, replica, action string) error
	// Stats returns every replica's live figures, by replica name.
	Stats() map[string]controller.ReplicaStats
	// ApplyScenario makes the groups exactly the scenario's, touching only
	// what changes; an invalid group is an error wrapping spec.ErrInvalid
	// and changes nothing.
	ApplyScenario(ctx context.Context, sc spec.Scenario) (controller.ScenarioResult, error)
	// Scenario is the name of the scenario last applied, or "".
	Scenario() string
	// PutGroupWith is PutGroup; a change of template while a rollout of
	// the group runs is an error wrapping controller.ErrConflict unless
	// supersede, which ends that rollout and starts one to the new template.
	PutGroupWith(ctx context.Context, g spec.Group, supersede bool) (st controller.GroupStatus, created bool, err error)
	// CheckGroup says whether PutGroupWith would take g, changing nothing.
	CheckGroup(g spec.Group, supersede bool) error
	// Rollouts returns a group's rollouts and revisions, newest first; the
	// error wraps controller.ErrNotFound for an unknown group.
	Rollouts(name string) ([]controller.RolloutStatus, []controller.Revision, error)
	// Rollback rolls a group back to revision to (0: the one before), as a
	// rollout, and returns it. The error wraps controller.ErrNotFound for
	// an unknown group, controller.ErrConflict when there is no earlier
	// revision, and is a *spec.ValidationError (field "revision") for a
	// revision that is not an earlier one.
	Rollback(ctx context.Context, name string, to int, why string) (controller.RolloutStatus, error)
	// PauseRollout pauses (pause true) or resumes the running rollout of a
	// group; the error wraps controller.ErrConflict when none runs.
	PauseRollout(name string, pause bool) (controller.RolloutStatus, error)
	// RuntimeName is the runtime the controller drives: "engine" or "swarm".
	RuntimeName() string
	// Nodes returns the runtime's nodes, each with its replicas: on the
	// engine runtime one, the local engine, holding every replica.
	Nodes(ctx context.Context) (controller.NodesStatus, error)
	// SetNodeAvailability makes a node (by ID or name) active, paused or
	// drained and returns it. The error wraps controller.ErrNotSwarm on a
	// runtime without nodes to change, replica.ErrNotFound for an unknown
	// node, and is a *spec.ValidationError (field "availability") for an
	// availability that is none of the three.
	SetNodeAvailability(ctx context.Context, id, availability string) (controller.NodeStatus, error)
}

// SwarmLeaver leaves the Swarm-mode cluster the controller initialised.
type SwarmLeaver interface {
	// CanLeave says why the swarm must not be left (it was active before
	// this controller started it, or this node is no longer the one that
	// initialised it), or nil.
	CanLeave(ctx context.Context) error
	// Leave leaves the swarm and removes what leaving leaves behind. The
	// controller stops soon after: its runtime is gone.
	Leave(ctx context.Context) error
}

// Loader runs load generator runs; *load.Manager is one.
type Loader interface {
	// Start checks a spec and starts a run. The error wraps load.ErrInvalid
	// for a bad spec (a *load.ValidationError names the field), or is
	// load.ErrBusy when too many runs are going.
	Start(s load.Spec) (load.Report, error)
	// List returns the runs kept, newest first.
	List() []load.Report
	// Get returns one run; the error wraps load.ErrNotFound if unknown.
	Get(id string) (load.Report, error)
	// Stop ends a run and returns its final report; load.ErrNotFound if
	// unknown.
	Stop(id string) (load.Report, error)
}

// DefaultMaxBodyBytes bounds a request body unless Options say otherwise.
const DefaultMaxBodyBytes = 64 << 10

// DefaultAddr is where the controller listens unless told otherwise.
const DefaultAddr = "127.0.0.1:8080"

// Options configure New.
type Options struct {
	// Controller answers every route. Required.
	Controller Controller
	// Token, when not empty, is required on every request as
	// "Authorization: Bearer <token>".
	Token string
	// AllowedHosts are accepted in the Host header besides the loopback names.
	// An entry without a port matches any port ("flotilla.lan"); one with a
	// port matches only that port ("flotilla.lan:8080", "[fd00::1]:8080").
	AllowedHosts []string
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Log receives recovered panics and server-side failures; nil discards.
	Log io.Writer
	// Load runs the load generator; nil leaves /api/v1/load out.
	Load Loader
	// Metrics serves GET /metrics (Prometheus); nil leaves it out.
	Metrics http.Handler
	// Hub feeds GET /api/v1/stream; nil leaves the stream out.
	Hub *hub.Hub
	// Assets are the dashboard's files, served at /; nil serves none.
	Assets fs.FS
	// Scenarios are the stages a learner can switch between.
	Scenarios []spec.Scenario
	// Faults injects faults; nil leaves /api/v1/faults out.
	Faults Faulter
	// Bus reads the message bus and replays its dead letters; nil leaves
	// /api/v1/bus out (and the stream's bus messages).
	Bus Bus
	// Swarm leaves the swarm this controller initialised, for
	// POST /api/v1/down {"leaveSwarm": true}; nil on the engine runtime.
	Swarm SwarmLeaver
	// ReservedPorts are ports no group's balancer may take: the API's own
	// listening port, which a balancer on 127.0.0.1 would collide with. A
	// group asking for one is refused with 400 before the controller sees it.
	ReservedPorts []int
}

// DryRunResponse answers PUT /api/v1/groups/:name?dryRun=true when the
// group would be taken: the group as it would be kept, defaults filled in.
// Nothing was changed.
type DryRunResponse struct {
	DryRun bool       `json:"dryRun"`
	Group  spec.Group `json:"group"`
}

// GroupRequest is the body of PUT /api/v1/groups/:name.
//
// Name may be left out; if present it must equal the name in the path, else
// the request is refused with 400: the body is malformed, there is no
// conflicting state to resolve, so 409 would mislead.
type GroupRequest struct {
	Name      string          `json:"name,omitempty"`
	Service   string          `json:"service"`
	Replicas  *int            `json:"replicas"`
	Resources *spec.Resources `json:"resources,omitempty"`
	Balancer  *spec.Balancer  `json:"balancer,omitempty"`
	Probe     *spec.Probe     `json:"probe,omitempty"`    // readiness
	Liveness  *spec.Probe     `json:"liveness,omitempty"` // liveness
	// Isolation is "container" (the default), "pod" or "vm".
	Isolation string `json:"isolation,omitempty"`
	// Settings choose among the service's behaviours (GET
	// /api/v1/services lists each service's settings and their values).
	Settings map[string]string `json:"settings,omitempty"`
	// Autoscale lets the controller choose the count from the requests in
	// flight (or a subject's backlog); replicas is then only where it starts.
	Autoscale *spec.Autoscale `json:"autoscale,omitempty"`
	// Version is the release the replicas run ("v1", the default, "v2" or
	// "v3"); Flaw the kind of bad release v3 is. A change of either, as of
	// anything else in the template, starts a rollout shaped by Rollout.
	Version string        `json:"version,omitempty"`
	Flaw    string        `json:"flaw,omitempty"`
	Rollout *spec.Rollout `json:"rollout,omitempty"`
}

// ScaleRequest is the body of POST /api/v1/groups/:name/scale.
type ScaleRequest struct {
	Replicas *int `json:"replicas"`
}

// ErrorResponse is the body of every 4xx and 5xx. Field and Reason are set
// when a spec field is invalid.
type ErrorResponse struct {
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// HealthResponse is the body of GET /healthz.
type HealthResponse struct {
	Status string `json:"status"`
	// Runtime is the runtime the controller drives: "engine" (the local
	// engine's containers) or "swarm" (Docker Swarm mode's services).
	Runtime string `json:"runtime,omitempty"`
}

// ServicesResponse is the body of GET /api/v1/services.
type ServicesResponse struct {
	Services []spec.Service `json:"services"`
}

// Group is a group as the API shows it: the controller's status and, beside
// it, the load generator run aimed at the group, which the controller does
// not know about.
type Group struct {
	controller.GroupStatus
	// Load is the latest load generator run aimed at the group, with its
	// journeys' success step by step.
	Load *load.Report `json:"load,omitempty"`
}

// GroupsResponse is the body of GET /api/v1/groups.
type GroupsResponse struct {
	Groups []Group `json:"groups"`
}

// StatsResponse is GET /api/v1/stats: every running replica's latest
// figures by replica name, as the stream's stats messages carry them.
type StatsResponse struct {
	Replicas map[string]controller.ReplicaStats `json:"replicas"`
}

// DeletedResponse is the body of DELETE /api/v1/groups/:name.
type DeletedResponse struct {
	Deleted string `json:"deleted"`
}

// DownResponse is the body of POST /api/v1/down.
type DownResponse struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	// LeftSwarm: the controller left the swarm it had initialised.
	LeftSwarm bool `json:"leftSwarm,omitempty"`
}

// DownRequest is the optional body of POST /api/v1/down.
type DownRequest struct {
	// LeaveSwarm also leaves the swarm, on the swarm runtime, when this
	// controller initialised it (serve --swarm-init); it never leaves one
	// it did not create.
	LeaveSwarm bool `json:"leaveSwarm,omitempty"`
}

const (
	groupFields = `a group takes "service", "replicas", optional "resources" ({"memoryMiB", "milliCPU", "pids"}), optional "balancer" ({"policy", "port"}), optional "probe" and "liveness" (each {"periodMs", "timeoutMs", "successThreshold", "failureThreshold"}), optional "isolation" ("container", "pod" or "vm"), optional "settings", optional "autoscale" ({"min", "max", "targetConcurrency", "idleAfter", "stableWindow", "panicWindow", "warmPool", "trigger", "queue": {"size", "timeout"}}), optional "version" ("v1", "v2" or "v3") and "flaw" (v3's: "errors", "unready" or "crash"), optional "rollout" ({"strategy", "maxSurge", "maxUnavailable", "minReadySeconds", "progressDeadlineSeconds", "canary": {"steps", "pauseSeconds"}, "blueGreen": {"scaleDownDelaySeconds"}, "autoRollback": {"errorRate"}}), optional "placement" ({"constraints", "spread"}, on the swarm runtime) and optional "name"`
	scaleFields = `scale takes only "replicas"`
	downFields  = `down takes optional "leaveSwarm" (true to also leave the swarm this controller initialised)`
)

type server struct {
	ctl       Controller
	load      Loader
	hub       *hub.Hub
	scenarios []spec.Scenario
	faults    Faulter
	bus       Bus
	swarm     SwarmLeaver
	reserved  []int
	guard     guard
	maxBody   int64
	log       io.Writer
}

// New returns the API as an http.Handler.
func New(opts Options) (http.Handler, error) {
	if opts.Controller == nil {
		return nil, errors.New("api: a Controller is required")
	}
	if opts.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("api: MaxBodyBytes must not be negative, got %d", opts.MaxBodyBytes)
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if err := CheckToken(opts.Token); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	hosts, err := parseAllowedHosts(opts.AllowedHosts)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	for _, p := range opts.ReservedPorts {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("api: reserved port %d is not a port: 1 to 65535", p)
		}
	}
	s := &server{
		ctl:       opts.Controller,
		load:      opts.Load,
		hub:       opts.Hub,
		scenarios: opts.Scenarios,
		faults:    opts.Faults,
		bus:       opts.Bus,
		swarm:     opts.Swarm,
		reserved:  opts.ReservedPorts,
		maxBody:   opts.MaxBodyBytes,
		log:       opts.Log,
		guard:     guard{allowed: hosts},
	}
	if opts.Token != "" {
		s.guard.token = sha256.Sum256([]byte(opts.Token))
		s.guard.hasToken = true
	}

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	if err := e.SetTrustedProxies(nil); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	e.HandleMethodNotAllowed = true
	// A redirect is answered before any middleware runs, so it would bypass
	// the guard; a wrong path gets a plain 404 instead.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false

	e.Use(gin.CustomRecoveryWithWriter(opts.Log, func(c *gin.Context, rec any) {
		c.AbortWithStatusJSON(http.StatusInternalServerError, ErrorResponse{Error: "internal error: the controller hit a bug; see its log"})
	}))
	e.Use(s.guard.handle)
	e.NoRoute(func(c *gin.Context) {
		abort(c, http.StatusNotFound, fmt.Sprintf("no route %s %s: the API lives under /api/v1 (services, groups, groups/NAME, groups/NAME/scale, groups/NAME/rollouts, groups/NAME/rollback, groups/NAME/rollout/pause|resume, stats, nodes, nodes/ID, bus, down)", c.Request.Method, c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		abort(c, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s; allowed: %s", c.Request.Method, c.Request.URL.Path, c.Writer.Header().Get("Allow")))
	})

	e.GET("/healthz", s.healthz)
	v1 := e.Group("/api/v1")
	v1.GET("/services", s.services)
	v1.GET("/groups", s.groups)
	v1.GET("/groups/:name", s.group)
	v1.PUT("/groups/:name", s.putGroup)
	v1.DELETE("/groups/:name", s.deleteGroup)
	v1.POST("/groups/:name/scale", s.scale)
	v1.GET("/groups/:name/rollouts", s.rollouts)
	v1.POST("/groups/:name/rollback", s.rollback)
	v1.POST("/groups/:name/rollout/pause", s.pauseRollout(true))
	v1.POST("/groups/:name/rollout/resume", s.pauseRollout(false))
	v1.POST("/down", s.down)
	v1.GET("/stats", s.stats)
	v1.POST("/groups/:name/replicas/:replica/:action", s.replicaAction)
	v1.GET("/nodes", s.getNodes)
	v1.PUT("/nodes/:id", s.putNode)
	if s.faults != nil {
		v1.POST("/faults", s.injectFault)
		v1.GET("/faults", s.listFaults)
		v1.DELETE("/faults/:id", s.revertFault)
	}
	if s.bus != nil {
		v1.GET("/bus", s.getBus)
		v1.POST("/bus/deadletters/:seq/replay", s.replayDeadLetter)
	}
	v1.GET("/scenarios", s.listScenarios)
	v1.GET("/scenario", s.currentScenario)
	v1.PUT("/scenario", s.applyScenario)
	if s.hub != nil {
		v1.GET("/stream", s.stream)
	}
	if opts.Assets != nil {
		if err := serveAssets(e, opts.Assets); err != nil {
			return nil, fmt.Errorf("api: dashboard: %w", err)
		}
	}
	if s.load != nil {
		v1.POST("/load", s.startLoad)
		v1.GET("/load", s.listLoad)
		v1.GET("/load/:id", s.getLoad)
		v1.DELETE("/load/:id", s.stopLoad)
	}
	if opts.Metrics != nil {
		e.GET("/metrics", gin.WrapH(opts.Metrics))
	}
	return e, nil
}

func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, HealthResponse{Status: "ok", Runtime: s.ctl.RuntimeName()})
}

func (s *server) stats(c *gin.Context) {
	st := s.ctl.Stats()
	if st == nil {
		st = map[string]controller.ReplicaStats{}
	}
	c.JSON(http.StatusOK, StatsResponse{Replicas: st})
}

func (s *server) services(c *gin.Context) {
	svcs := s.ctl.Services()
	if svcs == nil {
		svcs = []spec.Service{}
	}
	c.JSON(http.StatusOK, ServicesResponse{Services: svcs})
}

func (s *server) groups(c *gin.Context) {
	c.JSON(http.StatusOK, GroupsResponse{Groups: s.views(s.ctl.Groups())})
}

func (s *server) group(c *gin.Context) {
	name, ok := groupName(c)
	if !ok {
		return
	}
	st, err := s.ctl.Group(name)
	if err != nil {
		s.fail(c, name, err)
		return
	}
	c.JSON(http.StatusOK, s.view(st))
}

func (s *server) putGroup(c *gin.Context) {
	name, ok := groupName(c)
	if !ok {
		return
	}
	supersede, ok := supersedeParam(c)
	if !ok {
		return
	}
	dryRun, ok := boolParam(c, "dryRun")
	if !ok {
		return
	}
	var req GroupRequest
	if !s.decode(c, &req, true, groupFields) {
		return
	}
	if req.Name != "" && req.Name != name {
		abortInvalid(c, &spec.ValidationError{Field: "name", Reason: fmt.Sprintf("%q in the body differs from %q in the path; leave it out or make them equal", req.Name, name)})
		return
	}
	if req.Replicas == nil {
		abortInvalid(c, &spec.ValidationError{Field: "replicas", Reason: "is required: the number of replicas, 0 or more"})
		return
	}
	g := spec.Group{Name: name, Service: req.Service, Replicas: *req.Replicas, Isolation: req.Isolation, Settings: req.Settings, Autoscale: req.Autoscale,
		Version: req.Version, Flaw: req.Flaw, Rollout: req.Rollout}
	if req.Resources != nil {
		g.Resources = *req.Resources
	}
	if req.Balancer != nil {
		g.Balancer = *req.Balancer
	}
	if req.Probe != nil {
		g.Probe = *req.Probe
	}
	if req.Liveness != nil {
		g.Liveness = *req.Liveness
	}
	if ve := s.checkPorts(g, ""); ve != nil {
		abortInvalid(c, ve)
		return
	}
	if dryRun {
		if err := s.ctl.CheckGroup(g, supersede); err != nil {
			s.fail(c, name, err)
			return
		}
		c.JSON(http.StatusOK, DryRunResponse{DryRun: true, Group: g.WithDefaults()})
		return
	}
	st, created, err := s.ctl.PutGroupWith(c.Request.Context(), g, supersede)
	if err != nil {
		s.fail(c, name, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	c.JSON(code, s.view(st))
}

func (s *server) deleteGroup(c *gin.Context) {
	name, ok := groupName(c)
	if !ok {
		return
	}
	if err := s.ctl.DeleteGroup(c.Request.Context(), name); err != nil {
		s.fail(c, name, err)
		return
	}
	c.JSON(http.StatusAccepted, DeletedResponse{Deleted: name})
}

func (s *server) scale(c *gin.Context) {
	name, ok := groupName(c)
	if !ok {
		return
	}
	var req ScaleRequest
	if !s.decode(c, &req, true, scaleFields) {
		return
	}
	if req.Replicas == nil {
		abortInvalid(c, &spec.ValidationError{Field: "replicas", Reason: `is required: send {"replicas": N}`})
		return
	}
	st, err := s.ctl.Scale(c.Request.Context(), name, *req.Replicas)
	if err != nil {
		s.fail(c, name, err)
		return
	}
	c.JSON(http.StatusOK, s.view(st))
}

func (s *server) down(c *gin.Context) {
	// The body is optional.
	var req DownRequest
	if !s.decode(c, &req, false, downFields) {
		return
	}
	ctx := c.Request.Context()
	if req.LeaveSwarm {
		// Refused before anything is removed, so nothing is half done.
		if s.swarm == nil {
			abort(c, http.StatusConflict, "leaveSwarm: this controller runs on the local engine runtime, not on a swarm; leave out leaveSwarm (flotilla down without --leave-swarm)")
			return
		}
		if err := s.swarm.CanLeave(ctx); err != nil {
			abort(c, http.StatusConflict, "leaveSwarm: "+err.Error())
			return
		}
	}
	if err := s.ctl.Down(ctx); err != nil {
		s.fail(c, "", err)
		return
	}
	resp := DownResponse{
		Status:  "down",
		Message: "every group is deleted and every object this controller owns is removed",
	}
	if req.LeaveSwarm {
		if err := s.swarm.Leave(ctx); err != nil {
			s.fail(c, "", fmt.Errorf("everything is removed, but leaving the swarm failed: %w", err))
			return
		}
		resp.LeftSwarm = true
		resp.Message += "; this node left the swarm the controller had initialised, and the controller stops"
	}
	c.JSON(http.StatusAccepted, resp)
}

// checkPorts refuses a group whose balancer would listen on a reserved
// port: the controller would accept it and only fail to bind, leaving the
// group in status error. how says where the group comes from, for the reason.
func (s *server) checkPorts(g spec.Group, how string) *spec.ValidationError {
	if p := g.Balancer.Port; p != 0 && slices.Contains(s.reserved, p) {
		return &spec.ValidationError{Field: "balancer.port", Reason: fmt.Sprintf(
			"%s%d is the port this controller's API listens on; pick another, or leave it out for a free one", how, p)}
	}
	return nil
}

// groupName reads and checks the :name path parameter, answering 400 if it
// cannot name a group.
func groupName(c *gin.Context) (string, bool) {
	name := c.Param("name")
	if err := spec.ValidName(name); err != nil {
		var ve *spec.ValidationError
		if errors.As(err, &ve) {
			abortInvalid(c, ve)
		} else {
			abort(c, http.StatusBadRequest, err.Error())
		}
		return "", false
	}
	return name, true
}

// fail turns a controller error into a response: the sentinels are the
// client's fault, anything else is the controller's.
func (s *server) fail(c *gin.Context, name string, err error) {
	var ve *spec.ValidationError
	switch {
	case errors.Is(err, controller.ErrNotFound):
		msg := fmt.Sprintf("group %q not found: list groups with GET /api/v1/groups", name)
		if name == "" {
			msg = err.Error()
		}
		abort(c, http.StatusNotFound, msg)
	case errors.As(err, &ve):
		abortInvalid(c, ve)
	case errors.Is(err, spec.ErrInvalid):
		abort(c, http.StatusBadRequest, err.Error())
	case errors.Is(err, controller.ErrConflict):
		abort(c, http.StatusConflict, err.Error())
	case c.Request.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		c.AbortWithStatus(499)
	default:
		if s.log != nil {
			fmt.Fprintf(s.log, "api: %s %s: %v\n", c.Request.Method, c.Request.URL.Path, err)
		}
		abort(c, http.StatusInternalServerError, "controller failed: "+err.Error())
	}
}

func abort(c *gin.Context, code int, msg string) {
	c.AbortWithStatusJSON(code, ErrorResponse{Error: msg})
}

func abortInvalid(c *gin.Context, ve *spec.ValidationError) {
	c.AbortWithStatusJSON(http.StatusBadRequest, ErrorResponse{Error: ve.Error(), Field: ve.Field, Reason: ve.Reason})
}

// view is a group as the API shows it: with the load run aimed at it, and
// an empty replica list as [] rather than null, so clients can range over
// it without a check.
func (s *server) view(st controller.GroupStatus) Group {
	return s.views([]controller.GroupStatus{st})[0]
}

// views is view for several groups, reading the load runs once.
func (s *server) views(gs []controller.GroupStatus) []Group {
	var runs []load.Report
	if s.load != nil {
		runs = s.load.List()
	}
	out := make([]Group, len(gs))
	for i, st := range gs {
		if st.Replicas == nil {
			st.Replicas = []controller.ReplicaStatus{}
		}
		out[i] = Group{GroupStatus: st, Load: loadFor(st, runs)}
	}
	return out
}

// CheckToken reports whether token can be sent in an Authorization header.
// The empty token means "no token".
func CheckToken(token string) error {
	for _, r := range token {
		if r <= ' ' || r > '~' {
			return errors.New("the token must be printable ASCII without spaces")
		}
	}
	return nil
}

// loadFor finds, among runs (newest first), the newest one aimed at a
// group, running or ended in the last minute, without its per-shopper detail.
func loadFor(st controller.GroupStatus, runs []load.Report) *load.Report {
	addrs := map[string]bool{}
	if st.Endpoint != "" {
		addrs[st.Endpoint] = true
	}
	for _, r := range st.Replicas {
		if r.Address != "" {
			addrs[r.Address] = true
		}
	}
	for _, rep := range runs {
		if rep.State != "running" && time.Since(rep.Ended) > time.Minute {
			continue
		}
		hit := addrs[rep.Spec.Target]
		for _, t := range rep.Spec.Targets {
			hit = hit || addrs[t]
		}
		if hit {
			rep.ByShopper = nil
			return &rep
		}
	}
	return nil
}
