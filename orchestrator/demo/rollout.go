package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flotilla/flotilla/orchestrator/controller"
	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/version"
)

const (
	// rolloutGroup is the scenario's monolith.
	rolloutGroup = "shop"
	// shopperCount shoppers ask GET shopperPath on the group's balancer in
	// turn, each pausing shopperPause between answers, for at most
	// shoppersFor: bounded, and light enough for a small machine.
	shopperCount = 4
	shopperPath  = "/deals"
	shopperPause = 20 * time.Millisecond
	shoppersFor  = 4 * time.Minute
	// rolloutWithin bounds each rollout, its rollback included.
	rolloutWithin = 2 * time.Minute
	// blueKept is how long blue-green keeps the old set after the switch;
	// greenHeld how long green serves before the switch back.
	blueKept  = 20
	greenHeld = 4 * time.Second
	// canaryFailedShare bounds the share of requests a canary of v3 may
	// fail before it is rolled back.
	canaryFailedShare = 0.15
)

// rollouts shows stage 9: the same change of version rolled out four
// ways, under shoppers who count what they lose and which version answers.
func rollouts(ctx context.Context, r *run) error {
	if err := r.scenario(ctx, "rollouts"); err != nil {
		return err
	}
	st, err := r.group(ctx, rolloutGroup)
	if err != nil {
		return err
	}
	if st.Endpoint == "" {
		return fmt.Errorf("group %s has no balancer", rolloutGroup)
	}
	// The scenario names no version: applying it brought the group back to
	// v1 if an earlier run left it on another.
	base := specOf(st, st.Balancer.Policy)
	base.Version = version.Default
	r.say("The monolith, 4 replicas behind a round-robin balancer, runs v1. %d shoppers ask GET %s on its", shopperCount, shopperPath)
	r.say("balancer over and over; every answer says in its %s header which version gave it.", version.Header)
	r.look("shop's card shows its version and, during a rollout, the strategy, the progress and the share of traffic")
	r.look("on the new version; each tile shows the version it runs, and the event log every step.")
	s := startShoppers(ctx, st.Endpoint)
	defer s.stop()
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	t := s.tally(0, s.mark())
	r.check(t.requests > 0 && t.failed == 0 && t.byVersion["v1"] == t.requests,
		"before any rollout every answer is v1's and none fails (%d requests: %s)", t.requests, t.versions())

	var figures []rolloutFigures
	lessons := []func(context.Context, *shoppers, spec.Group) (rolloutFigures, error){
		r.recreateLesson, r.rollingLesson, r.canaryLesson, r.blueGreenLesson,
	}
	for _, lesson := range lessons {
		f, err := lesson(ctx, s, base)
		if err != nil {
			return err
		}
		figures = append(figures, f)
		// A moment between lessons, so that each one's answers are its own.
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}

	r.say("")
	r.say("Figures, under %d shoppers:", shopperCount)
	r.say("   %-40s %9s %9s %8s  %s", "rollout", "took", "requests", "failed", "answers by version")
	for _, f := range figures {
		r.say("   %-40s %9s %9d %8d  %s", f.name, seconds(f.took), f.requests, f.failed, f.versions)
	}
	r.say("Recreate is simple and loses shoppers; a rolling update loses none; a canary lets a bad release meet a")
	r.say("few shoppers only, and takes it back on its own; blue-green switches all at once, and back as fast.")
	return nil
}

// rolloutFigures are one lesson's line in the closing table.
type rolloutFigures struct {
	name             string
	took             time.Duration
	requests, failed int
	versions         string
}

func figuresOf(name string, took time.Duration, t tally) rolloutFigures {
	return rolloutFigures{name: name, took: took, requests: t.requests, failed: t.failed, versions: t.versions()}
}

// recreateLesson rolls v1 to v2 by stopping every old replica first.
func (r *run) recreateLesson(ctx context.Context, s *shoppers, base spec.Group) (rolloutFigures, error) {
	r.say("")
	r.say("1. Recreate: v1 to v2, every old replica stopped before any new one starts.")
	r.look("every tile leaves at once, the shop has no replica for a moment, then four v2 tiles start.")
	g := base
	g.Version, g.Rollout = "v2", &spec.Rollout{Strategy: spec.StrategyRecreate}
	from := s.mark()
	ro, err := r.roll(ctx, g)
	if err != nil {
		return rolloutFigures{}, err
	}
	t := s.tally(from, s.mark())
	r.say("The rollout took %s: %d requests, %d failed (%s), answers: %s.", seconds(ro.took), t.requests, t.failed, t.failures(), t.versions())
	if t.failed > 0 {
		r.say("Shoppers met failures for %s, from the first to the last.", seconds(t.lastFail.Sub(t.firstFail)))
	}
	r.check(t.failed > 0, "recreate lost requests while no replica ran: %d of %d failed", t.failed, t.requests)
	r.check(ro.done() && allOn(ro.group, "v2"), "every replica runs v2 at the end (%s)", replicaVersions(ro.group))
	return figuresOf("1 recreate v1 → v2", ro.took, t), nil
}

// rollingLesson rolls v2 back to v1 one replica at a time, never under
// the count.
func (r *run) rollingLesson(ctx context.Context, s *shoppers, base spec.Group) (rolloutFigures, error) {
	r.say("")
	r.say("2. Rolling update: v2 to v1, maxSurge 1 and maxUnavailable 0: a new replica joins rotation once ready,")
	r.say("   then an old one drains and stops; never fewer than 4 ready.")
	r.look("one tile more for a moment, then tiles replaced one by one; the answers change version gradually.")
	surge, unavailable := 1, 0
	g := base
	g.Rollout = &spec.Rollout{Strategy: spec.StrategyRolling, MaxSurge: &surge, MaxUnavailable: &unavailable}
	from := s.mark()
	ro, err := r.roll(ctx, g)
	if err != nil {
		return rolloutFigures{}, err
	}
	t := s.tally(from, s.mark())
	r.say("The rollout took %s: %d requests, %d failed, answers: %s.", seconds(ro.took), t.requests, t.failed, t.versions())
	r.check(t.failed == 0, "a rolling update lost no request: %d of %d failed%s", t.failed, t.requests, t.firstFailure())
	r.check(t.byVersion["v1"] > 0 && t.byVersion["v2"] > 0, "the answers switched from one version to the other: %s", t.versions())
	r.check(ro.done() && allOn(ro.group, "v1"), "every replica runs v1 at the end (%s)", replicaVersions(ro.group))
	return figuresOf("2 rolling v2 → v1", ro.took, t), nil
}

// canaryLesson rolls out a bad v3 as a canary, which is rolled back on its
// error rate at its first step.
func (r *run) canaryLesson(ctx context.Context, s *shoppers, base spec.Group) (rolloutFigures, error) {
	r.say("")
	r.say("3. Canary: v3, a bad release that fails %d%% of requests. Steps 25%% and 100%%, each held 30 s, and an", version.ErrorPercent)
	r.say("   automatic rollback once the new version fails more than 10%% of its requests at the balancer.")
	r.look("one canary tile; a quarter of the traffic on v3; its error rate climbs, the canary is rolled back and goes.")
	g := base
	g.Version, g.Flaw = version.Bad, version.FlawErrors
	g.Rollout = &spec.Rollout{Strategy: spec.StrategyCanary, Canary: &spec.Canary{Steps: []int{25, 100}, PauseSeconds: 30},
		AutoRollback: &spec.AutoRollback{ErrorRate: 0.1}}
	from := s.mark()
	ro, err := r.roll(ctx, g)
	if err != nil {
		return rolloutFigures{}, err
	}
	t := s.tally(from, s.mark())
	bad := version.Bad + " (" + version.FlawErrors + ")"
	if ro.back != nil {
		r.say("The controller rolled it back %s after the change: %s.", seconds(ro.back.Started.Sub(ro.put)), ro.back.Reason)
	}
	r.say("From the change until v1 alone served again (%s): %d requests, %d failed, answers: %s.", seconds(ro.took), t.requests, t.failed, t.versions())
	r.check(ro.back != nil && strings.HasPrefix(ro.back.Reason, "automatic"), "the canary was rolled back automatically%s", reasonOf(ro.back))
	r.check(ro.maxStep == 1 && ro.maxShare < 100, "it never went past its first step: step %d, at most %d%% of the traffic on v3", ro.maxStep, ro.maxShare)
	hist, err := r.rolloutHistory(ctx, rolloutGroup)
	if err != nil {
		r.check(false, "the rollout history says how the canary ended: %v", err)
	} else {
		i := slices.IndexFunc(hist.Rollouts, func(h controller.RolloutStatus) bool { return h.Revision == ro.rev })
		if i < 0 {
			r.check(false, "the rollout history has the canary, revision %d", ro.rev)
		} else {
			h := hist.Rollouts[i]
			r.say("History: revision %d (%s, %s) %s at step %d: %s", h.Revision, h.Version, h.Strategy, h.Status, h.Step, h.Reason)
			r.check(h.Status == controller.RolloutRolledBack && h.Reason != "" && h.Step == 1,
				"the history says it was rolled back at step 1 and why (status %s, step %d)", h.Status, h.Step)
		}
	}
	share := 0.0
	if t.requests > 0 {
		share = float64(t.failed) / float64(t.requests)
	}
	r.say("v3 answered %d requests and failed %d of them; the other %d answers, v1's, did not fail.",
		t.byVersion[version.Bad], t.failedBy[version.Bad], t.requests-t.byVersion[version.Bad])
	r.check(t.failed > 0 && t.failedBy[version.Bad] == t.failed, "the canary's failures are counted: %d, every one v3's", t.failed)
	r.check(share < canaryFailedShare, "most shoppers never met it: %.1f%% of requests failed (under %.0f%%)", share*100, canaryFailedShare*100)
	r.check(ro.done() && allOn(ro.group, "v1"), "every replica runs v1 again (%s)", replicaVersions(ro.group))
	return figuresOf("3 canary v1 → "+bad+", rolled back", ro.took, t), nil
}

// blueGreenLesson rolls v1 to v2 by a full green set and a switch, then
// switches back while blue is kept.
func (r *run) blueGreenLesson(ctx context.Context, s *shoppers, base spec.Group) (rolloutFigures, error) {
	r.say("")
	r.say("4. Blue-green: v1 (blue) to v2 (green). Four green replicas start beside blue, out of rotation; once all")
	r.say("   are ready, traffic switches at once, and blue is kept %d s for a switch back.", blueKept)
	r.look("eight tiles for a while; the switch moves every request to green; blue's tiles wait, idle.")
	before, err := r.group(ctx, rolloutGroup)
	if err != nil {
		return rolloutFigures{}, err
	}
	g := base
	g.Version, g.Rollout = "v2", &spec.Rollout{Strategy: spec.StrategyBlueGreen, BlueGreen: &spec.BlueGreen{ScaleDownDelaySeconds: blueKept}}
	from := s.mark()
	put := time.Now()
	st, _, err := r.api.PutGroup(ctx, g)
	if err != nil {
		return rolloutFigures{}, fmt.Errorf("roll out v2 blue-green: %w", err)
	}
	rev := st.Revision
	var ro controller.RolloutStatus
	err = waitFor(ctx, rolloutWithin, func() (bool, error) {
		st, err := r.group(ctx, rolloutGroup)
		if err != nil || st.Rollout == nil || st.Rollout.Revision != rev {
			return false, err
		}
		ro = *st.Rollout
		return !ro.Switched.IsZero() || !active(ro), nil
	})
	if err != nil {
		return rolloutFigures{}, fmt.Errorf("the switch to green (rollout %+v): %w", ro, err)
	}
	if ro.Switched.IsZero() {
		return rolloutFigures{}, fmt.Errorf("the blue-green rollout ended without a switch: %s %s", ro.Status, ro.Reason)
	}
	r.say("Green was ready and took the traffic %s after the change.", seconds(ro.Switched.Sub(put)))
	if err := sleep(ctx, greenHeld); err != nil {
		return rolloutFigures{}, err
	}
	switched := s.mark()
	t := s.tally(from, switched)
	sw := switchOf(s.since(from, switched), "v1", "v2", ro.Switched)
	r.say("To the switch and %s after: %d requests, %d failed, answers: %s.", seconds(greenHeld), t.requests, t.failed, t.versions())
	if sw.overlap > 0 {
		r.say("Blue's last answer came %s after green's first: requests already on their way to blue.", ms(sw.overlap))
	} else {
		r.say("Blue's last answer came before green's first: no two answers of the two versions overlapped.")
	}
	r.check(t.failed == 0, "no request failed while green started and took over: %d of %d%s", t.failed, t.requests, t.firstFailure())
	r.check(sw.early == 0, "no v2 answer before the switch: green stayed out of rotation until all of it was ready (%d came early)", sw.early)
	r.check(sw.seen && sw.late == 0, "the switch was at once: no request sent after green's first answer went to blue (%d did)", sw.late)

	r.say("")
	r.say("   And back: a rollback while blue is still kept.")
	r.look("blue's tiles take the traffic again at once; green's drain and stop.")
	back := time.Now()
	bst, err := r.rollback(ctx, rolloutGroup)
	if errors.Is(err, errNoRollbackRoute) {
		r.say("   Skipped: this controller has no rollback endpoint (POST /api/v1/groups/NAME/rollback); it rolls")
		r.say("   forward after %d s instead.", blueKept)
		ro, err := r.awaitRollout(ctx, rev, put)
		if err != nil {
			return rolloutFigures{}, err
		}
		return figuresOf("4 blue-green v1 → v2", ro.took, s.tally(from, s.mark())), nil
	}
	if err != nil {
		return rolloutFigures{}, err
	}
	r.say("Rolled back: revision %d runs %s again, from blue's replicas kept.", bst.Revision, bst.Version)
	ro2, err := r.awaitRollout(ctx, bst.Revision, back)
	if err != nil {
		return rolloutFigures{}, err
	}
	took := time.Since(put)
	// The last answers of green drain after the rollout ends.
	if err := sleep(ctx, 500*time.Millisecond); err != nil {
		return rolloutFigures{}, err
	}
	end := s.mark()
	tb := s.tally(switched, end)
	answers := s.since(switched, end)
	lastGreen := time.Time{}
	firstBlue := time.Time{}
	for _, a := range answers {
		if a.version == "v2" && a.sent.After(back) {
			lastGreen = a.sent
		}
		if a.version == "v1" && firstBlue.IsZero() && a.sent.After(back) {
			firstBlue = a.got
		}
	}
	if lastGreen.IsZero() {
		r.say("Blue answered again %s after the rollback was asked; no request sent after it went to green.", ms(firstBlue.Sub(back)))
	} else {
		r.say("Blue answered again %s after the rollback was asked; the last request sent to green left %s after it.",
			ms(firstBlue.Sub(back)), ms(lastGreen.Sub(back)))
	}
	r.say("The switch back took %s in all: %d requests, %d failed, answers: %s.", seconds(ro2.took), tb.requests, tb.failed, tb.versions())
	r.check(tb.failed == 0, "no request failed in the switch back: %d of %d%s", tb.failed, tb.requests, tb.firstFailure())
	r.check(!firstBlue.IsZero() && firstBlue.Sub(back) < 2*time.Second, "blue served again within 2 s (%s)", ms(firstBlue.Sub(back)))
	kept := sameReplicas(before, ro2.group)
	r.check(kept && allOn(ro2.group, "v1"), "the very blue replicas from before serve again, none started anew (%s)", replicaVersions(ro2.group))
	all := s.tally(from, end)
	return figuresOf("4 blue-green v1 → v2, and back", took, all), nil
}

// rolled is a rollout seen through: put is when the change was sent, took
// how long until the group was converged again on its last template.
type rolled struct {
	rev       int
	put       time.Time
	took      time.Duration
	last      controller.RolloutStatus  // the rollout to rev, as last seen
	back      *controller.RolloutStatus // the rollback that ended it, if one did
	maxStep   int
	maxShare  int
	group     controller.GroupStatus
	converged bool
}

func (ro rolled) done() bool { return ro.converged }

// roll puts g, which must start a rollout, and follows it to its end.
func (r *run) roll(ctx context.Context, g spec.Group) (rolled, error) {
	put := time.Now()
	st, _, err := r.api.PutGroup(ctx, g)
	if err != nil {
		return rolled{}, fmt.Errorf("roll out %s to %s: %w", g.Name, g.VersionLabel(), err)
	}
	if st.Rollout == nil || st.Rollout.Revision != st.Revision {
		return rolled{}, fmt.Errorf("the change of %s to %s started no rollout (the controller answered version %q, revision %d)", g.Name, g.VersionLabel(), st.Version, st.Revision)
	}
	r.say("Revision %d: %s (%s), %s rollout.", st.Revision, g.VersionLabel(), version.Describe(g.Version, g.Flaw), st.Rollout.Strategy)
	return r.awaitRollout(ctx, st.Revision, put)
}

// awaitRollout follows the rollout to revision rev until it ended, and
// the rollback that ended it if one did, and the group is converged.
func (r *run) awaitRollout(ctx context.Context, rev int, put time.Time) (rolled, error) {
	ro := rolled{rev: rev, put: put}
	progress := ""
	err := waitFor(ctx, rolloutWithin, func() (bool, error) {
		st, err := r.group(ctx, rolloutGroup)
		if err != nil || st.Rollout == nil {
			return false, err
		}
		ro.group = st
		cur := *st.Rollout
		switch {
		case cur.Revision == rev:
			ro.last = cur
			ro.maxStep, ro.maxShare = max(ro.maxStep, cur.Step), max(ro.maxShare, cur.Share)
		case cur.Rollback && cur.From == rev:
			ro.back = &cur
		default:
			return false, nil
		}
		if cur.Progress != progress && cur.Progress != "" {
			progress = cur.Progress
			what := cur.Strategy + " rollout"
			if cur.Rollback {
				what = "rollback"
			}
			r.say("   %s %s: %s", what, cur.Status, cur.Progress)
		}
		ro.converged = !active(cur) && st.Status == controller.StatusConverged && st.Ready == st.Desired
		return ro.converged, nil
	})
	ro.took = time.Since(put)
	if err != nil {
		return ro, fmt.Errorf("the rollout to revision %d (%s %s: %s): %w", rev, ro.last.Status, ro.group.Status, ro.group.Message, err)
	}
	return ro, nil
}

func reasonOf(ro *controller.RolloutStatus) string {
	if ro == nil {
		return ": it was not rolled back"
	}
	return ": " + ro.Reason
}

func allOn(st controller.GroupStatus, v string) bool {
	for _, rep := range st.Replicas {
		if rep.Version != v {
			return false
		}
	}
	return len(st.Replicas) == st.Desired && st.Desired > 0
}

func replicaVersions(st controller.GroupStatus) string {
	var parts []string
	for _, rep := range st.Replicas {
		parts = append(parts, rep.Name+" "+rep.Version)
	}
	return strings.Join(parts, ", ")
}

// sameReplicas reports whether a and b run the same replicas, by id.
func sameReplicas(a, b controller.GroupStatus) bool {
	ids := func(st controller.GroupStatus) []string {
		var out []string
		for _, rep := range st.Replicas {
			out = append(out, rep.ID)
		}
		slices.Sort(out)
		return out
	}
	return len(a.Replicas) > 0 && slices.Equal(ids(a), ids(b))
}

// rolloutHistory is the answer of GET /api/v1/groups/NAME/rollouts.
type rolloutHistory struct {
	Rollouts  []controller.RolloutStatus `json:"rollouts"`
	Revisions []controller.Revision      `json:"revisions"`
}

// rolloutHistory reads a group's rollouts and revisions, newest first.
func (r *run) rolloutHistory(ctx context.Context, name string) (rolloutHistory, error) {
	var out rolloutHistory
	err := r.api.Get(ctx, "/api/v1/groups/"+url.PathEscape(name)+"/rollouts", &out)
	return out, err
}

// errNoRollbackRoute: the controller has no rollback endpoint.
var errNoRollbackRoute = errors.New("no rollback endpoint")

// rollback asks the controller to roll a group back to the revision
// before, and returns the rollout that does it.
func (r *run) rollback(ctx context.Context, name string) (controller.RolloutStatus, error) {
	var out controller.RolloutStatus
	base := r.api.Addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/api/v1/groups/"+url.PathEscape(name)+"/rollback", nil)
	if err != nil {
		return out, err
	}
	if r.api.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.api.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out, fmt.Errorf("roll back %s: %w", name, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusNotFound && strings.Contains(string(data), "no route") {
		return out, errNoRollbackRoute
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("roll back %s: %d %s", name, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("roll back %s: %w", name, err)
	}
	return out, nil
}

// answer is one shopper request: when it was sent and answered, its
// status (0: no answer) and the version that gave it.
type answer struct {
	sent, got time.Time
	status    int
	version   string
	err       string
}

// shoppers ask a balancer over and over and keep every answer, in the
// order they came.
type shoppers struct {
	mu      sync.Mutex
	answers []answer
	done    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
	client  *http.Client
}

func startShoppers(ctx context.Context, endpoint string) *shoppers {
	s := &shoppers{done: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: shopperCount}}}
	deadline := time.Now().Add(shoppersFor)
	for range shopperCount {
		s.wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				select {
				case <-s.done:
					return
				default:
				}
				a := s.ask(ctx, endpoint)
				s.mu.Lock()
				s.answers = append(s.answers, a)
				s.mu.Unlock()
				sleep(ctx, shopperPause)
			}
		})
	}
	return s
}

func (s *shoppers) ask(ctx context.Context, endpoint string) answer {
	a := answer{sent: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+endpoint+shopperPath, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = s.client.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			a.status, a.version = resp.StatusCode, resp.Header.Get(version.Header)
		}
	}
	if err != nil {
		a.err = err.Error()
	}
	a.got = time.Now()
	return a
}

func (s *shoppers) stop() {
	s.stopped.Do(func() { close(s.done) })
	s.wg.Wait()
	s.client.CloseIdleConnections()
}

// mark is the number of answers so far: a lesson's answers are those
// between two marks.
func (s *shoppers) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.answers)
}

func (s *shoppers) since(from, to int) []answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.answers[from:to])
}

// tally is what a stretch of answers says.
type tally struct {
	requests, failed    int
	byVersion, failedBy map[string]int
	byFailure           map[string]int
	firstFail, lastFail time.Time
	first               string
}

func (s *shoppers) tally(from, to int) tally {
	t := tally{byVersion: map[string]int{}, failedBy: map[string]int{}, byFailure: map[string]int{}}
	for _, a := range s.since(from, to) {
		t.requests++
		if a.version != "" {
			t.byVersion[a.version]++
		}
		if a.status == http.StatusOK {
			continue
		}
		t.failed++
		if a.version != "" {
			t.failedBy[a.version]++
		}
		what := fmt.Sprint(a.status)
		if a.status == 0 {
			what = "no answer"
		}
		t.byFailure[what]++
		if t.firstFail.IsZero() {
			t.firstFail, t.first = a.got, what
			if a.err != "" {
				t.first += ": " + a.err
			}
		}
		t.lastFail = a.got
	}
	return t
}

func (t tally) versions() string {
	if len(t.byVersion) == 0 {
		return "none"
	}
	var parts []string
	for _, v := range sortedKeys(t.byVersion) {
		parts = append(parts, fmt.Sprintf("%s %d", v, t.byVersion[v]))
	}
	return strings.Join(parts, ", ")
}

func (t tally) failures() string {
	if t.failed == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(t.byFailure) {
		parts = append(parts, fmt.Sprintf("%d × %s", t.byFailure[k], k))
	}
	return strings.Join(parts, ", ")
}

func (t tally) firstFailure() string {
	if t.failed == 0 {
		return ""
	}
	return ", the first: " + t.first
}

// active reports whether a rollout still moves replicas.
func active(ro controller.RolloutStatus) bool {
	return ro.Status == controller.RolloutProgressing || ro.Status == controller.RolloutPaused
}

// versionSwitch is how answers went from one version to another at a
// switch.
type versionSwitch struct {
	seen bool // an answer of the new version came
	// early counts answers of the new version before the switch; late
	// answers of the old version to requests sent after the new version's
	// first answer came.
	early, late int
	// overlap is from the new version's first answer to the old one's
	// last: requests already on their way when the switch came.
	overlap time.Duration
}

func switchOf(answers []answer, from, to string, switched time.Time) versionSwitch {
	var sw versionSwitch
	var firstTo, lastFrom time.Time
	for _, a := range answers {
		if a.version == to && (!sw.seen || a.got.Before(firstTo)) {
			firstTo, sw.seen = a.got, true
		}
		if a.version == from && a.got.After(lastFrom) {
			lastFrom = a.got
		}
	}
	for _, a := range answers {
		if a.version == to && a.got.Before(switched) {
			sw.early++
		}
		if sw.seen && a.version == from && a.sent.After(firstTo) {
			sw.late++
		}
	}
	if sw.seen && lastFrom.After(firstTo) {
		sw.overlap = lastFrom.Sub(firstTo)
	}
	return sw
}
