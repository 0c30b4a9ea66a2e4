// Command zonestats is the zonestats binary: migrations, the Kafka loader,
// the rollup trigger, the traffic generator and the demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
)

const usage = `zonestats — real-time zone analytics on PostgreSQL

Usage:
  zonestats migrate up|status   apply or list the SQL migrations
  zonestats load                consume Kafka and COPY events into PostgreSQL
                                (-from-file FILE: backfill a file of events, resumable)
  zonestats rollup              run the incremental rollups once (CALL zonestats.run_rollups())
  zonestats expire              apply retention once (CALL zonestats.expire())
  zonestats gen                 produce synthetic traffic into Kafka
  zonestats demo                everything end to end on embedded defaults

Run "zonestats COMMAND -h" for a command's flags. The database is found with
-database-url, else $DATABASE_URL, else the standard PG* variables.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			slog.Error("zonestats", "err", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "load":
		return runLoad(ctx, rest, getenv, stdout, stderr)
	case "rollup":
		return runProcedure(ctx, "rollup", "CALL zonestats.run_rollups($1)", rest, getenv, stdout, stderr)
	case "expire":
		return runProcedure(ctx, "expire", "CALL zonestats.expire()", rest, getenv, stdout, stderr)
	case "gen":
		return runGen(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// newFlags returns a flag set with the flags every command shares.
func newFlags(name string, getenv func(string) string, stderr io.Writer) (*flag.FlagSet, *commonFlags) {
	fs := flag.NewFlagSet("zonestats "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &commonFlags{}
	fs.StringVar(&c.databaseURL, "database-url", getenv("DATABASE_URL"),
		"PostgreSQL connection string (env DATABASE_URL; empty: the standard PG* variables)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a Go CPU profile to this file")
	fs.StringVar(&c.logLevel, "log-level", envOr(getenv, "ZONESTATS_LOG_LEVEL", "info"), "debug, info, warn or error (env ZONESTATS_LOG_LEVEL)")
	return fs, c
}

type commonFlags struct {
	databaseURL string
	logLevel    string
	cpuProfile  string
}

// start makes the command's logger and starts the CPU profile if asked;
// the returned func stops the profile.
func (c *commonFlags) start(stderr io.Writer) (*slog.Logger, func(), error) {
	log, err := c.logger(stderr)
	if err != nil {
		return nil, nil, err
	}
	stop, err := c.profile()
	if err != nil {
		return nil, nil, err
	}
	return log, stop, nil
}

// profile starts the CPU profile if asked; the returned func stops it.
func (c *commonFlags) profile() (stop func(), err error) {
	if c.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(c.cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func (c *commonFlags) logger(stderr io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})), nil
}

// envInt is the integer in environment variable key, def when unset; a
// value that is not an integer is reported by checkEnvInts.
func envInt(getenv func(string) string, key string, def int) int {
	if n, err := strconv.Atoi(getenv(key)); err == nil {
		return n
	}
	return def
}

// checkEnvInts fails on an integer environment variable that is set but
// not an integer (envInt would silently ignore it).
func checkEnvInts(getenv func(string) string, keys ...string) error {
	for _, k := range keys {
		if v := getenv(k); v != "" {
			if _, err := strconv.Atoi(v); err != nil {
				return fmt.Errorf("%s=%q: not an integer", k, v)
			}
		}
	}
	return nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
