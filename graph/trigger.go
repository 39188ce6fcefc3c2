package graph

import (
	"errors"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/trigger"
)

// triggers is the trigger service the mutations call into; without one
// (tests of other rooms) a service over no configuration, which knows no
// trigger.
func (r *Resolver) triggers() *trigger.Service {
	if r.Triggers != nil {
		return r.Triggers
	}
	return trigger.New(trigger.Options{Client: r.Client, Queue: r.Queue, Bus: r.Bus, Config: &config.Config{}})
}

// triggerError answers a trigger the token may not see exactly like one
// that does not exist: the answer names no other customer's trigger.
func triggerError(name string, err error) error {
	if errors.Is(err, trigger.ErrUnknown) {
		return coded(CodeNotFound, "no trigger %q that this token may change", name)
	}
	if err != nil {
		return queueError(err)
	}
	return nil
}
