package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

// Channel is the PostgreSQL notification channel events travel on.
const Channel = "rpacloud_events"

// maxPayload stays under PostgreSQL's 8000-byte notification limit; bigger
// events travel as their id and are read back from the table.
const maxPayload = 7900

// PGRelay carries events between the daemons sharing one PostgreSQL with
// LISTEN/NOTIFY. Each daemon sends the events it publishes, in publish
// order, on one connection; PostgreSQL delivers notifications in commit
// order, so every daemon sees one task's events in the order they
// happened. A daemon skips its own notifications: its subscribers already
// had them from the in-process bus.
type PGRelay struct {
	dsn    string
	bus    *Bus
	client *ent.Client
	log    *slog.Logger
	origin string

	out     chan []*ent.Event
	dropped atomic.Int64
	seen    *idSet

	stop context.CancelFunc
	wg   sync.WaitGroup
}

type notice struct {
	Origin string     `json:"o"`
	ID     int        `json:"id,omitempty"`
	Event  *ent.Event `json:"e,omitempty"`
}

// StartPGRelay listens on Channel and installs itself as bus's relay. It
// returns once the listening connection is up, so no event committed after
// it returns is missed.
func StartPGRelay(ctx context.Context, dsn string, bus *Bus, client *ent.Client, log *slog.Logger) (*PGRelay, error) {
	if log == nil {
		log = slog.Default()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	r := &PGRelay{dsn: dsn, bus: bus, client: client, log: log, origin: hex.EncodeToString(b[:]),
		out: make(chan []*ent.Event, 4096), seen: newIDSet(1 << 16)}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop = stop
	conn, err := r.listen(ctx)
	if err != nil {
		stop()
		return nil, err
	}
	r.wg.Go(func() { r.receive(lctx, conn) })
	r.wg.Go(func() { r.send(lctx) })
	bus.SetRelay(r)
	return r, nil
}

// Close stops relaying and closes the connections.
func (r *PGRelay) Close() {
	r.bus.SetRelay(nil)
	r.stop()
	r.wg.Wait()
}

// Dropped counts events that could not be sent to other daemons.
func (r *PGRelay) Dropped() int64 { return r.dropped.Load() }

// Relay implements Relay; it never blocks the publisher.
func (r *PGRelay) Relay(evs []*ent.Event) {
	for _, e := range evs {
		r.seen.add(e.ID)
	}
	select {
	case r.out <- evs:
	default:
		r.dropped.Add(int64(len(evs)))
		r.log.Warn("event relay: send buffer full, other daemons miss events", "count", len(evs))
	}
}

func (r *PGRelay) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		return nil, fmt.Errorf("event relay: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("event relay: listen: %w", err)
	}
	return conn, nil
}

func (r *PGRelay) receive(ctx context.Context, conn *pgx.Conn) {
	backoff := retry.Backoff(100*time.Millisecond, 10*time.Second)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			backoff.Reset()
			r.handle(ctx, n.Payload)
			continue
		}
		_ = conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("event relay: listening connection lost, reconnecting", "err", err)
		watermark := r.seen.max()
		for {
			if !retry.Sleep(ctx, backoff.NextBackOff()) {
				return
			}
			if conn, err = r.listen(ctx); err == nil {
				break
			}
			r.log.Warn("event relay: reconnect", "err", err)
		}
		r.catchUp(ctx, watermark)
	}
}

// catchUp delivers events committed while the listener was away. Ids are
// allocated before commit, so a few events below the watermark may still
// be missed; the seen-set keeps anything from being delivered twice.
func (r *PGRelay) catchUp(ctx context.Context, after int) {
	evs, err := r.client.Event.Query().Where(event.IDGT(after)).Order(ent.Asc(event.FieldID)).Limit(10000).
		All(privacy.DecisionContext(ctx, privacy.Allow))
	if err != nil {
		r.log.Warn("event relay: catch up", "err", err)
		return
	}
	for _, e := range evs {
		if r.seen.add(e.ID) {
			r.bus.Deliver(e)
		}
	}
}

func (r *PGRelay) handle(ctx context.Context, payload string) {
	var n notice
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		r.log.Warn("event relay: bad notification", "err", err)
		return
	}
	if n.Origin == r.origin {
		return
	}
	e := n.Event
	if e == nil {
		var err error
		e, err = r.client.Event.Get(privacy.DecisionContext(ctx, privacy.Allow), n.ID)
		if err != nil {
			r.log.Warn("event relay: read event", "id", n.ID, "err", err)
			return
		}
	}
	if r.seen.add(e.ID) {
		r.bus.Deliver(e)
	}
}

func (r *PGRelay) send(ctx context.Context) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	backoff := retry.Backoff(100*time.Millisecond, 10*time.Second)
	for {
		var evs []*ent.Event
		select {
		case <-ctx.Done():
			return
		case evs = <-r.out:
		}
		// Take whatever else is waiting: one round trip for a burst.
	more:
		for len(evs) < 512 {
			select {
			case more := <-r.out:
				evs = append(evs, more...)
			default:
				break more
			}
		}
		for {
			if conn == nil {
				c, err := pgx.Connect(ctx, r.dsn)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					r.log.Warn("event relay: connect sender", "err", err)
					if !retry.Sleep(ctx, backoff.NextBackOff()) {
						return
					}
					continue
				}
				conn = c
				backoff.Reset()
			}
			err := r.notify(ctx, conn, evs)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			_ = conn.Close(context.Background())
			conn = nil
			var pgErr interface{ SQLState() string }
			if errors.As(err, &pgErr) {
				// The server refused the statement itself: retrying will
				// not help, and the events are in the table for catch-up.
				r.dropped.Add(int64(len(evs)))
				r.log.Warn("event relay: notify refused", "err", err)
				break
			}
			r.log.Warn("event relay: notify, retrying", "err", err)
		}
	}
}

func (r *PGRelay) notify(ctx context.Context, conn *pgx.Conn, evs []*ent.Event) error {
	b := &pgx.Batch{}
	for _, e := range evs {
		raw, err := json.Marshal(notice{Origin: r.origin, Event: e})
		if err != nil || len(raw) > maxPayload {
			raw, _ = json.Marshal(notice{Origin: r.origin, ID: e.ID})
		}
		b.Queue("SELECT pg_notify($1, $2)", Channel, string(raw))
	}
	// Sent as one implicit transaction: all or nothing, in order.
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("notify %d events: %w", len(evs), err)
	}
	return nil
}

// idSet remembers the most recent n event ids.
type idSet struct {
	mu   sync.Mutex
	m    map[int]struct{}
	ring []int
	next int
	top  int
}

func newIDSet(n int) *idSet { return &idSet{m: make(map[int]struct{}, n), ring: make([]int, n)} }

// add reports whether id is new.
func (s *idSet) add(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; ok {
		return false
	}
	if old := s.ring[s.next]; old != 0 {
		delete(s.m, old)
	}
	s.ring[s.next] = id
	s.next = (s.next + 1) % len(s.ring)
	s.m[id] = struct{}{}
	s.top = max(s.top, id)
	return true
}

func (s *idSet) max() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.top
}
