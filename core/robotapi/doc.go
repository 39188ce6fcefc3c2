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
//  2. Claim: a long poll on the queue (core/dispatch). A claim of
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
//     missed, DefaultStopBackstop, one statement for all the calls open
//     on the daemon); a heartbeat then answers
//     dispatch.ErrStopRequested and extends nothing. Report with its
//     outcome (the attempt of a stopped run ends stopped, its task
//     cancelled).
//
// # Waiting robots: parking, wakes, backstop
//
// A poll that finds nothing parks the robot in memory, in its pool's FIFO
// of free robots (the rules are the pure package core/robotapi/parking;
// the Service holds one Lot under a lock, lot.go). While parked a robot
// costs no database statement: its check-in is kept for the liveness
// flush (dispatch.Queue.Seen), and a poll of a robot whose last claim found
// nothing (at most MaxPollWait ago) parks at once without claiming, as of
// the epoch that claim saw: if work arrived since and no robot of the pool
// is claiming, it is woken at once; otherwise the claims in flight wake it
// when their backlog says so.
//
//   - One bus subscription serves the whole lot (the events after which
//     work may be pending in a pool, robot.revoked, task.stop_requested);
//     on PostgreSQL the relay brings the other daemons' events too. Run
//     keeps it for the daemon's lifetime; without Run it lives while a
//     claim or awaitStop is open.
//   - Work may have arrived in a pool: its epoch moves and the first
//     parked robot is woken, unless one is already in flight. The woken
//     robot claims from the database; its claim's backlog
//     (dispatch.ClaimResult.Backlog) wakes as many more as the robots in
//     flight will not take, in FIFO order, at most MaxWokenPerPool (32,
//     the store's connection pool) claiming at once: a burst fans out at
//     the database's pace, one task wakes one robot, and the next free robot takes the next dish.
//     The choice of task is still the pool's fairness policy, made when
//     the robot is served.
//   - A woken robot that gets nothing although tasks are pending (the
//     time-out rule keeps it from them, or it is draining) goes back to
//     its place and is not woken again in the same epoch, so nothing
//     spins. A robot whose poll ends while woken hands the wake on.
//   - The backstop, every Backstop (DefaultBackstop, 5 s), asks in one
//     read-only statement which pools with parked robots have work
//     (dispatch.Queue.PoolsWithWork) and wakes one robot in each that has
//     none in flight: the bound on an event that was missed.
//   - A revoked robot's parked poll ends at once with ErrRevoked.
//   - awaitStop calls are indexed by task; task.stop_requested wakes them,
//     and every StopBackstop one statement per 500 attempts
//     (dispatch.Queue.StoppedAttempts) checks all of them.
//
// Stats counts parked robots, wakes, claims that read the database and
// polls that did not; the daemon exports them on /metrics.
package robotapi
