// Package zonestats holds the database side of zonestats, embedded in the
// binary: sql/ has the current definition of every function, aggregate,
// view and procedure (one object per file), migrations/ the numbered
// migrations that build the schema and include those definitions.
package zonestats

import "embed"

// SQL is the sql/ and migrations/ trees.
//
//go:embed sql migrations/*.sql
var SQL embed.FS
