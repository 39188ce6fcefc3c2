package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/monitor/rules"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/ent"
)

// Webhook posts anomaly changes as JSON to an operator's endpoint (a chat
// bridge, a pager). The daemon that makes a change posts it, so with several
// daemons each change is posted once.
type Webhook struct {
	URL string
	// MinSeverity drops less severe anomalies: "critical", "warning" or
	// "info" (default: everything).
	MinSeverity string
	// Client defaults to one with a 10 s timeout.
	Client *http.Client
	// Retries after a failed post; default 3, with doubling back-off from 1 s.
	Retries int

	queue chan WebhookPayload
}

// NewWebhook returns a webhook posting to url.
func NewWebhook(url, minSeverity string) *Webhook {
	return &Webhook{URL: url, MinSeverity: minSeverity, queue: make(chan WebhookPayload, 1024)}
}

// enqueue never blocks the monitor: a webhook that is down for long loses
// the oldest news rather than stalling detection.
func (w *Webhook) enqueue(typ events.Type, a *ent.Anomaly, log interface{ Warn(string, ...any) }) {
	if rules.Severity(a.Severity).Rank() < rules.Severity(w.MinSeverity).Rank() {
		return
	}
	select {
	case w.queue <- payload(string(typ), a):
	default:
		log.Warn("webhook: queue full, notification dropped", "anomaly", a.ID)
	}
}

// WebhookPayload is the JSON body of one notification.
type WebhookPayload struct {
	Event      string            `json:"event"` // anomaly.opened, anomaly.acknowledged, anomaly.resolved
	ID         int               `json:"id"`
	Rule       string            `json:"rule"`
	Severity   string            `json:"severity"`
	Status     string            `json:"status"`
	Title      string            `json:"title"`
	Message    string            `json:"message"`
	Since      time.Time         `json:"since"`
	Resolution string            `json:"resolution,omitempty"`
	Facts      map[string]string `json:"facts,omitempty"`
}

// Run delivers until ctx ends.
func (w *Webhook) Run(ctx context.Context, m *Monitor) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-w.queue:
			if err := w.post(ctx, p); err != nil && ctx.Err() == nil {
				m.log.Warn("webhook: anomaly not delivered", "id", p.ID, "err", err)
			}
		}
	}
}

func payload(typ string, a *ent.Anomaly) WebhookPayload {
	return WebhookPayload{Event: typ, ID: a.ID, Rule: string(a.Rule), Severity: string(a.Severity), Status: string(a.Status),
		Title: a.Title, Message: a.Message, Since: a.Since, Resolution: a.Resolution, Facts: a.Facts}
}

func (w *Webhook) post(ctx context.Context, p WebhookPayload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	retries := w.Retries
	if retries <= 0 {
		retries = 3
	}
	_, err = backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, w.once(ctx, c, body) },
		backoff.WithBackOff(retry.Backoff(time.Second, time.Minute)), backoff.WithMaxTries(uint(retries)+1))
	return err
}

func (w *Webhook) once(ctx context.Context, c *http.Client, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rpacloud-monitor")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", redact(err))
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// redact drops the URL from an HTTP client error: a webhook URL often
// carries its token in the path or query.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
