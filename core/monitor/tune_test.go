package monitor

import (
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/monitor/rules"
)

// TestTune: a reload's thresholds and intervals replace the running
// ones, zero values taking the defaults as at start.
func TestTune(t *testing.T) {
	m := New(nil, Options{Interval: time.Second, Thresholds: rules.Thresholds{StuckAfter: time.Hour}})
	if got := m.tune(); got.Interval != time.Second || got.SampleInterval != 10*time.Second || got.Thresholds.StuckAfter != time.Hour {
		t.Fatalf("at start: %+v", got)
	}
	m.Tune(Tuning{Thresholds: rules.Thresholds{StuckAfter: 30 * time.Minute}})
	got := m.tune()
	if got.Interval != 2*time.Second || got.Thresholds.StuckAfter != 30*time.Minute || got.Thresholds != (rules.Thresholds{StuckAfter: 30 * time.Minute}).WithDefaults() {
		t.Fatalf("after Tune: %+v", got)
	}
}
