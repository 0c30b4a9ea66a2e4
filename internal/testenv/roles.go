package testenv

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"zonestats/internal/pgcluster"
)

// LoginRole creates a LOGIN role named name plus a unique suffix (roles
// belong to the whole cluster), member of the given group roles, and drops
// it at cleanup. It returns the role's name. The cluster trusts local
// connections, so AsRole(url, name) connects as it.
func LoginRole(t testing.TB, name string, groups ...string) string {
	t.Helper()
	role := fmt.Sprintf("%s_%d", name, dbSeq.Add(1))
	admin := adminConn(t)
	defer admin.Close(context.Background())
	sql := "CREATE ROLE " + pgx.Identifier{role}.Sanitize() + " LOGIN"
	if len(groups) > 0 {
		quoted := make([]string, len(groups))
		for i, g := range groups {
			quoted[i] = pgx.Identifier{g}.Sanitize()
		}
		sql += " IN ROLE " + strings.Join(quoted, ", ")
	}
	if _, err := admin.Exec(context.Background(), sql); err != nil {
		t.Fatalf("create role: %v", err)
	}
	// Roles belong to each server: on Citus the workers need it too (Citus
	// connects to them as the querying role).
	var workerDSNs []string
	if citus != nil {
		for _, w := range citus.Workers {
			workerDSNs = append(workerDSNs, w.DSN("postgres"))
		}
	}
	for _, dsn := range workerDSNs {
		if err := pgcluster.Exec(context.Background(), dsn, sql); err != nil {
			t.Fatalf("create role on a worker: %v", err)
		}
	}
	t.Cleanup(func() {
		drop := "DROP ROLE IF EXISTS " + pgx.Identifier{role}.Sanitize()
		for _, dsn := range append([]string{cluster.DSN("postgres")}, workerDSNs...) {
			if err := pgcluster.Exec(context.Background(), dsn, drop); err != nil {
				t.Logf("drop role %s: %v", role, err)
			}
		}
	})
	return role
}

// AsRole returns the database URL dbURL with its user replaced by role.
func AsRole(dbURL, role string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		panic(fmt.Sprintf("testenv: bad database URL: %v", err))
	}
	u.User = url.User(role)
	return u.String()
}
