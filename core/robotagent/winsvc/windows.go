//go:build windows

package winsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// IsService reports whether the service manager started this process.
func IsService() (bool, error) { return svc.IsWindowsService() }

// Run serves h as the service name until it stops; it returns once the
// SCM was told the service stopped.
func Run(ctx context.Context, name string, h *Handler) error {
	return svc.Run(name, adapter{ctx: ctx, h: h})
}

// adapter is Handler seen by x/sys/windows/svc: it converts requests and
// statuses between svc's types and this package's, whose values are the
// same Windows constants.
type adapter struct {
	ctx context.Context
	h   *Handler
}

func (a adapter) Execute(_ []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	requests := make(chan Request)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case c := <-r:
				select {
				case requests <- Request{Cmd: Cmd(c.Cmd)}:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	// svc's loop receives statuses until Execute returns, so a send here
	// never blocks for long.
	report := func(st Status) {
		s <- svc.Status{State: svc.State(st.State), Accepts: svc.Accepted(st.Accepts), CheckPoint: st.CheckPoint, WaitHint: st.WaitHint}
	}
	specific, code := a.h.Execute(a.ctx, requests, report)
	close(done)
	wg.Wait()
	return specific, code
}

// OpenEventLog opens the Event Log source the install registered.
func OpenEventLog(name string) (EventLog, error) {
	l, err := eventlog.Open(name)
	if err != nil {
		return nil, fmt.Errorf("event log source %s: %w", name, err)
	}
	return l, nil
}

// stateDirSDDL gives the state directory, and what it will hold, to
// SYSTEM (the service's account) and Administrators alone, not inheriting
// %ProgramData%'s read access for every user: the identity file in it holds
// the robot's token.
const stateDirSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// SecureDir makes dir if missing and sets its access list to SYSTEM and
// Administrators, applied to the files already in it.
func SecureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("robot state directory: %w", err)
	}
	sd, err := windows.SecurityDescriptorFromString(stateDirSDDL)
	if err != nil {
		return fmt.Errorf("robot state directory %s: %w", dir, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("robot state directory %s: %w", dir, err)
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("robot state directory %s: restricting it to SYSTEM and Administrators: %w", dir, err)
	}
	return nil
}

func connect() (*mgr.Mgr, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, fmt.Errorf("service manager: %w (run from an elevated prompt: Run as administrator)", err)
	}
	return m, nil
}

func open(m *mgr.Mgr, name string) (*mgr.Service, error) {
	s, err := m.OpenService(name)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return nil, fmt.Errorf("service %s is not installed (rpacloud robot service install)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	return s, nil
}

// withService runs f on the installed service name, connected to the SCM
// for the call: the one place that connects, opens and closes.
func withService(name string, f func(*mgr.Service) error) error {
	m, err := connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := open(m, name)
	if err != nil {
		return err
	}
	defer s.Close()
	return f(s)
}

// Install creates the service (automatic, delayed start, as LocalSystem),
// its recovery actions (restart on failure, a crash or a stop with a
// non-zero exit code), its preshutdown time-out and its Event Log source.
// A failure after the service was created removes it again: an install is
// whole or absent.
func Install(c Config) (err error) {
	m, err := connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	if s, err := m.OpenService(c.Name); err == nil {
		s.Close()
		return fmt.Errorf("service %s is already installed: rpacloud robot service uninstall --service-name %s first (its identity stays)", c.Name, c.Name)
	}
	s, err := m.CreateService(c.Name, c.Exe, mgr.Config{
		StartType:        mgr.StartAutomatic,
		DelayedAutoStart: true, // after the network is up
		ErrorControl:     mgr.ErrorNormal,
		DisplayName:      c.DisplayName,
		Description:      c.Description,
	}, c.Args...)
	if err != nil {
		return fmt.Errorf("service %s: create: %w", c.Name, err)
	}
	defer s.Close()
	defer func() {
		if err != nil {
			_ = s.Delete()
		}
	}()
	actions := make([]mgr.RecoveryAction, len(RecoveryDelays))
	for i, d := range RecoveryDelays {
		actions[i] = mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: d}
	}
	if err := s.SetRecoveryActions(actions, uint32(RecoveryReset/time.Second)); err != nil {
		return fmt.Errorf("service %s: recovery actions: %w", c.Name, err)
	}
	// Without this flag Windows restarts only a crashed service, not one
	// that stopped itself with an exit code, as the agent does on failure.
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("service %s: recovery on non-crash failures: %w", c.Name, err)
	}
	// SERVICE_PRESHUTDOWN_INFO: how long a shutdown waits for the stop.
	info := struct{ timeout uint32 }{uint32(c.StopLimit / time.Millisecond)}
	if err := windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_PRESHUTDOWN_INFO, (*byte)(unsafe.Pointer(&info))); err != nil {
		return fmt.Errorf("service %s: preshutdown time-out: %w", c.Name, err)
	}
	// A source left by an earlier install would make the next call fail.
	_ = eventlog.Remove(c.Name)
	if err := eventlog.InstallAsEventCreate(c.Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		return fmt.Errorf("service %s: event log source: %w", c.Name, err)
	}
	return nil
}

// Uninstall stops the service (waiting up to wait) and removes it and its
// Event Log source. The robot's identity in its state directory stays.
func Uninstall(name string, wait time.Duration) error {
	if err := Stop(name, wait); err != nil {
		return err
	}
	err := withService(name, func(s *mgr.Service) error {
		if err := s.Delete(); err != nil {
			return fmt.Errorf("service %s: delete: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := eventlog.Remove(name); err != nil {
		return fmt.Errorf("service %s: removed, but not its event log source: %w", name, err)
	}
	return nil
}

// Start asks the SCM to start the service.
func Start(name string) error {
	return withService(name, func(s *mgr.Service) error {
		if err := s.Start(); err != nil {
			return fmt.Errorf("service %s: start: %w", name, err)
		}
		return nil
	})
}

// Stop asks the service to stop and waits until it has, at most wait; a
// stopped service is left as it is.
func Stop(name string, wait time.Duration) error {
	return withService(name, func(s *mgr.Service) error {
		st, err := s.Query()
		if err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		if st.State == svc.Stopped {
			return nil
		}
		if st.State != svc.StopPending {
			if st, err = s.Control(svc.Stop); err != nil {
				return fmt.Errorf("service %s: stop: %w", name, err)
			}
		}
		deadline := time.Now().Add(wait)
		for st.State != svc.Stopped {
			if time.Now().After(deadline) {
				return fmt.Errorf("service %s: still %s after %s (a task finishing its stop grace?); try again later", name, State(st.State), wait)
			}
			time.Sleep(500 * time.Millisecond)
			if st, err = s.Query(); err != nil {
				return fmt.Errorf("service %s: %w", name, err)
			}
		}
		return nil
	})
}

// Query reports the service's state and last exit codes.
func Query(name string) (Info, error) {
	var info Info
	err := withService(name, func(s *mgr.Service) error {
		st, err := s.Query()
		if err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		info = Info{State: State(st.State), PID: st.ProcessId, Win32ExitCode: st.Win32ExitCode, ServiceExitCode: st.ServiceSpecificExitCode}
		return nil
	})
	return info, err
}
