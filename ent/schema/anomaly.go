package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Anomaly is something the night shift must look at: a faulted or hung run,
// a robot that stopped heartbeating, a VM that vanished, a scheduled run
// that never started, a failure rate that jumped, a queue that outgrows a
// full pool, work that waits in a pool where nothing is being done. Rows are written by core/monitor only; people acknowledge and
// resolve them through the API.
type Anomaly struct{ ent.Schema }

func (Anomaly) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("rule").
			Values("run_faulted", "run_hung", "heartbeat_lost", "vm_gone",
				"schedule_missed", "failure_rate", "queue_growing", "task_stuck", "work_paused").
			Immutable(),
		field.String("key").NotEmpty().Immutable().
			Comment("Identifies the condition's subject, e.g. heartbeat_lost/robot/7."),
		field.String("open_key").Optional().Nillable().Unique().
			Annotations(entgql.Skip()).
			Comment("Equals key while the anomaly is not resolved and is null afterwards, so that one condition has at most one open anomaly even with several daemons."),
		field.Enum("severity").Values("critical", "warning", "info").
			Annotations(entgql.OrderField("SEVERITY")),
		field.Enum("status").Values("open", "acknowledged", "resolved").Default("open").
			Annotations(entgql.OrderField("STATUS")),
		field.String("title").NotEmpty(),
		field.Text("message").Default(""),
		field.Time("since").Immutable().
			Comment("When the condition began (e.g. the last heartbeat), not when it was noticed.").
			Annotations(entgql.OrderField("SINCE")),
		field.Time("detected_at").Default(nowUTC).Immutable().
			Annotations(entgql.OrderField("DETECTED_AT")),
		field.Time("acknowledged_at").Optional().Nillable(),
		field.String("acknowledged_by").Default(""),
		field.Time("resolved_at").Optional().Nillable(),
		field.String("resolved_by").Default("").
			Comment("Name of the person who resolved it, or \"monitor\" when the condition cleared."),
		field.Text("resolution").Default(""),
		field.Int("customer_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")).
			Comment("The department or company whose work is affected."),
		field.Int("pool_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.Int("process_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.Int("robot_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.Int("vm_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.Int("task_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.String("vendor").Default("").Immutable().
			Comment("rpacloud for our own robots, or the vendor (uipath, aa) that ran the job."),
		field.JSON("facts", map[string]string{}).Optional().
			Annotations(entgql.Skip()).
			Comment("The key facts of the interrupted process: robot, VM, last step, error, ..."),
	}
}

func (Anomaly) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("status", "detected_at"),
		index.Fields("key"),
	}
}

func (Anomaly) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Policy: anomalies about one customer's work are that customer's; fleet
// anomalies (no customer) are visible to unbound principals only.
func (Anomaly) Policy() ent.Policy { return customerPolicy("Anomaly") }
