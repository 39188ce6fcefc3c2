package graph

// gqlgen finds ../gqlgen.yml by walking up from this folder.
//go:generate go tool gqlgen generate
