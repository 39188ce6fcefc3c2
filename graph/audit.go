package graph

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// The audit trail's wiring (the trail itself is core/audit).
//
// Every root field of a mutation operation is recorded after it ran, with
// its outcome as the caller saw it (the presented error's code), by one
// root-field middleware: a mutation added to the schema is audited without
// any code of its own. The robot protocol's mutations are the exception:
// they are machines taking and reporting work, thousands an hour, and the
// events record them. A test derives both sets from the schema.

// RobotProtocol are the mutations robots make to take and report work;
// they are not audited. A robot-only mutation added to the protocol goes
// here; every other mutation is audited.
var RobotProtocol = map[string]bool{
	"registerRobot": true, "claimTask": true, "heartbeat": true, "reportResult": true,
	"awaitStop": true,
}

// safeText are the text arguments and input fields recorded in clear, by
// mutation and path ("putCredential.input.fields[].name"). Every other
// text is redacted: a credential's value, a token or a file's content is
// recorded only if someone lists it here, which a test forbids for names
// that look secret. IDs, numbers, booleans, times and enum values are
// recorded by their type; JSON values (task inputs) never.
var safeText = map[string]audit.Class{
	"submitBatch.input.process":  audit.Keep,
	"submitBatch.input.customer": audit.Keep,
	"submitBatch.input.label":    audit.Keep,

	"createToken.input.name":     audit.Keep,
	"createToken.input.customer": audit.Keep,
	"revokeToken.name":           audit.Keep,

	"putCredential.input.customer":         audit.Keep,
	"putCredential.input.name":             audit.Keep,
	"putCredential.input.processes[]":      audit.Keep,
	"putCredential.input.fields[].name":    audit.Keep,
	"rotateCredential.input.customer":      audit.Keep,
	"rotateCredential.input.name":          audit.Keep,
	"rotateCredential.input.processes[]":   audit.Keep,
	"rotateCredential.input.fields[].name": audit.Keep,
	"deleteCredential.customer":            audit.Keep,
	"deleteCredential.name":                audit.Keep,
	"bindCredential.customer":              audit.Keep,
	"bindCredential.name":                  audit.Keep,
	"bindCredential.process":               audit.Keep,
	"unbindCredential.customer":            audit.Keep,
	"unbindCredential.name":                audit.Keep,
	"unbindCredential.process":             audit.Keep,

	// applyConfig's files: audit.ConfigFilesClass, the rule a reload by
	// SIGHUP follows too.
	"applyConfig.planHash": audit.Keep,

	"createJoinToken.pool": audit.Keep,
	"revokeRobot.name":     audit.Keep,

	"transitionProcess.input.process":           audit.Keep,
	"transitionProcess.input.checklist[]":       audit.Keep,
	"transitionProcess.input.note":              audit.Keep,
	"transitionProcess.input.faultDescription":  audit.Keep,
	"transitionProcess.input.signOffName":       audit.Keep,
	"transitionProcess.input.signOffDepartment": audit.Keep,
	"transitionProcess.input.signOffComment":    audit.Keep,
	"connectRemote.process":                     audit.Keep,
	"connectRemote.vm":                          audit.Keep,
	"connectRemote.purpose":                     audit.Keep,
	"bookSlot.input.process":                    audit.Keep,
	"bookSlot.input.slot":                       audit.Keep,
	"bookSlot.input.department":                 audit.Keep,
	"bookSlot.input.robot":                      audit.Keep,
	"bookSlot.input.cron":                       audit.Keep,
	"bookSlot.input.timezone":                   audit.Keep,
	"cancelBooking.id":                          audit.Keep,

	"cancelBatch.reason":  audit.Keep,
	"stopTask.reason":     audit.Keep,
	"pausePool.name":      audit.Keep,
	"pausePool.reason":    audit.Keep,
	"resumePool.name":     audit.Keep,
	"pauseProcess.name":   audit.Keep,
	"pauseProcess.reason": audit.Keep,
	"resumeProcess.name":  audit.Keep,

	"pauseTrigger.name":   audit.Keep,
	"pauseTrigger.reason": audit.Keep,
	"resumeTrigger.name":  audit.Keep,
	"fireTrigger.name":    audit.Keep,

	"acknowledgeAnomaly.note":   audit.Keep,
	"resolveAnomaly.resolution": audit.Keep,
}

// scalarsKept are the scalar types whose values are recorded: they name
// or count things and cannot carry a secret.
var scalarsKept = map[string]bool{"ID": true, "Int": true, "Float": true, "Boolean": true, "Time": true}

// argClass classifies the argument value at path (Redact's path syntax) of
// mutation f by the schema: input objects are walked, enum values and the
// scalarsKept are kept, texts are safeText's, everything else (JSON, a
// path the schema does not have) is hidden.
func argClass(s *ast.Schema, f *ast.FieldDefinition, path string) audit.Class {
	segs := strings.Split(strings.ReplaceAll(path, "[]", ""), ".")
	a := f.Arguments.ForName(segs[0])
	if a == nil {
		return audit.Hide
	}
	t := a.Type
	for _, seg := range segs[1:] {
		def := s.Types[t.Name()]
		if def == nil || def.Kind != ast.InputObject {
			return audit.Hide // a field inside a scalar (JSON) or unknown
		}
		fd := def.Fields.ForName(seg)
		if fd == nil {
			return audit.Hide
		}
		t = fd.Type
	}
	def := s.Types[t.Name()]
	switch {
	case def == nil:
		return audit.Hide
	case def.Kind == ast.Enum, def.Kind == ast.InputObject:
		return audit.Keep // an input object is walked field by field
	case def.Kind == ast.Scalar && scalarsKept[def.Name]:
		return audit.Keep
	case def.Kind == ast.Scalar && def.Name == "String" && f.Name == "applyConfig" && strings.HasPrefix(path, "files"):
		return audit.ConfigFilesClass(path)
	case def.Kind == ast.Scalar && def.Name == "String":
		return safeText[f.Name+"."+path]
	}
	return audit.Hide
}

// auditMutations is the root-field middleware that records every audited
// mutation's root field. A failed write is logged as an error and the
// answer stands: the change has committed, and answering that it failed
// would invite the caller to make it again (core/audit).
func auditMutations(s *ast.Schema, client *ent.Client, log *slog.Logger) graphql.RootFieldMiddleware {
	return func(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
		oc := graphql.GetOperationContext(ctx)
		rc := graphql.GetRootFieldContext(ctx)
		if oc == nil || rc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Mutation ||
			RobotProtocol[rc.Field.Name] || rc.Field.Definition == nil {
			return next(ctx)
		}
		start := time.Now()
		ctx, note := audit.WithNote(ctx)
		out := next(ctx)

		e := audit.Entry{At: start, Action: rc.Field.Name, Outcome: audit.OK}
		if p, ok := viewer.FromContext(ctx); ok {
			e.ByPrincipal(p)
		}
		req := audit.RequestFrom(ctx)
		e.RemoteAddr, e.RequestID = req.RemoteAddr, req.RequestID
		def := rc.Field.Definition
		args := rc.Field.ArgumentMap(oc.Variables)
		e.Arguments = audit.Redact(args, func(path string) audit.Class { return argClass(s, def, path) })
		e.Target = defaultTarget(s, def, args)
		if code, failed := fieldError(ctx, rc.Field.Alias); failed {
			e.Outcome, e.Code = audit.Error, code
			if code == CodeForbidden || code == CodeUnauthenticated {
				e.Outcome = audit.Refused
			}
		}
		if e.Outcome == audit.OK {
			// An action that did not succeed stays scoped to its caller:
			// the scope a resolver named is kept only for what it did,
			// so that a Scope called too early cannot tell a caller of
			// another customer's thing.
			note.Apply(&e)
		}
		if err := audit.Record(ctx, client, e); err != nil {
			log.Error("audit entry not recorded; the answer stands", "action", e.Action, "actor", e.Actor, "outcome", e.Outcome, "err", err)
		}
		return out
	}
}

// fieldError is the code of the error presented at the root field alias
// itself (errors of fields under it are not the mutation's: it ran).
func fieldError(ctx context.Context, alias string) (string, bool) {
	for _, err := range graphql.GetErrors(ctx) {
		if len(err.Path) != 1 || err.Path[0] != ast.PathName(alias) {
			continue
		}
		return errCode(err), true
	}
	return "", false
}

func errCode(err *gqlerror.Error) string {
	if c, ok := err.Extensions["code"].(string); ok && c != "" {
		return c
	}
	return "INTERNAL"
}

// defaultTarget names what a mutation acted on until its resolver says
// (audit.Scope): its top-level kept arguments, name=value in the schema's
// order, e.g. "name=nightly".
func defaultTarget(s *ast.Schema, def *ast.FieldDefinition, args map[string]any) string {
	var parts []string
	for _, a := range def.Arguments {
		v, ok := args[a.Name]
		if !ok || v == nil || argClass(s, def, a.Name) != audit.Keep {
			continue
		}
		switch v.(type) {
		case map[string]any, []any:
			continue
		}
		parts = append(parts, a.Name+"="+strings.Join(strings.Fields(fmt.Sprint(v)), " "))
	}
	return strings.Join(parts, " ")
}
