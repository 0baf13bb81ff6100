package controller

import (
	"slices"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/orchestrator/spec"
	"github.com/flotilla/flotilla/sample-services/bus/access"
)

func TestBusTemplate(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	c := New(Options{BusSecret: secret})
	g := spec.Group{Name: "bus", Service: "bus", Replicas: 1}.WithDefaults()
	s := c.withBus(template(g, "flotilla-bus:test"))
	if s.Store != "/data" || s.Port != spec.ShopPort {
		t.Errorf("bus template: store %q, port %d; want /data and %d", s.Store, s.Port, spec.ShopPort)
	}
	if !slices.Contains(s.Env, access.SecretEnv+"="+secret) {
		t.Errorf("the bus lacks its secret: %v", s.Env)
	}

	// checkout gets its own password, not the secret.
	co := c.withBus(template(spec.Group{Name: "checkout", Service: "checkout", Replicas: 1}.WithDefaults(), "flotilla-shop:test"))
	pw, _ := access.Password(secret, "checkout")
	for _, want := range []string{"NATS_URL=nats://bus:4222", "NATS_USER=checkout", "NATS_PASSWORD=" + pw} {
		if !slices.Contains(co.Env, want) {
			t.Errorf("checkout env %v lacks %s", co.Env, want)
		}
	}
	if strings.Contains(strings.Join(co.Env, " "), secret) || co.Store != "" {
		t.Errorf("checkout got the secret or a store: %v, %q", co.Env, co.Store)
	}
	// A service that does not use the bus gets nothing of it.
	cat := c.withBus(template(spec.Group{Name: "catalog", Service: "catalog", Replicas: 1}.WithDefaults(), "flotilla-shop:test"))
	if strings.Contains(strings.Join(cat.Env, " "), "NATS_") {
		t.Errorf("catalog got bus credentials: %v", cat.Env)
	}
	// The secret does not shape the template: changing it replaces nothing.
	other := New(Options{BusSecret: secret + "x"}).withBus(template(g, "flotilla-bus:test"))
	if other.TemplateHash != s.TemplateHash {
		t.Error("the bus secret changes the template hash")
	}
	if New(Options{}).opt.BusSecret == New(Options{}).opt.BusSecret {
		t.Error("two controllers without a secret share a random one")
	}
}
