// Package robotwire is the robot protocol's vocabulary: the types a robot
// agent (core/robotagent) and the daemon's side of the protocol
// (core/robotapi) exchange over GraphQL, defined once so the two cannot
// drift apart. It links no storage, no configuration language and no
// event bus — only the standard library and the plugin SDK, whose flow and
// network types a process spec carries as they are — so a robot that
// imports it stays small.
//
// The protocol, as a robot sees it:
//
//  0. An existing machine without a token first enrols: it posts an
//     EnrolRequest with its join token to EnrolPath (plain JSON, the one
//     route without a bearer token) and gets its robot identity, an
//     EnrolResponse, which it keeps. Rented robots get their token from
//     the provider and skip this.
//  1. registerRobot: the robot says hello and learns its name and pool.
//  2. claimTask(wait): a long poll; the answer is a Claim (or nothing).
//     A claim of a process that binds credentials carries a Grant: one
//     single-use Vault wrapping token per credential. If the daemon cannot
//     grant them, the attempt fails at once as an execution error and the
//     robot gets no task from that poll.
//  3. processSpec(process): for crawler and vendor processes, the
//     ProcessSpec (flow, network profile, vendor settings; never a
//     secret), served only to robots of the process's pool.
//  4. heartbeat(taskID, attempt) while the task runs, then reportResult
//     with a Report: success and output, or an ErrorClass and a message.
package robotwire
