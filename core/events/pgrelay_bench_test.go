package events_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// BenchmarkRelayLatency measures the PostgreSQL hop alone: an event
// committed and published on daemon A until it reaches a subscriber of
// daemon B's bus, at 500 events per second (one b.N is one event).
//
//	bash .ci/services.sh go test -run '^$' -bench RelayLatency -benchtime=5000x ./core/monitor/
func BenchmarkRelayLatency(b *testing.B) {
	dsn, dbA, dbB := storetest.SharedPostgres(b)
	ctx := sys()
	busA, busB := events.New(), events.New()
	ra, err := events.StartPGRelay(ctx, dsn, busA, dbA.Client, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ra.Close()
	rb, err := events.StartPGRelay(ctx, dsn, busB, dbB.Client, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rb.Close()
	sub, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := busB.Subscribe(sub, events.Filter{})
	lat := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range ch {
			ns, _ := strconv.ParseInt(e.Message, 10, 64)
			lat = append(lat, time.Duration(time.Now().UnixNano()-ns))
			if len(lat) == b.N {
				return
			}
		}
	}()
	b.ResetTimer()
	began := time.Now()
	for i := range b.N {
		if wait := time.Until(began.Add(time.Duration(i) * time.Second / 500)); wait > 0 {
			time.Sleep(wait)
		}
		start := time.Now()
		e, err := dbA.Event.Create().SetType("task.bench").SetTaskID(i%64 + 1).SetMessage(strconv.FormatInt(start.UnixNano(), 10)).Save(ctx)
		if err != nil {
			b.Fatal(err)
		}
		busA.Publish(e)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.Fatalf("%d of %d events arrived", len(lat), b.N)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
