package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"zonestats/migrations"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, c := newFlags("migrate", getenv, stderr)
	shards := fs.Int("shard-count", envInt(getenv, "ZONESTATS_SHARD_COUNT", 0),
		"Citus: shards per distributed table, used when the tables are distributed (first install); 0 = Citus' default (32) [ZONESTATS_SHARD_COUNT]")
	replicas := fs.Int("shard-replication-factor", envInt(getenv, "ZONESTATS_SHARD_REPLICATION_FACTOR", 0),
		"Citus: copies of every shard on different workers (2 keeps dashboards answering with one worker down), used at first install; 0 = 1 [ZONESTATS_SHARD_REPLICATION_FACTOR]")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: zonestats migrate [flags] up|status")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkEnvInts(getenv, "ZONESTATS_SHARD_COUNT", "ZONESTATS_SHARD_REPLICATION_FACTOR"); err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "up" && fs.Arg(0) != "status") {
		fs.Usage()
		return fmt.Errorf("migrate: want up or status")
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	conn, err := connect(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	if fs.Arg(0) == "up" {
		applied := 0
		o := migrations.CitusOptions{ShardCount: *shards, ReplicationFactor: *replicas}
		err := migrations.UpWithCitus(ctx, conn, o, func(v int32, name string) {
			applied++
			log.Info("applying migration", "version", v, "name", name)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "migrations: %d applied\n", applied)
		return nil
	}
	list, err := migrations.Status(ctx, conn)
	if err != nil {
		return err
	}
	for _, m := range list {
		state := "pending"
		if m.Applied {
			state = "applied"
		}
		fmt.Fprintf(stdout, "%-8s %3d  %s\n", state, m.Version, m.Name)
	}
	return nil
}

// connect opens one connection; an empty url means the PG* variables.
func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Host, err)
	}
	return conn, nil
}

// runProcedure calls one maintenance procedure once and prints its NOTICEs.
func runProcedure(ctx context.Context, name, call string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, c := newFlags(name, getenv, stderr)
	wait := fs.Bool("wait", false, "rollup: wait for a run in progress instead of returning")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(c.databaseURL)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		lvl := slog.LevelInfo
		if n.Severity == "WARNING" {
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, n.Message, "detail", n.Detail)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if name == "rollup" {
		_, err = conn.Exec(ctx, call, *wait)
	} else {
		_, err = conn.Exec(ctx, call)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
