package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Citus is a throwaway Citus cluster: a coordinator and workers, each a
// Cluster of its own on 127.0.0.1. Citus keeps its metadata per database,
// so every database is created on every node (CreateDatabase).
type Citus struct {
	Coordinator *Cluster
	Workers     []*Cluster
	opts        Options
	mu          sync.Mutex
	spares      []*Cluster
}

// CitusSettings are the server settings every Citus node needs: the
// library preloaded, logical decoding for non-blocking shard moves,
// prepared transactions for two-phase commit across nodes and, on servers
// that restrict logical decoding output plugins (PostgreSQL 15.19+, 16.9+,
// …: output_plugin_libraries), Citus' own plugin for shard splits.
func CitusSettings(binDir string) map[string]string {
	s := map[string]string{
		"shared_preload_libraries":  "citus",
		"wal_level":                 "logical",
		"max_prepared_transactions": "200",
		"max_worker_processes":      "32",
		"max_replication_slots":     "32",
		"max_wal_senders":           "32",
	}
	if hasSetting(binDir, "output_plugin_libraries") {
		s["output_plugin_libraries"] = "'pgoutput, test_decoding, citus'"
	}
	return s
}

// hasSetting reports whether the server in binDir knows a setting (asks
// `postgres --describe-config`).
func hasSetting(binDir, name string) bool {
	out, err := exec.Command(filepath.Join(binDir, "postgres"), "--describe-config").Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, name+"\t") {
			return true
		}
	}
	return false
}

// CitusInstalled returns nil when the Citus extension is installed for the
// PostgreSQL in binDir (empty: FindBinDir), else an error saying what is
// missing.
func CitusInstalled(binDir string) error {
	if binDir == "" {
		var err error
		if binDir, err = FindBinDir(); err != nil {
			return err
		}
	}
	libdir, err := exec.Command(filepath.Join(binDir, "pg_config"), "--pkglibdir").Output()
	if err != nil {
		return fmt.Errorf("pg_config --pkglibdir: %w", err)
	}
	share, err := exec.Command(filepath.Join(binDir, "pg_config"), "--sharedir").Output()
	if err != nil {
		return fmt.Errorf("pg_config --sharedir: %w", err)
	}
	lib := filepath.Join(strings.TrimSpace(string(libdir)), "citus.so")
	control := filepath.Join(strings.TrimSpace(string(share)), "extension", "citus.control")
	for _, f := range []string{lib, control} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("the Citus extension is not installed (%s not found)", f)
		}
	}
	return nil
}

// StartCitus starts a coordinator and n workers with CitusSettings (plus
// opts.Settings).
func StartCitus(ctx context.Context, workers int, opts Options) (*Citus, error) {
	if opts.BinDir == "" {
		var err error
		if opts.BinDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	settings := CitusSettings(opts.BinDir)
	for k, v := range opts.Settings {
		settings[k] = v
	}
	opts.Settings = settings
	nodes := make([]*Cluster, workers+1)
	errs := make([]error, workers+1)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			nodes[i], errs[i] = Start(ctx, opts)
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, n := range nodes {
			if n != nil {
				n.Stop()
			}
		}
		return nil, err
	}
	return &Citus{Coordinator: nodes[0], Workers: nodes[1:], opts: opts}, nil
}

// StartNode starts one more node with the cluster's settings, not yet part
// of any database's metadata (see PrepareNode); it is stopped with the
// cluster.
func (c *Citus) StartNode(ctx context.Context) (*Cluster, error) {
	n, err := Start(ctx, c.opts)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.spares = append(c.spares, n)
	c.mu.Unlock()
	return n, nil
}

// Stop stops every node.
func (c *Citus) Stop() {
	c.mu.Lock()
	nodes := append([]*Cluster{c.Coordinator}, append(c.Workers, c.spares...)...)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func(n *Cluster) { defer wg.Done(); n.Stop() }(n)
	}
	wg.Wait()
}

// PrepareNode creates database db on node with the citus extension in it:
// what Citus needs before a node joins that database's cluster.
func PrepareNode(ctx context.Context, node *Cluster, db string) error {
	if err := Exec(ctx, node.DSN("postgres"), "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return err
	}
	return Exec(ctx, node.DSN(db), "CREATE EXTENSION citus")
}

// CreateDatabase creates db on every node with the citus extension, and
// registers the coordinator and the workers in its metadata.
func (c *Citus) CreateDatabase(ctx context.Context, db string) error {
	nodes := append([]*Cluster{c.Coordinator}, c.Workers...)
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func(i int, n *Cluster) { defer wg.Done(); errs[i] = PrepareNode(ctx, n, db) }(i, n)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	stmts := []string{fmt.Sprintf("SELECT citus_set_coordinator_host('127.0.0.1', %d)", c.Coordinator.Port)}
	for _, w := range c.Workers {
		stmts = append(stmts, fmt.Sprintf("SELECT citus_add_node('127.0.0.1', %d)", w.Port))
	}
	return Exec(ctx, c.Coordinator.DSN(db), stmts...)
}

// DropDatabase drops db on every node (also nodes started by StartNode).
func (c *Citus) DropDatabase(ctx context.Context, db string) error {
	c.mu.Lock()
	nodes := append([]*Cluster{c.Coordinator}, append(c.Workers, c.spares...)...)
	c.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		errs = append(errs, Exec(ctx, n.DSN("postgres"),
			"DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"))
	}
	return errors.Join(errs...)
}

// Exec runs statements, in order, on one new connection to dsn.
func Exec(ctx context.Context, dsn string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}
