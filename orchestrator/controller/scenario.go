package controller

import (
	"context"
	"fmt"
	"sort"

	"github.com/flotilla/flotilla/orchestrator/hub"
	"github.com/flotilla/flotilla/orchestrator/spec"
)

// ScenarioResult says what applying a scenario changed.
type ScenarioResult struct {
	Scenario  string   `json:"scenario"`
	Created   []string `json:"created"`
	Updated   []string `json:"updated"`
	Deleted   []string `json:"deleted"`
	Unchanged []string `json:"unchanged"`
}

// ApplyScenario makes the desired groups exactly the scenario's: groups it
// lacks are deleted, new ones created, changed ones updated, and the rest
// left alone, so only what changes is touched. Every group is validated
// before anything changes.
func (c *Controller) ApplyScenario(ctx context.Context, sc spec.Scenario) (ScenarioResult, error) {
	res := ScenarioResult{Scenario: sc.Name, Created: []string{}, Updated: []string{}, Deleted: []string{}, Unchanged: []string{}}
	want := map[string]spec.Group{}
	for _, g := range sc.Groups {
		g = g.WithDefaults()
		if err := c.validate(g); err != nil {
			return res, fmt.Errorf("scenario %s: group %q: %w", sc.Name, g.Name, err)
		}
		want[g.Name] = g
	}
	c.mu.Lock()
	have := map[string]spec.Group{}
	for name, g := range c.groups {
		if g.desired != nil {
			have[name] = *g.desired
		}
	}
	c.mu.Unlock()

	for _, name := range sortedKeys(have) {
		if _, keep := want[name]; !keep {
			if err := c.DeleteGroup(ctx, name); err != nil {
				return res, err
			}
			res.Deleted = append(res.Deleted, name)
		}
	}
	for _, name := range sortedKeys(want) {
		g := want[name]
		old, exists := have[name]
		if exists && old.Equal(g) {
			res.Unchanged = append(res.Unchanged, name)
			continue
		}
		if _, _, err := c.PutGroup(ctx, g); err != nil {
			return res, err
		}
		if exists {
			res.Updated = append(res.Updated, name)
		} else {
			res.Created = append(res.Created, name)
		}
	}
	if err := c.opt.Store.SetScenario(sc.Name); err != nil {
		return res, fmt.Errorf("store scenario: %w", err)
	}
	c.mu.Lock()
	c.scenario = sc.Name
	c.mu.Unlock()
	c.publish(hub.ScenarioApplied, "", "", "", "scenario %s applied: %s", sc.Name, res.summary())
	return res, nil
}

// Scenario is the name of the scenario last applied, or "".
func (c *Controller) Scenario() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scenario
}

func (r ScenarioResult) summary() string {
	return fmt.Sprintf("%d created, %d updated, %d deleted, %d unchanged", len(r.Created), len(r.Updated), len(r.Deleted), len(r.Unchanged))
}

func sortedKeys(m map[string]spec.Group) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
