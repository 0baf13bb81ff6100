package spec

import (
	"errors"
	"testing"
)

func TestRolloutAndVersionValidate(t *testing.T) {
	zero, one, many := 0, 1, MaxSurgeLimit+1
	base := func() Group { return Group{Name: "shop", Service: "monolith", Replicas: 3}.WithDefaults() }
	ok := base()
	ok.Version, ok.Flaw = "v3", "crash"
	ok.Rollout = &Rollout{Strategy: StrategyCanary, Canary: &Canary{Steps: []int{5, 50}, PauseSeconds: 1}, AutoRollback: &AutoRollback{ErrorRate: 0.05}}
	if err := ok.Validate(DefaultMaxReplicas); err != nil {
		t.Fatalf("a good canary of v3 is refused: %v", err)
	}
	for name, tt := range map[string]struct {
		edit  func(*Group)
		field string
	}{
		"unknown version":          {func(g *Group) { g.Version = "v9" }, "version"},
		"flaw on a good release":   {func(g *Group) { g.Version, g.Flaw = "v2", "errors" }, "flaw"},
		"unknown flaw":             {func(g *Group) { g.Version, g.Flaw = "v3", "slow" }, "flaw"},
		"unknown strategy":         {func(g *Group) { g.Rollout = &Rollout{Strategy: "big-bang"} }, "rollout.strategy"},
		"surge and unavailable 0":  {func(g *Group) { g.Rollout = &Rollout{MaxSurge: &zero, MaxUnavailable: &zero} }, "rollout.maxSurge"},
		"surge over the limit":     {func(g *Group) { g.Rollout = &Rollout{MaxSurge: &many} }, "rollout.maxSurge"},
		"negative unavailable":     {func(g *Group) { u := -1; g.Rollout = &Rollout{MaxUnavailable: &u} }, "rollout.maxUnavailable"},
		"steps not increasing":     {func(g *Group) { g.Rollout = &Rollout{Canary: &Canary{Steps: []int{50, 20}}} }, "rollout.canary.steps"},
		"a step over 100":          {func(g *Group) { g.Rollout = &Rollout{Canary: &Canary{Steps: []int{10, 120}}} }, "rollout.canary.steps"},
		"a step of 0":              {func(g *Group) { g.Rollout = &Rollout{Canary: &Canary{Steps: []int{0, 50}}} }, "rollout.canary.steps"},
		"deadline too short":       {func(g *Group) { g.Rollout = &Rollout{ProgressDeadlineSeconds: 2} }, "rollout.progressDeadlineSeconds"},
		"error rate over 1":        {func(g *Group) { g.Rollout = &Rollout{AutoRollback: &AutoRollback{ErrorRate: 1.5}} }, "rollout.autoRollback.errorRate"},
		"negative min ready":       {func(g *Group) { g.Rollout = &Rollout{MinReadySeconds: -1} }, "rollout.minReadySeconds"},
		"negative scale-down wait": {func(g *Group) { g.Rollout = &Rollout{BlueGreen: &BlueGreen{ScaleDownDelaySeconds: -1}} }, "rollout.blueGreen.scaleDownDelaySeconds"},
	} {
		g := base()
		tt.edit(&g)
		err := g.Validate(DefaultMaxReplicas)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("%s: %v, want an error on %s", name, err, tt.field)
		}
	}
	// Surge 0 with unavailable 1 is a valid, slower update.
	g := base()
	g.Rollout = &Rollout{MaxSurge: &zero, MaxUnavailable: &one}
	if err := g.Validate(DefaultMaxReplicas); err != nil {
		t.Errorf("surge 0, unavailable 1: %v", err)
	}
}

func TestRolloutSettled(t *testing.T) {
	s := (*Rollout)(nil).Settled()
	if s.Strategy != StrategyRolling || *s.MaxSurge != DefaultMaxSurge || *s.MaxUnavailable != DefaultMaxUnavailable ||
		s.ProgressDeadlineSeconds != DefaultProgressDeadlineSeconds || s.BlueGreen.ScaleDownDelaySeconds != DefaultScaleDownDelaySeconds {
		t.Fatalf("defaults %+v", s)
	}
	c := (&Rollout{Canary: &Canary{Steps: []int{10, 40}}}).Settled().Canary
	if len(c.Steps) != 3 || c.Steps[2] != 100 || c.PauseSeconds != DefaultCanaryPauseSeconds {
		t.Fatalf("a canary under 100 ends at 100: %+v", c)
	}
	g := Group{Name: "x", Service: "monolith", Version: "v3"}.WithDefaults()
	if g.Flaw != "errors" || g.VersionLabel() != "v3 (errors)" {
		t.Fatalf("v3 without a flaw: %q %q", g.Flaw, g.VersionLabel())
	}
	if (Group{Name: "x", Service: "monolith"}.WithDefaults()).TemplateHash("img") != (Group{Name: "x", Service: "monolith", Version: "v1"}.WithDefaults()).TemplateHash("img") {
		t.Fatal("naming the default version changes the template")
	}
	if (Group{Service: "monolith", Version: "v2"}).TemplateHash("img") == (Group{Service: "monolith", Version: "v1"}).TemplateHash("img") {
		t.Fatal("v2 has v1's template")
	}
}
