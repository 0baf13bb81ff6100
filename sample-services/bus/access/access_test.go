package access

import (
	"slices"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, subject string
		want             bool
	}{
		{"orders.placed", "orders.placed", true},
		{"orders.placed", "orders.placed.x", false},
		{"orders.placed", "orders", false},
		{"orders.*", "orders.placed", true},
		{"orders.*", "orders.placed.x", false},
		{"orders.>", "orders.placed.x", true},
		{"orders.>", "orders", false},
		{">", "anything.at.all", true},
		{"$JS.API.CONSUMER.INFO.*.*", "$JS.API.CONSUMER.INFO.ORDERS.inventory", true},
		{"$JS.API.CONSUMER.INFO.*.*", "$JS.API.CONSUMER.INFO.ORDERS", false},
		{"a.>.b", "a.x.b", false}, // '>' only counts last
	} {
		if got := Match(c.pattern, c.subject); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.subject, got, c.want)
		}
	}
}

// TestShopPermissions is the permission table of the shop: each service
// may publish and consume its own subjects, and nothing of the others.
func TestShopPermissions(t *testing.T) {
	type rule struct {
		subject string
		want    bool
	}
	pub := map[string][]rule{
		"checkout": {
			{"orders.placed", true},
			{"orders.fulfill", true},
			{"orders.cancelled", false},
			{"$JS.API.CONSUMER.MSG.NEXT.ORDERS.notifications", false},
			{"$JS.API.STREAM.CREATE.ORDERS", false},
			{"$KV.carts.alice", false},
		},
		"notifications": {
			{"orders.placed", false},
			{"$JS.API.CONSUMER.MSG.NEXT.ORDERS.notifications", true},
			{"$JS.API.CONSUMER.INFO.ORDERS.notifications", true},
			{"$JS.ACK.ORDERS.notifications.1.7.7.1700000000.0", true},
			{"$JS.API.CONSUMER.MSG.NEXT.ORDERS.inventory", false},
			{"$JS.ACK.ORDERS.inventory.1.7.7.1700000000.0", false},
			{"$JS.API.CONSUMER.DELETE.ORDERS.notifications", false},
			{"$JS.API.CONSUMER.CREATE.ORDERS.notifications", false},
			{"$JS.API.STREAM.PURGE.ORDERS", false},
			// Its own record of applied events, and no other service's.
			{"$KV.applied_notifications.o-1", true},
			{"$JS.API.DIRECT.GET.KV_applied_notifications.$KV.applied_notifications.o-1", true},
			{"$JS.API.STREAM.INFO.KV_applied_notifications", true},
			{"$KV.applied_inventory.o-1", false},
			{"$JS.API.STREAM.PURGE.KV_applied_notifications", false},
		},
		"inventory": {
			{"$JS.API.CONSUMER.MSG.NEXT.ORDERS.inventory", true},
			{"$JS.API.CONSUMER.MSG.NEXT.ORDERS.analytics", false},
		},
		"analytics": {
			{"$JS.API.CONSUMER.MSG.NEXT.ORDERS.analytics", true},
			{"$JS.API.CONSUMER.MSG.NEXT.FULFILLMENT.fulfillment", false},
		},
		"fulfillment": {
			{"$JS.API.CONSUMER.MSG.NEXT.FULFILLMENT.fulfillment", true},
			{"$JS.ACK.FULFILLMENT.fulfillment.1.3.3.1700000000.0", true},
			{"orders.fulfill", false},
			{"$JS.API.CONSUMER.MSG.NEXT.ORDERS.notifications", false},
		},
		"receipt": {
			{"$JS.API.CONSUMER.MSG.NEXT.ORDERS.receipt", true},
			{"$JS.API.CONSUMER.INFO.ORDERS.receipt", true},
			{"$JS.ACK.ORDERS.receipt.1.9.9.1700000000.0", true},
			{"$KV.applied_receipt.o-1", true},
			{"$JS.API.CONSUMER.MSG.NEXT.ORDERS.notifications", false},
			{"$KV.applied_notifications.o-1", false},
			{"orders.placed", false},
		},
		"cart": {
			{"$KV.carts.alice", true},
			{"$JS.API.DIRECT.GET.KV_carts.$KV.carts.alice", true},
			{"$JS.API.CONSUMER.CREATE.KV_carts.x.$KV.carts.>", true},
			{"$JS.API.STREAM.DELETE.KV_carts", false},
			{"$JS.API.STREAM.PURGE.KV_carts", false},
			{"orders.placed", false},
			{"$KV.sessions.alice", false},
		},
		Monitor: {
			{"$JS.API.STREAM.INFO.ORDERS", true},
			{"$JS.API.CONSUMER.INFO.ORDERS.inventory", true},
			{"$JS.API.STREAM.MSG.GET.ORDERS", true},
			{"orders.placed", false},
			{"$JS.API.STREAM.DELETE.ORDERS", false},
			{"$JS.API.CONSUMER.MSG.NEXT.ORDERS.inventory", false},
		},
		Admin: {
			{"$JS.API.STREAM.CREATE.ORDERS", true},
			{"orders.placed", true},
		},
	}
	users := Shop.Users()
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	want := []string{"admin", "analytics", "cart", "checkout", "fulfillment", "inventory", "monitor", "notifications", "receipt"}
	if !slices.Equal(names, want) {
		t.Fatalf("users = %v, want %v", names, want)
	}
	for name, rules := range pub {
		u, ok := Shop.Lookup(name)
		if !ok {
			t.Fatalf("no user %s", name)
		}
		for _, r := range rules {
			if got := u.MayPublish(r.subject); got != r.want {
				t.Errorf("%s may publish %s = %v, want %v", name, r.subject, got, r.want)
			}
		}
	}
	// Only the admin may change the topology, and each user reads only its
	// own inbox.
	for _, u := range users {
		if u.Name == Admin {
			continue
		}
		for _, op := range []string{"STREAM.CREATE.ORDERS", "STREAM.UPDATE.ORDERS", "STREAM.DELETE.ORDERS", "STREAM.PURGE.FULFILLMENT", "CONSUMER.DELETE.ORDERS.inventory", "CONSUMER.DURABLE.CREATE.ORDERS.x"} {
			if u.MayPublish("$JS.API." + op) {
				t.Errorf("%s may publish $JS.API.%s", u.Name, op)
			}
		}
		if !u.MaySubscribe(InboxPrefix(u.Name)+".abc") || len(u.Subscribe) != 1 {
			t.Errorf("%s subscribes to %v, want only its inbox %s.>", u.Name, u.Subscribe, InboxPrefix(u.Name))
		}
		for _, other := range users {
			if other.Name != u.Name && u.MaySubscribe(InboxPrefix(other.Name)+".abc") {
				t.Errorf("%s may read %s's inbox", u.Name, other.Name)
			}
		}
		if u.MaySubscribe("orders.placed") {
			t.Errorf("%s may subscribe to orders.placed directly, bypassing its consumer", u.Name)
		}
	}
	for _, svc := range Shop.Subscribers() {
		stream, c, ok := Shop.Subscription(svc)
		if !ok || c.Durable != svc || stream == "" {
			t.Errorf("Subscription(%s) = %q, %+v, %v", svc, stream, c, ok)
		}
	}
	if _, _, ok := Shop.Subscription("checkout"); ok {
		t.Error("checkout, a publisher, has a subscription")
	}
	if _, ok := Shop.Lookup("gateway"); ok {
		t.Error("gateway, which uses no bus, is a user")
	}
}

func TestPassword(t *testing.T) {
	secret := strings.Repeat("s", MinSecretLen)
	a, err := Password(secret, "checkout")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Password(secret, "checkout")
	other, _ := Password(secret, "cart")
	otherSecret, _ := Password(secret+"x", "checkout")
	if a != again || len(a) != 64 {
		t.Errorf("password %q is not a stable 64-hex-digit string (%q)", a, again)
	}
	if a == other || a == otherSecret {
		t.Error("two users, or two secrets, share a password")
	}
	if strings.Contains(a, secret) {
		t.Error("the password holds the secret")
	}
	if _, err := Password("short", "checkout"); err != ErrShortSecret {
		t.Errorf("short secret: err = %v, want ErrShortSecret", err)
	}
}
