package schedule

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkClashes: a large enterprise's schedule, 300 weekday bookings
// in 3 time zones over 20 pools and 60 pinned robots, checked over the
// eight weeks a new booking is checked against.
func BenchmarkClashes(b *testing.B) {
	zones := []string{"Asia/Shanghai", "Europe/London", "UTC"}
	var bs []Booking
	var pools []Pool
	for p := range 20 {
		pools = append(pools, Pool{Name: fmt.Sprintf("pool-%d", p), Max: 4})
	}
	for i := range 300 {
		bk := Booking{
			ID: fmt.Sprintf("proc-%d/slot", i), Process: fmt.Sprintf("proc-%d", i), Pool: fmt.Sprintf("pool-%d", i%20),
			Cron: fmt.Sprintf("%d %d * * 1-5", (i*7)%60, 6+i%12), Duration: time.Duration(30+i%90) * time.Minute, Timezone: zones[i%3],
		}
		if i%5 == 0 {
			bk.Robot = fmt.Sprintf("pool-%d-r%d", i%20, i%3)
		}
		bs = append(bs, bk)
	}
	from := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	to := from.Add(8 * 7 * 24 * time.Hour)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Clashes(bs, pools, from, to); err != nil {
			b.Fatal(err)
		}
	}
}
