package spec

import (
	"errors"
	"testing"
	"time"
)

func TestAutoscaleValidate(t *testing.T) {
	base := func() Group {
		return Group{Name: "fn", Service: "recommend", Autoscale: &Autoscale{Max: 5, TargetConcurrency: 10}}.WithDefaults()
	}
	if err := base().Validate(DefaultMaxReplicas); err != nil {
		t.Fatalf("a plain autoscaled group is refused: %v", err)
	}
	trig := base()
	trig.Service, trig.Autoscale = "receipt", &Autoscale{Max: 3, Trigger: "orders.placed", IdleAfter: "5s", WarmPool: 3, Queue: Queue{Size: 10, Timeout: "2s"}}
	if err := trig.Validate(DefaultMaxReplicas); err != nil {
		t.Fatalf("a triggered group is refused: %v", err)
	}
	for name, tt := range map[string]struct {
		edit  func(*Autoscale)
		field string
	}{
		"min over max":         {func(a *Autoscale) { a.Min = 6 }, "autoscale.min"},
		"negative min":         {func(a *Autoscale) { a.Min = -1 }, "autoscale.min"},
		"max over the limit":   {func(a *Autoscale) { a.Max = DefaultMaxReplicas + 1 }, "autoscale.max"},
		"max zero":             {func(a *Autoscale) { a.Max = 0 }, "autoscale.max"},
		"no target":            {func(a *Autoscale) { a.TargetConcurrency = 0 }, "autoscale.targetConcurrency"},
		"negative target":      {func(a *Autoscale) { a.TargetConcurrency = -2 }, "autoscale.targetConcurrency"},
		"idle too short":       {func(a *Autoscale) { a.IdleAfter = "4s" }, "autoscale.idleAfter"},
		"idle unreadable":      {func(a *Autoscale) { a.IdleAfter = "soon" }, "autoscale.idleAfter"},
		"pool over max":        {func(a *Autoscale) { a.WarmPool = 6 }, "autoscale.warmPool"},
		"queue too large":      {func(a *Autoscale) { a.Queue.Size = MaxQueueSize + 1 }, "autoscale.queue.size"},
		"queue timeout long":   {func(a *Autoscale) { a.Queue.Timeout = "1h" }, "autoscale.queue.timeout"},
		"panic over stable":    {func(a *Autoscale) { a.StableWindow = "5s"; a.PanicWindow = "10s" }, "autoscale.panicWindow"},
		"bad trigger":          {func(a *Autoscale) { a.Trigger = "orders..placed" }, "autoscale.trigger"},
		"trigger with a space": {func(a *Autoscale) { a.Trigger = "orders placed" }, "autoscale.trigger"},
	} {
		g := base()
		tt.edit(g.Autoscale)
		err := g.Validate(DefaultMaxReplicas)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("%s: %v, want an error on %s", name, err, tt.field)
		}
	}
	noLB := base()
	noLB.Balancer.Policy = PolicyNone
	if err := noLB.Validate(DefaultMaxReplicas); err == nil {
		t.Error("an autoscaled group without a balancer is accepted: nothing could hold its requests")
	}
	bus := base()
	bus.Service, bus.Autoscale.Max = BusService, 2
	if err := bus.Validate(DefaultMaxReplicas); err == nil {
		t.Errorf("the bus autoscaled over its own bound is accepted")
	}
}

func TestAutoscaleDefaults(t *testing.T) {
	a := Autoscale{Max: 2, Trigger: "orders.placed"}
	if a.Target() != DefaultTargetPending || a.QueueSize() != DefaultQueueSize {
		t.Fatalf("defaults: target %g, queue %d", a.Target(), a.QueueSize())
	}
	d := Autoscale{IdleAfter: "7s", StableWindow: "9s", Queue: Queue{Timeout: "3s"}}.Durations()
	want := Durations{IdleAfter: 7 * time.Second, StableWindow: 9 * time.Second, PanicWindow: DefaultPanicWindow, QueueTimeout: 3 * time.Second}
	if d != want {
		t.Fatalf("durations %+v, want %+v", d, want)
	}
}
