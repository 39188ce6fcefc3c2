// Command fake-control-room serves the fake Robocorp Control Room of
// package fakecr on a loopback address, for tests that run the plugin in a
// real daemon. It prints "listening on URL" (the API base, ending in
// /api/v1) as its first line and serves until killed.
//
// The API key is read from the environment (FAKE_CR_API_KEY), not the
// command line, which other users can see.
//
//	fake-control-room -workspace WS -process ID=NAME[=STATE,STATE...] \
//	    -worker ID=NAME=STATE -scheduled PROCESS=STATE
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/examples/robocorp-plugin/fakecr"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, " ") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var processes, workers, scheduled list
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	workspace := flag.String("workspace", "ws-1", "workspace ID")
	throttle := flag.Int("throttle-every", 0, "answer every n-th request 429")
	flag.Var(&processes, "process", "ID=NAME[=STATE,STATE...] (repeatable)")
	flag.Var(&workers, "worker", "ID=NAME=STATE (repeatable)")
	flag.Var(&scheduled, "scheduled", "PROCESS=STATE: a run the scheduler started (repeatable)")
	flag.Parse()
	key := os.Getenv("FAKE_CR_API_KEY")
	if key == "" {
		fmt.Fprintln(os.Stderr, "fake-control-room: FAKE_CR_API_KEY is not set")
		os.Exit(2)
	}
	cr := fakecr.New(key, *workspace)
	cr.ThrottleEvery = *throttle
	for _, p := range processes {
		f := strings.SplitN(p, "=", 3)
		if len(f) < 2 {
			fmt.Fprintf(os.Stderr, "fake-control-room: -process %q: want ID=NAME[=STATES]\n", p)
			os.Exit(2)
		}
		proc := fakecr.Process{ID: f[0], Name: f[1]}
		if len(f) == 3 {
			proc.Script = strings.Split(f[2], ",")
		}
		cr.AddProcess(proc)
	}
	for _, w := range workers {
		f := strings.SplitN(w, "=", 3)
		if len(f) != 3 {
			fmt.Fprintf(os.Stderr, "fake-control-room: -worker %q: want ID=NAME=STATE\n", w)
			os.Exit(2)
		}
		cr.AddWorker(fakecr.Worker{ID: f[0], Name: f[1], State: f[2]})
	}
	for _, s := range scheduled {
		proc, state, ok := strings.Cut(s, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "fake-control-room: -scheduled %q: want PROCESS=STATE\n", s)
			os.Exit(2)
		}
		cr.AddRuns(proc, 1, state)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake-control-room: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening on http://%s/api/v1\n", ln.Addr())
	srv := &http.Server{Handler: cr, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "fake-control-room: %v\n", err)
		os.Exit(1)
	}
}
