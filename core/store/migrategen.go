package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"text/template"

	"ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	entschema "entgo.io/ent/dialect/sql/schema"

	entmigrate "github.com/rpacloud/rpacloud/ent/migrate"
)

// ErrNoChanges is PlanMigration's answer when the migration files already
// make the schema ent/schema describes.
var ErrNoChanges = errors.New("the migration files already make the ent schema")

// PlanMigration replays the migration files of dir on dev, an empty
// database of the driver's kind, compares the result with the schema
// ent/schema describes, and writes the difference into dir as the next
// file, NAME, updating atlas.sum. It returns ErrNoChanges when there is no
// difference. migrategen (`make migration NAME=...`) writes the checked-in
// directories this way, and the drift test checks, with a copy, that there
// is nothing to write.
//
// version names the file (VERSION_NAME.sql): migrategen gives both
// databases' files the same one, so that a revision means one change
// whichever database it is on; "" takes the time now.
func PlanMigration(ctx context.Context, driverName string, dev *sql.DB, dir migrate.Dir, version, name string) error {
	format := migrate.DefaultFormatter
	if version != "" {
		n, err := template.New("").Parse(version + "{{ with .Name }}_{{ . }}{{ end }}.sql")
		if err != nil {
			return fmt.Errorf("plan %s migration: version %q: %w", driverName, version, err)
		}
		format = migrate.TemplateFormatter{{N: n, C: migrate.DefaultFormatter[0].C}}
	}
	dia := dialect.SQLite
	if driverName == Postgres {
		dia = dialect.Postgres
	}
	m, err := entschema.NewMigrate(entsql.OpenDB(dia, dev),
		entschema.WithDir(dir),
		entschema.WithMigrationMode(entschema.ModeReplay),
		entschema.WithDialect(dia),
		entschema.WithFormatter(format),
		// Versioned files may drop what the schema no longer has: a
		// reviewer sees the DROP in the file, unlike auto-migration.
		entschema.WithDropColumn(true),
		entschema.WithDropIndex(true),
		entschema.WithErrNoPlan(true),
	)
	if err != nil {
		return fmt.Errorf("plan %s migration: %w", driverName, err)
	}
	err = m.NamedDiff(ctx, name, entmigrate.Tables...)
	if errors.Is(err, migrate.ErrNoPlan) {
		return ErrNoChanges
	}
	if err != nil {
		return fmt.Errorf("plan %s migration: %w", driverName, err)
	}
	return nil
}

// OpenSQLiteDev opens an empty in-memory SQLite database, a dev database
// for PlanMigration.
func OpenSQLiteDev() (*sql.DB, error) { return openSQLiteMemory() }
