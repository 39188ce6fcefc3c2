// Package winsvc runs the robot agent as a Windows service (`rpacloud robot
// service …`) and installs, starts, stops and removes that service.
//
// The service's behaviour is Handler, which speaks to the service control
// manager (SCM) through Request and a report function: the same shape as
// golang.org/x/sys/windows/svc.Handler, with this package's own copies of
// its types. On Windows (windows.go) Run adapts Handler to x/sys/windows/svc;
// on any platform a test plays the SCM with a channel, so the state machine
// (start, stop, shutdown, interrogate, a stop while a task runs, the agent
// failing) is tested on Linux, where the x/sys/windows packages do not
// build. Everything that needs Windows sits behind the windows build tag;
// other platforms get functions that say the service is Windows only
// (other.go).
//
// The service's log goes to the Windows Event Log (Application, source =
// the service name) through EventWriter: the SCM gives a service no
// console, and the Event Log is bounded and rotated by Windows itself, so a
// robot running for years never fills its disk with our log.
package winsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/textlimit"
)

// ErrNotWindows is what the service commands answer on other platforms.
var ErrNotWindows = errors.New("the robot service is for Windows; on Linux run the agent under systemd (deploy/systemd/rpacloud-robot.service)")

// State is a service's state as the SCM knows it; the values are Windows'
// SERVICE_* states, so the Windows side converts by a type conversion.
type State uint32

// The states this service goes through (values of winsvc.h).
const (
	Stopped      State = 1
	StartPending State = 2
	StopPending  State = 3
	Running      State = 4
)

func (s State) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case StartPending:
		return "start pending"
	case StopPending:
		return "stop pending"
	case Running:
		return "running"
	case 5:
		return "continue pending"
	case 6:
		return "pause pending"
	case 7:
		return "paused"
	}
	return fmt.Sprintf("state %d", uint32(s))
}

// Cmd is a control request of the SCM (SERVICE_CONTROL_* values).
type Cmd uint32

// The controls the service handles. Pause and Continue are listed only to
// be refused: the agent has no paused state (pause a pool or a process
// instead, on the daemon).
const (
	CmdStop        Cmd = 1
	CmdPause       Cmd = 2
	CmdContinue    Cmd = 3
	CmdInterrogate Cmd = 4
	CmdShutdown    Cmd = 5
	CmdPreShutdown Cmd = 15
)

// Accepted is the set of controls the service accepts (SERVICE_ACCEPT_*).
type Accepted uint32

// The controls this service accepts.
const (
	AcceptStop        Accepted = 1
	AcceptShutdown    Accepted = 4
	AcceptPreShutdown Accepted = 256
)

// accepts is what the running service accepts: stop, and both shutdown
// notices. Preshutdown comes first and, unlike shutdown, lets the service
// take up to its preshutdown time-out (set at install), so a task running
// when the machine goes down can still report.
const accepts = AcceptStop | AcceptShutdown | AcceptPreShutdown

// Status is what the service tells the SCM.
type Status struct {
	State      State
	Accepts    Accepted
	CheckPoint uint32 // grows while a pending operation makes progress
	WaitHint   uint32 // milliseconds until the next CheckPoint, at most
}

// Request is one control request of the SCM.
type Request struct {
	Cmd Cmd
}

// Handler is the robot agent as a Windows service. Start runs Run with a
// context; a stop, shutdown or preshutdown cancels that context and waits
// for Run to return (the agent lets a running task go on for its stop grace
// and reports its result), at most StopLimit; Interrogate is answered with
// the current status; pause is not supported.
type Handler struct {
	// Run runs the agent until ctx ends and returns its exit code
	// (cmd/rpacloud's codes: 0 ok, 1 failure, 3 identity refused).
	Run func(ctx context.Context) int
	// NoRestart lists exit codes after which restarting cannot help (3:
	// the daemon refused the robot's identity). They stop the service
	// cleanly, Windows exit code 0, so its recovery actions do not restart
	// it in a loop; the agent's log says why it stopped.
	NoRestart []int
	// StopLimit bounds the wait for Run after a stop: the agent's stop
	// grace plus the time to report (default 90s). After it the service
	// stops anyway; the task's attempt then ends at its deadline on the
	// daemon.
	StopLimit time.Duration
	// Tick is how often a stop in progress tells the SCM it is still
	// progressing (default 5s; the WaitHint is twice that).
	Tick time.Duration
	// Log receives the service's own messages (default slog.Default()).
	Log *slog.Logger
}

// Execute runs the service from start to stop: it reports StartPending,
// starts Run, reports Running and serves the SCM's requests until Run
// returns. Its results are x/sys/windows/svc's: whether exitCode is a
// service-specific code, and the code; the caller reports Stopped with
// them. A stop, shutdown or preshutdown request, or ctx ending, stops Run.
func (h *Handler) Execute(ctx context.Context, requests <-chan Request, report func(Status)) (serviceSpecific bool, exitCode uint32) {
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	stopLimit := h.StopLimit
	if stopLimit <= 0 {
		stopLimit = 90 * time.Second
	}
	tick := h.Tick
	if tick <= 0 {
		tick = 5 * time.Second
	}
	report(Status{State: StartPending})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan int, 1) // buffered: Run's goroutine never blocks, even after a StopLimit
	go func() { done <- h.Run(runCtx) }()
	cur := Status{State: Running, Accepts: accepts}
	report(cur)

	var (
		stopping      bool
		ticker, timer *time.Ticker
		ticks, limit  <-chan time.Time
		ctxDone       = ctx.Done()
	)
	defer func() {
		if stopping {
			ticker.Stop()
			timer.Stop()
		}
	}()
	stop := func(why string) {
		if stopping {
			return
		}
		stopping = true
		ctxDone = nil
		log.Info("service stopping; a running task gets its stop grace and reports", "reason", why)
		cancel()
		// A stopping service accepts no more controls; the checkpoint
		// grows every tick so the SCM sees the stop progressing.
		cur = Status{State: StopPending, CheckPoint: 1, WaitHint: uint32(2 * tick / time.Millisecond)}
		report(cur)
		ticker, timer = time.NewTicker(tick), time.NewTicker(stopLimit)
		ticks, limit = ticker.C, timer.C
	}
	for {
		select {
		case code := <-done:
			return h.exit(log, code, stopping)
		case req, ok := <-requests:
			if !ok {
				requests = nil
				continue
			}
			switch req.Cmd {
			case CmdInterrogate:
				report(cur)
			case CmdStop:
				stop("stop")
			case CmdShutdown, CmdPreShutdown:
				stop("the machine is shutting down")
			default:
				// Never sent: the service does not accept it.
				log.Warn("service control not supported; ignored", "control", uint32(req.Cmd))
				report(cur)
			}
		case <-ctxDone:
			stop("context ended")
		case <-ticks:
			cur.CheckPoint++
			report(cur)
		case <-limit:
			log.Error("the agent did not stop in time; the service stops without waiting for it", "limit", stopLimit)
			return false, 0
		}
	}
}

// exit turns the agent's exit code into the service's.
func (h *Handler) exit(log *slog.Logger, code int, stopping bool) (bool, uint32) {
	switch {
	case code == 0 && stopping:
		log.Info("service stopped")
		return false, 0
	case code == 0:
		// The agent returns 0 only when asked to stop: say so if it
		// ever ends on its own, but it did not fail.
		log.Warn("the agent ended without being asked to; the service stopped")
		return false, 0
	}
	for _, c := range h.NoRestart {
		if c == code {
			log.Error("the agent stopped and restarting cannot help; the service stopped without a failure so that it is not restarted", "exit_code", code)
			return false, 0
		}
	}
	log.Error("the agent failed; the service stopped with its exit code (recovery restarts it)", "exit_code", code)
	return true, uint32(code)
}

// Sink is where EventWriter writes: *eventlog.Log on Windows, a fake in
// tests. eid is the event ID.
type Sink interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// EventLog is the service's Event Log source, open.
type EventLog interface {
	Sink
	Close() error
}

// EventID is the ID of every event the service writes; the source is
// registered with EventCreate.exe's messages, which accept IDs 1 to 1000.
const EventID = 1

// maxEvent keeps one event within the Event Log's limit of 31,839
// characters per string.
const maxEvent = 30000

// EventWriter writes the agent's log to the Event Log, one event per
// Write: a line of slog's text handler (one Write per record) is an
// information, warning or error event by its level= field, with its time=
// field dropped (every event has its own time); any other text, such as the
// agent's one-line fatal messages, is an error event.
type EventWriter struct{ Sink Sink }

func (w EventWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\r\n")
	if msg == "" {
		return len(p), nil
	}
	if strings.HasPrefix(msg, "time=") {
		if _, rest, ok := strings.Cut(msg, " "); ok {
			msg = rest
		}
	}
	msg = textlimit.Cut(msg, maxEvent)
	var err error
	switch level, ok := strings.CutPrefix(msg, "level="); {
	case ok && (strings.HasPrefix(level, "DEBUG") || strings.HasPrefix(level, "INFO")):
		err = w.Sink.Info(EventID, msg)
	case ok && strings.HasPrefix(level, "WARN"):
		err = w.Sink.Warning(EventID, msg)
	default:
		err = w.Sink.Error(EventID, msg)
	}
	if err != nil {
		return 0, fmt.Errorf("event log: %w", err)
	}
	return len(p), nil
}
