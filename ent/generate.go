// Package ent holds the storage model. Everything in this folder except
// schema/, entc.go and this file is generated: change ent/schema and run
// `go generate ./...` from the repository root.
package ent

//go:generate go run ./entc.go
