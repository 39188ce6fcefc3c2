package store

import (
	"context"
	"database/sql"

	"ariga.io/atlas/sql/migrate"
)

// ApplyMigrations applies dir's files instead of the checked-in ones.
func ApplyMigrations(ctx context.Context, db *sql.DB, driverName string, dir migrate.Dir) error {
	return applyMigrations(ctx, db, driverName, "test", dir)
}

// Classify names the kind a statement is counted under, for the tests.
func Classify(q string) string {
	return [...]string{kindOther: "other", kindRead: "read", kindWrite: "write"}[classify(q)]
}
