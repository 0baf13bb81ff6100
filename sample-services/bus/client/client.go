// Package client connects a sample service to the bus as its own user
// (package access), and makes the bus's refusals plain errors.
//
// NATS reports a refused publish asynchronously, as a permissions
// violation on the connection, while the publisher's request for an ack
// would only time out. Publish waits for either, so a service that
// publishes a subject it may not gets ErrForbidden at once, naming the
// subject, rather than a timeout.
//
// It imports nats.go, not the NATS server: a service links the client only.
package client

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus/access"
)

// ErrForbidden is a publish or subscribe the bus refused for the user's
// permissions. It wraps nats.ErrPermissionViolation.
var ErrForbidden = fmt.Errorf("forbidden by the bus: %w", nats.ErrPermissionViolation)

// Client is one service's connection to the bus.
type Client struct {
	User string
	Conn *nats.Conn
	JS   jetstream.JetStream

	mu      sync.Mutex
	waiters map[string][]chan string // subject → publishes waiting for an answer
}

// FromEnv connects with NATS_URL, NATS_USER and NATS_PASSWORD.
func FromEnv(getenv func(string) string) (*Client, error) {
	url, user := getenv(access.URLEnv), getenv(access.UserEnv)
	if url == "" || user == "" {
		return nil, fmt.Errorf("connect to the bus: %s and %s must be set", access.URLEnv, access.UserEnv)
	}
	return Connect(url, user, getenv(access.PasswordEnv))
}

// Connect connects to the bus at url as user, reading replies on the
// user's own inbox, and reconnecting for ever if the bus goes away.
func Connect(url, user, password string, opts ...nats.Option) (*Client, error) {
	c := &Client{User: user, waiters: map[string][]chan string{}}
	opts = append([]nats.Option{
		nats.Name(user),
		nats.UserInfo(user, password),
		nats.CustomInboxPrefix(access.InboxPrefix(user)),
		nats.MaxReconnects(-1),
		nats.ErrorHandler(c.asyncError),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to the bus at %s as %s: %w", url, user, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.Conn, c.JS = nc, js
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() { c.Conn.Close() }

var publishDenied = regexp.MustCompile(`(?i)permissions violation for publish to "([^"]+)"`)

// asyncError wakes the publishes to a subject the bus refused.
func (c *Client) asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	m := publishDenied.FindStringSubmatch(err.Error())
	if m == nil {
		return
	}
	c.mu.Lock()
	ws := c.waiters[m[1]]
	delete(c.waiters, m[1])
	c.mu.Unlock()
	for _, w := range ws {
		w <- err.Error()
	}
}

func (c *Client) wait(subject string) chan string {
	ch := make(chan string, 1)
	c.mu.Lock()
	c.waiters[subject] = append(c.waiters[subject], ch)
	c.mu.Unlock()
	return ch
}

func (c *Client) unwait(subject string, ch chan string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.waiters[subject]
	for i, w := range ws {
		if w == ch {
			c.waiters[subject] = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(c.waiters[subject]) == 0 {
		delete(c.waiters, subject)
	}
}

// Publish publishes data to subject on its stream and waits for the
// stream's ack. A non-empty msgID is sent as Nats-Msg-Id, so a repeat
// within the stream's window is dropped (the ack says Duplicate). A
// subject the user may not publish is ErrForbidden.
func (c *Client) Publish(ctx context.Context, subject string, data []byte, msgID string) (*jetstream.PubAck, error) {
	return c.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data}, msgID)
}

// PublishMsg is Publish of a message with headers of its own (an event's
// Flotilla-Event-Id).
func (c *Client) PublishMsg(ctx context.Context, m *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	subject := m.Subject
	denied := c.wait(subject)
	defer c.unwait(subject, denied)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		ack *jetstream.PubAck
		err error
	}
	done := make(chan result, 1)
	go func() {
		var opts []jetstream.PublishOpt
		if msgID != "" {
			opts = append(opts, jetstream.WithMsgID(msgID))
		}
		ack, err := c.JS.PublishMsg(ctx, m, opts...)
		done <- result{ack, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("publish %s as %s: %w", subject, c.User, r.err)
		}
		return r.ack, nil
	case why := <-denied:
		return nil, fmt.Errorf("publish %s as %s: %w (%s)", subject, c.User, ErrForbidden, why)
	}
}
