package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// RemoteEndpoint is how people reach a VM from their desks (RDP, SSH or
// VNC), as its provider reported it. Keyed by the VM's row id; no foreign
// key, so the VM schema stays untouched and a reaped VM leaves history.
type RemoteEndpoint struct{ ent.Schema }

func (RemoteEndpoint) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (RemoteEndpoint) Fields() []ent.Field {
	return []ent.Field{
		field.Int("vm_id").Unique(),
		field.String("protocol").NotEmpty(),
		field.String("host").NotEmpty(),
		field.Int("port").Positive(),
		field.String("username").Default(""),
	}
}

func (RemoteEndpoint) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy applies the access rules of policy.go.
func (RemoteEndpoint) Policy() ent.Policy { return infraPolicy() }
