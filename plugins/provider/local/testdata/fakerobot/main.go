// Command fakerobot stands in for `rpacloud robot` in the local provider's
// tests: it records how it was started to $TMPDIR/fakerobot-<name>.json,
// starts one grandchild (to check that a destroy reaches the whole process
// group), and sleeps. A name containing "stubborn" ignores SIGTERM.
package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type record struct {
	Args       []string `json:"args"`
	Env        []string `json:"env"`
	PID        int      `json:"pid"`
	PGID       int      `json:"pgid"`
	Grandchild int      `json:"grandchild"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "grandchild" {
		time.Sleep(time.Hour)
		return
	}
	name := "unnamed"
	for i, a := range os.Args {
		if a == "--name" && i+1 < len(os.Args) {
			name = os.Args[i+1]
		}
	}
	if strings.Contains(name, "stubborn") {
		signal.Ignore(syscall.SIGTERM)
	}
	gc := exec.Command(os.Args[0], "grandchild")
	if err := gc.Start(); err != nil {
		panic(err)
	}
	rec := record{Args: os.Args, Env: os.Environ(), PID: os.Getpid(), PGID: syscall.Getpgrp(), Grandchild: gc.Process.Pid}
	data, _ := json.Marshal(rec)
	path := filepath.Join(os.TempDir(), "fakerobot-"+name+".json")
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		panic(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		panic(err)
	}
	os.Stdout.WriteString("fakerobot " + name + " running\n")
	time.Sleep(time.Hour)
}
