package consume

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/sample-services/bus/access"
)

// BenchmarkFanout runs the consume loop of the three fanout services (one
// replica each, in this process, against an embedded bus) on a burst of
// orders, and the same burst taken by bare nats.go consumers that only
// acknowledge (no ledger), on the same server in the same run. It reports
// delivered messages per second of each and their ratio: the ledger's cost,
// without containers or the network between them. make bench-bus measures
// the same through the shop's containers.
func BenchmarkFanout(b *testing.B) {
	const n = 5000
	services := []string{"notifications", "inventory", "analytics"}
	bk := startBus(b)
	checkout := connect(b, bk, "checkout")
	admin := connect(b, bk, access.Admin)
	burst := func(prefix string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := range n {
			id := fmt.Sprintf("%s-%d", prefix, i)
			data, _ := json.Marshal(order(id))
			m := &nats.Msg{Subject: access.SubjectOrderPlaced, Data: data, Header: nats.Header{}}
			m.Header.Set(access.EventIDHeader, id)
			if _, err := checkout.JS.PublishMsgAsync(m, jetstream.WithMsgID(id)); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-checkout.JS.PublishAsyncComplete():
		case <-ctx.Done():
			b.Fatal("publish did not complete")
		}
	}
	var flotilla, bare []float64
	for trial := range max(b.N, 3) {
		// Flotilla's loop.
		var reps []*replica
		for _, s := range services {
			reps = append(reps, startReplica(b, bk, s, s+"-1", nil, Faults{}))
		}
		for _, r := range reps {
			eventually(b, r.loop.Durable+" bound", r.loop.Bound)
		}
		start := time.Now()
		burst(fmt.Sprintf("f%d", trial))
		eventually(b, "every order applied by each service", func() bool {
			for _, r := range reps {
				if r.effects.Load() < n {
					return false
				}
			}
			return true
		})
		flotilla = append(flotilla, float64(3*n)/time.Since(start).Seconds())
		for _, r := range reps {
			r.stop()
		}

		// Bare consumers, new ones on the same stream, acking only.
		var got atomic.Int64
		var ccs []jetstream.ConsumeContext
		ctx := context.Background()
		for i := range services {
			cons, err := admin.JS.CreateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: fmt.Sprintf("bare%d_%d", trial, i),
				AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy, FilterSubject: access.SubjectOrderPlaced})
			if err != nil {
				b.Fatal(err)
			}
			cc, err := cons.Consume(func(m jetstream.Msg) {
				if m.Ack() == nil {
					got.Add(1)
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			ccs = append(ccs, cc)
		}
		start = time.Now()
		burst(fmt.Sprintf("b%d", trial))
		eventually(b, "every order acked by each bare consumer", func() bool { return got.Load() >= 3*n })
		bare = append(bare, float64(3*n)/time.Since(start).Seconds())
		for _, cc := range ccs {
			cc.Stop()
		}
		b.Logf("trial %d: flotilla %.0f/s, bare %.0f/s", trial, flotilla[trial], bare[trial])
	}
	f, bb := median(flotilla), median(bare)
	b.ReportMetric(f, "flotilla-msg/s")
	b.ReportMetric(bb, "bare-msg/s")
	b.ReportMetric(f/bb, "ratio")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
