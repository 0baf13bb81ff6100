package client

import (
	"strings"
	"testing"
)

func TestFromEnvNeedsAddressAndUser(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"NATS_URL": "nats://bus:4222"},
		{"NATS_USER": "checkout"},
	} {
		_, err := FromEnv(func(k string) string { return env[k] })
		if err == nil || !strings.Contains(err.Error(), "NATS_URL and NATS_USER must be set") {
			t.Errorf("env %v: err = %v", env, err)
		}
	}
}

func TestPublishDeniedPattern(t *testing.T) {
	m := publishDenied.FindStringSubmatch(`nats: permissions violation: Permissions Violation for Publish to "orders.placed"`)
	if m == nil || m[1] != "orders.placed" {
		t.Errorf("match = %q", m)
	}
	if publishDenied.MatchString(`nats: permissions violation: Permissions Violation for Subscription to "orders.placed"`) {
		t.Error("a refused subscription taken for a refused publish")
	}
}
