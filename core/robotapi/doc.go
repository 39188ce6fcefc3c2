// Package robotapi is the daemon's side of the robot protocol, in one
// room: what a robot may ask and what it is answered. The GraphQL
// resolvers (graph/rpacloud.resolvers.go) only authenticate the robot and
// translate; the protocol's rules live here, on the types of
// core/robotwire, which the agent (core/robotagent) shares.
//
// The sequence of one task, from the robot's side:
//
//  1. Register: the robot says hello; its hostname and agent version are
//     kept and it learns its pool.
//  2. Claim: a long poll on the queue (core/dispatch) that wakes on the
//     event bus when work may have arrived in the robot's pool. A claim of
//     a process that binds credentials carries their grant
//     (core/credentials). When they cannot be granted, the attempt fails
//     at once as an execution error naming the credential (the task is
//     retried per its process's policy) and the robot gets nothing from
//     this poll: it waits the poll out, so a Vault outage cannot burn
//     through the queue at the speed of the robots' polling.
//  3. ProcessSpec: a crawler or vendor process's flow, network profile and
//     vendor settings, built from the configuration, only for robots of
//     the process's pool; never a secret.
//  4. Heartbeat while the task runs, and hold AwaitStop open meanwhile:
//     it answers true as soon as an operator stops the task (task stop,
//     batch cancel; woken by the task.stop_requested event on any daemon,
//     and checked in the database every 5 s in case the event was
//     missed, DefaultStopBackstop); a heartbeat then answers
//     dispatch.ErrStopRequested and extends nothing. Report with its
//     outcome (the attempt of a stopped run ends stopped, its task
//     cancelled).
package robotapi
