//go:build !windows

package winsvc

import (
	"context"
	"time"
)

// IsService reports whether the process was started by the Windows service
// manager: never, off Windows, where it says the service is Windows only.
func IsService() (bool, error) { return false, ErrNotWindows }

// Run is Windows only.
func Run(context.Context, string, *Handler) error { return ErrNotWindows }

// OpenEventLog is Windows only.
func OpenEventLog(string) (EventLog, error) { return nil, ErrNotWindows }

// SecureDir is Windows only.
func SecureDir(string) error { return ErrNotWindows }

// Install is Windows only.
func Install(Config) error { return ErrNotWindows }

// Uninstall is Windows only.
func Uninstall(string, time.Duration) error { return ErrNotWindows }

// Start is Windows only.
func Start(string) error { return ErrNotWindows }

// Stop is Windows only.
func Stop(string, time.Duration) error { return ErrNotWindows }

// Query is Windows only.
func Query(string) (Info, error) { return Info{}, ErrNotWindows }
