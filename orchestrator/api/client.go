package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flotilla/flotilla/orchestrator/bus"
	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/faults"
	"github.com/flotilla/flotilla/orchestrator/load"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// ErrNoController means nothing listens at the controller's address.
var ErrNoController = errors.New("the controller is not running")

// APIError is an error answer of the API, carrying its message.
type APIError struct {
	StatusCode int
	Message    string
	// Field and Reason are set when a spec field was invalid.
	Field  string
	Reason string
}

func (e *APIError) Error() string { return e.Message }

// Unwrap lets callers test API errors with the sentinels the server used:
// controller.ErrNotFound for 404, controller.ErrConflict for 409,
// spec.ErrInvalid for an invalid field.
func (e *APIError) Unwrap() error {
	switch {
	case e.StatusCode == http.StatusNotFound:
		return controller.ErrNotFound
	case e.StatusCode == http.StatusConflict:
		return controller.ErrConflict
	case e.StatusCode == http.StatusBadRequest && e.Field != "":
		return spec.ErrInvalid
	}
	return nil
}

// Client calls a controller's API.
type Client struct {
	// Addr is host:port or a base URL; empty means DefaultAddr.
	Addr string
	// Token is sent as a bearer token when not empty.
	Token string
	// HTTP is the client to use; nil means one with a two-minute timeout.
	HTTP *http.Client
}

var defaultHTTP = &http.Client{Timeout: 2 * time.Minute}

// Healthz checks that the controller answers.
func (c *Client) Healthz(ctx context.Context) error {
	var out HealthResponse
	return c.do(ctx, http.MethodGet, "/healthz", nil, &out)
}

// Services returns the catalogue.
func (c *Client) Services(ctx context.Context) ([]spec.Service, error) {
	var out ServicesResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/services", nil, &out)
	return out.Services, err
}

// Stats returns every running replica's latest figures by replica name.
func (c *Client) Stats(ctx context.Context) (map[string]controller.ReplicaStats, error) {
	var out StatsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/stats", nil, &out)
	return out.Replicas, err
}

// Groups returns every group's status, sorted by name.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var out GroupsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/groups", nil, &out)
	return out.Groups, err
}

// Group returns one group's status; the error wraps controller.ErrNotFound if
// there is no such group.
func (c *Client) Group(ctx context.Context, name string) (controller.GroupStatus, error) {
	var out controller.GroupStatus
	err := c.do(ctx, http.MethodGet, groupPath(name), nil, &out)
	return out, err
}

// PutGroup creates or updates g; created reports whether it was new. A
// change of template while a rollout of the group runs is refused with 409.
func (c *Client) PutGroup(ctx context.Context, g spec.Group) (st controller.GroupStatus, created bool, err error) {
	var status int
	err = c.doStatus(ctx, http.MethodPut, groupPath(g.Name), groupRequest(g), &st, &status)
	return st, status == http.StatusCreated, err
}

// CheckGroup asks the controller whether it would take g (PUT with
// ?dryRun=true), changing nothing; the error is the one PutGroup would get.
func (c *Client) CheckGroup(ctx context.Context, g spec.Group) error {
	var out DryRunResponse
	return c.do(ctx, http.MethodPut, groupPath(g.Name)+"?dryRun=true", groupRequest(g), &out)
}

// PutGroupSupersede is PutGroup with ?supersede=true: a change of template
// while a rollout runs ends that rollout and starts one to g.
func (c *Client) PutGroupSupersede(ctx context.Context, g spec.Group) (controller.GroupStatus, error) {
	var st controller.GroupStatus
	err := c.do(ctx, http.MethodPut, groupPath(g.Name)+"?supersede=true", groupRequest(g), &st)
	return st, err
}

// Rollouts returns a group's rollouts and revisions, newest first.
func (c *Client) Rollouts(ctx context.Context, name string) (RolloutsResponse, error) {
	var out RolloutsResponse
	err := c.do(ctx, http.MethodGet, groupPath(name)+"/rollouts", nil, &out)
	return out, err
}

// Rollback rolls a group back to revision (0: the one before the current
// one) and returns the rollout that does it. The error is a 409 when there
// is nothing to roll back to, a 400 for a revision that is not an earlier one.
func (c *Client) Rollback(ctx context.Context, name string, revision int) (controller.RolloutStatus, error) {
	var body any
	if revision != 0 {
		body = RollbackRequest{Revision: revision}
	}
	var out controller.RolloutStatus
	err := c.do(ctx, http.MethodPost, groupPath(name)+"/rollback", body, &out)
	return out, err
}

// PauseRollout pauses the running rollout of a group; 409 when none runs.
func (c *Client) PauseRollout(ctx context.Context, name string) (controller.RolloutStatus, error) {
	var out controller.RolloutStatus
	err := c.do(ctx, http.MethodPost, groupPath(name)+"/rollout/pause", nil, &out)
	return out, err
}

// ResumeRollout resumes the paused rollout of a group; 409 when none runs.
func (c *Client) ResumeRollout(ctx context.Context, name string) (controller.RolloutStatus, error) {
	var out controller.RolloutStatus
	err := c.do(ctx, http.MethodPost, groupPath(name)+"/rollout/resume", nil, &out)
	return out, err
}

// groupRequest is g as the body of PUT /api/v1/groups/:name.
func groupRequest(g spec.Group) GroupRequest {
	req := GroupRequest{Service: g.Service, Replicas: &g.Replicas, Isolation: g.Isolation, Settings: g.Settings, Autoscale: g.Autoscale,
		Version: g.Version, Flaw: g.Flaw, Rollout: g.Rollout}
	if g.Resources != (spec.Resources{}) {
		req.Resources = &g.Resources
	}
	if g.Balancer != (spec.Balancer{}) {
		req.Balancer = &g.Balancer
	}
	if g.Probe != (spec.Probe{}) {
		req.Probe = &g.Probe
	}
	if g.Liveness != (spec.Probe{}) {
		req.Liveness = &g.Liveness
	}
	return req
}

// DeleteGroup deletes a group; its replicas are removed in time.
func (c *Client) DeleteGroup(ctx context.Context, name string) error {
	var out DeletedResponse
	return c.do(ctx, http.MethodDelete, groupPath(name), nil, &out)
}

// Scale sets a group's desired replica count.
func (c *Client) Scale(ctx context.Context, name string, replicas int) (controller.GroupStatus, error) {
	var out controller.GroupStatus
	err := c.do(ctx, http.MethodPost, groupPath(name)+"/scale", ScaleRequest{Replicas: &replicas}, &out)
	return out, err
}

// Down deletes every group and removes every object the controller owns.
func (c *Client) Down(ctx context.Context) error {
	var out DownResponse
	return c.do(ctx, http.MethodPost, "/api/v1/down", nil, &out)
}

// DownLeavingSwarm is Down, then leaves the swarm the controller
// initialised (serve --runtime swarm --swarm-init), which stops it.
func (c *Client) DownLeavingSwarm(ctx context.Context) (DownResponse, error) {
	var out DownResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/down", DownRequest{LeaveSwarm: true}, &out)
	return out, err
}

// Scenarios lists the stages and the one applied last.
func (c *Client) Scenarios(ctx context.Context) (ScenariosResponse, error) {
	var out ScenariosResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/scenarios", nil, &out)
	return out, err
}

// ApplyScenario switches to the named scenario.
func (c *Client) ApplyScenario(ctx context.Context, name string) (controller.ScenarioResult, error) {
	var out controller.ScenarioResult
	err := c.do(ctx, http.MethodPut, "/api/v1/scenario", ScenarioRequest{Name: name}, &out)
	return out, err
}

// StartLoad starts a load generator run; spec is a load request body such
// as {"group": "web", "rate": 200, "duration": "30s"}.
func (c *Client) StartLoad(ctx context.Context, spec map[string]any) (load.Report, error) {
	var out load.Report
	err := c.do(ctx, http.MethodPost, "/api/v1/load", spec, &out)
	return out, err
}

// Load returns one load run's report.
func (c *Client) Load(ctx context.Context, id string) (load.Report, error) {
	var out load.Report
	err := c.do(ctx, http.MethodGet, "/api/v1/load/"+url.PathEscape(id), nil, &out)
	return out, err
}

// StopLoad stops a load run and returns its final report.
func (c *Client) StopLoad(ctx context.Context, id string) (load.Report, error) {
	var out load.Report
	err := c.do(ctx, http.MethodDelete, "/api/v1/load/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Get decodes the JSON answer of a GET of path into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// InjectFault injects a fault.
func (c *Client) InjectFault(ctx context.Context, s faults.Spec) (faults.Fault, error) {
	var out faults.Fault
	err := c.do(ctx, http.MethodPost, "/api/v1/faults", s, &out)
	return out, err
}

// Faults lists the faults in force.
func (c *Client) Faults(ctx context.Context) ([]faults.Fault, error) {
	var out FaultsResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/faults", nil, &out)
	return out.Faults, err
}

// RevertFault reverts a fault.
func (c *Client) RevertFault(ctx context.Context, id string) (faults.Fault, error) {
	var out faults.Fault
	err := c.do(ctx, http.MethodDelete, "/api/v1/faults/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Bus reads the message bus's streams, consumers and dead letters.
func (c *Client) Bus(ctx context.Context) (bus.Status, error) {
	var out bus.Status
	err := c.do(ctx, http.MethodGet, "/api/v1/bus", nil, &out)
	return out, err
}

// ReplayDeadLetter publishes a dead letter's message again and deletes the
// dead letter.
func (c *Client) ReplayDeadLetter(ctx context.Context, seq uint64) (bus.ReplayResult, error) {
	var out bus.ReplayResult
	err := c.do(ctx, http.MethodPost, "/api/v1/bus/deadletters/"+strconv.FormatUint(seq, 10)+"/replay", nil, &out)
	return out, err
}

// Health returns what GET /healthz says: that the controller answers,
// and which runtime it drives.
func (c *Client) Health(ctx context.Context) (HealthResponse, error) {
	var out HealthResponse
	err := c.do(ctx, http.MethodGet, "/healthz", nil, &out)
	return out, err
}

// Nodes returns the runtime's nodes, each with its replicas.
func (c *Client) Nodes(ctx context.Context) (controller.NodesStatus, error) {
	var out controller.NodesStatus
	err := c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, &out)
	return out, err
}

// SetNodeAvailability makes a node (by ID or name) "active", "pause" or
// "drain" and returns it. On the engine runtime the error wraps
// controller.ErrConflict (409): only the swarm runtime has nodes to change.
func (c *Client) SetNodeAvailability(ctx context.Context, node, availability string) (controller.NodeStatus, error) {
	var out controller.NodeStatus
	err := c.do(ctx, http.MethodPut, "/api/v1/nodes/"+url.PathEscape(node), NodeRequest{Availability: &availability}, &out)
	return out, err
}

func groupPath(name string) string {
	return "/api/v1/groups/" + url.PathEscape(name)
}

func (c *Client) addr() string {
	if c.Addr == "" {
		return DefaultAddr
	}
	return c.Addr
}

func (c *Client) baseURL() (string, error) {
	a := c.addr()
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("controller address %q must be host:port or http://host:port", c.addr())
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return c.doStatus(ctx, method, path, body, out, nil)
}

func (c *Client) doStatus(ctx context.Context, method, path string, body, out any, status *int) error {
	base, err := c.baseURL()
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w at %s: start it with \"flotilla serve\"", ErrNoController, c.addr())
		}
		return fmt.Errorf("%s %s at %s: %w", method, path, c.addr(), err)
	}
	defer resp.Body.Close()
	if status != nil {
		*status = resp.StatusCode
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return apiError(resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

func apiError(resp *http.Response, data []byte) error {
	e := &APIError{StatusCode: resp.StatusCode}
	var body ErrorResponse
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Message, e.Field, e.Reason = body.Error, body.Field, body.Reason
		return e
	}
	// Not our API's answer: something else listens there, or a proxy failed.
	e.Message = resp.Status
	if snippet := strings.TrimSpace(string(data)); snippet != "" {
		if len(snippet) > 200 {
			snippet = snippet[:200] + "..."
		}
		e.Message += ": " + snippet
	}
	return e
}
