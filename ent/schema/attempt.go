package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Attempt is one dispatch of a task to a robot.
type Attempt struct{ ent.Schema }

func (Attempt) Fields() []ent.Field {
	return []ent.Field{
		field.Int("task_id"),
		field.Int("robot_id"),
		field.Int("customer_id").Comment("Copied from the task so reads filter without a join."),
		field.Int("number").Positive().Comment("Equals the task's attempt_no when it was created."),
		field.Enum("state").Values("running", "succeeded", "failed", "abandoned", "stopped").Default("running"),
		field.Time("started_at"),
		field.Time("deadline").Comment("Extended by heartbeats; the sweeper abandons the attempt past it."),
		field.Time("heartbeat_at").Optional().Nillable(),
		field.Time("stop_requested_at").Optional().Nillable().
			Comment("When a person asked the robot to stop it (task stop, batch cancel); the deadline is then the stop's grace."),
		field.Time("finished_at").Optional().Nillable(),
		field.Enum("error_class").Values("execution", "data", "timeout").Optional().Nillable(),
		field.Text("error_message").Default(""),
		field.Text("output").Default(""),
	}
}

func (Attempt) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("task", Task.Type).Ref("attempts").Field("task_id").Unique().Required(),
		edge.From("robot", Robot.Type).Ref("attempts").Field("robot_id").Unique().Required(),
	}
}

func (Attempt) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("task_id", "number").Unique(),
		index.Fields("state", "deadline"),
		index.Fields("robot_id", "state"),
	}
}

func (Attempt) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (Attempt) Policy() ent.Policy { return customerPolicy("Attempt") }
