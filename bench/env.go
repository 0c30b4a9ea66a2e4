package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"zonestats/internal/gen"
	"zonestats/internal/kafkakit"
	"zonestats/internal/pgcluster"
	"zonestats/loader"
	"zonestats/migrations"
)

// env is everything the measurements share: the throwaway PostgreSQL, the
// embedded Kafka broker and the generated messages.
type env struct {
	full    bool
	n       int // events per run
	tmp     string
	pg      *pgcluster.Cluster
	kafka   *kfake.Cluster
	brokers []string
	genCfg  gen.Config // the events of every run
	msgs    corpus     // the generated JSON messages (values), in order
	capnp   corpus     // the same events as Cap'n Proto messages (decode_capnp_ns)
	binPath string     // the zonestats binary, for the RSS measurement
	dbSeq   int
	closers []func()
}

const templateDB = "bench_template"

// setup starts PostgreSQL and Kafka, migrates the template database,
// generates the messages and, when asked, builds the zonestats binary.
// On error everything already started is stopped.
func setup(ctx context.Context, full bool, n int, buildBinary bool) (e *env, err error) {
	e = &env{full: full, n: n}
	defer func() {
		if err != nil {
			e.close()
			e = nil
		}
	}()
	if e.tmp, err = os.MkdirTemp("", "zonestats-bench-"); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { os.RemoveAll(e.tmp) })

	if buildBinary {
		progress("building the zonestats binary")
		e.binPath = filepath.Join(e.tmp, "zonestats")
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", e.binPath, "./cmd/zonestats")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/zonestats: %w\n%s", err, out)
		}
	}

	progress("starting PostgreSQL (pgcluster defaults: fsync=off, synchronous_commit=off, full_page_writes=off, shared_buffers=256MB)")
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	e.pg, err = pgcluster.Start(sctx, pgcluster.Options{})
	cancel()
	if err != nil {
		return nil, err
	}
	pg := e.pg
	e.closers = append(e.closers, func() { pg.Stop() })

	progress("starting the embedded Kafka broker")
	kc, addrs, err := kafkakit.Embedded("bench-seed", 1)
	if err != nil {
		return nil, err
	}
	e.kafka, e.brokers = kc, addrs
	e.closers = append(e.closers, kc.Close)

	progress("migrating the template database")
	if err := e.makeTemplate(ctx); err != nil {
		return nil, fmt.Errorf("template database: %w\n%s", err, e.pg.LogTail(2000))
	}

	// The same messages in every run: fixed seed, no late or malformed
	// messages, event times as dense as real traffic at the target rate
	// (spanRate events/s; at least one minute): a run's events are the
	// traffic of a few seconds to a minute, as a rollup every minute sees it.
	// Spreading them thinner (say over an hour) would make every event its
	// own zone-minute row and measure row overhead instead of throughput.
	end := time.Now().UTC().Truncate(time.Minute)
	span := max(time.Minute, time.Duration(float64(n)/spanRate*float64(time.Second)))
	e.genCfg = gen.Config{Seed: seed, Zones: zones, Start: end.Add(-span), End: end}
	progress("generating %d messages (%d zones, Zipf, seed %d)", n, zones, seed)
	g := gen.New(e.genCfg, n)
	for {
		_, v, ok := g.Next(nil, e.msgs.data)
		if !ok {
			break
		}
		e.msgs.data = v
		e.msgs.ends = append(e.msgs.ends, len(v))
	}
	if _, err := e.decodeAll(); err != nil {
		return nil, err
	}
	progress("generated %d messages, %.0f bytes each on average", n, float64(len(e.msgs.data))/float64(n))
	if err := e.generateCapnp(); err != nil {
		return nil, err
	}
	progress("the same as Cap'n Proto messages, %.0f bytes each on average", float64(len(e.capnp.data))/float64(n))
	return e, nil
}

// decodeAll decodes every generated message. The COPY ceiling and the
// INSERT baseline decode before their clock starts and drop the events
// after, so no other measurement runs next to a large heap of pointers for
// the garbage collector to scan.
func (e *env) decodeAll() ([]loader.Event, error) {
	dec := &loader.JSONDecoder{}
	events := make([]loader.Event, e.msgs.len())
	for i := range events {
		if err := dec.Decode(e.msgs.at(i), &events[i]); err != nil {
			return nil, fmt.Errorf("generated message %d does not decode: %w", i, err)
		}
	}
	return events, nil
}

// generateCapnp generates the run's events again as Cap'n Proto messages
// (gen's Format "capnp": the same events) and checks that each decodes to
// the event its JSON twin decodes to.
func (e *env) generateCapnp() error {
	cfg := e.genCfg
	cfg.Format = "capnp"
	g := gen.New(cfg, e.n)
	var dj loader.JSONDecoder
	var dc loader.CapnpDecoder
	var ej, ec loader.Event
	for i := 0; ; i++ {
		_, v, ok := g.Next(nil, e.capnp.data)
		if !ok {
			return nil
		}
		e.capnp.data = v
		e.capnp.ends = append(e.capnp.ends, len(v))
		if err := dc.Decode(e.capnp.at(i), &ec); err != nil {
			return fmt.Errorf("generated capnp message %d does not decode: %w", i, err)
		}
		if err := dj.Decode(e.msgs.at(i), &ej); err != nil || ej != ec {
			return fmt.Errorf("generated message %d: capnp %+v, JSON %+v (%v)", i, ec, ej, err)
		}
	}
}

// close stops everything, in reverse order of start.
func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// corpus holds messages back to back: message i is data[ends[i-1]:ends[i]].
type corpus struct {
	data []byte
	ends []int
}

func (c *corpus) at(i int) []byte {
	start := 0
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.data[start:c.ends[i]]
}

func (c *corpus) len() int { return len(c.ends) }

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found: run the bench from inside the zonestats module")
		}
		dir = parent
	}
}

// ---- PostgreSQL ----

// dsn is the URL of database db; every bench session runs in UTC.
func (e *env) dsn(db string) string { return e.pg.DSN(db) + "&timezone=UTC" }

func (e *env) admin(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, e.dsn("postgres"))
}

func (e *env) makeTemplate(ctx context.Context) error {
	a, err := e.admin(ctx)
	if err != nil {
		return err
	}
	defer a.Close(ctx)
	if _, err := a.Exec(ctx, "CREATE DATABASE "+templateDB); err != nil {
		return err
	}
	c, err := pgx.Connect(ctx, e.dsn(templateDB))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return migrations.Up(ctx, c, nil)
}

// newDB creates a fresh database cloned from the migrated template and
// returns its URL and a function that drops it.
// newDBConn is newDB plus one open connection; done closes it and drops
// the database.
func (e *env) newDBConn(ctx context.Context, prefix string) (url string, conn *pgx.Conn, done func(), err error) {
	url, drop, err := e.newDB(ctx, prefix)
	if err != nil {
		return "", nil, nil, err
	}
	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		drop()
		return "", nil, nil, err
	}
	return url, conn, func() { conn.Close(context.WithoutCancel(ctx)); drop() }, nil
}

func (e *env) newDB(ctx context.Context, prefix string) (url string, drop func(), err error) {
	e.dbSeq++
	name := fmt.Sprintf("bench_%s_%d", prefix, e.dbSeq)
	a, err := e.admin(ctx)
	if err != nil {
		return "", nil, err
	}
	defer a.Close(ctx)
	if _, err := a.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateDB); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop = func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if a, err := e.admin(dctx); err == nil {
			a.Exec(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			a.Close(dctx)
		}
	}
	return e.dsn(name), drop, nil
}

// ---- Kafka ----

// produceTopic creates a topic of 8 partitions and produces the generated
// messages into it (keyed by zone, acks=all), returning its watermarks.
func (e *env) produceTopic(ctx context.Context, topic string) (map[int][2]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 30 * time.Second, Transport: &kafka.Transport{}}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", topic, err)
	}
	progress("producing %d messages into %s (%d partitions)", e.n, topic, partitions)
	t0 := time.Now()
	sent, err := kafkakit.Produce(ctx, e.brokers, topic, gen.New(e.genCfg, e.n), 0)
	if err != nil {
		return nil, err
	}
	wm, err := kafkakit.Watermarks(ctx, e.brokers, topic)
	if err != nil {
		return nil, err
	}
	if sent != e.n || kafkakit.Total(wm) != int64(e.n) {
		return nil, fmt.Errorf("produced %d messages, topic holds %d, want %d", sent, kafkakit.Total(wm), e.n)
	}
	var sizes []string
	for p := 0; p < partitions; p++ {
		sizes = append(sizes, fmt.Sprint(wm[p][1]-wm[p][0]))
	}
	progress("produced in %.1fs; messages per partition %s", time.Since(t0).Seconds(), strings.Join(sizes, " "))
	return wm, nil
}

// deleteTopic frees the broker's memory once a run is over.
func (e *env) deleteTopic(ctx context.Context, topic string) {
	client := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 30 * time.Second, Transport: &kafka.Transport{}}
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
		progress("delete topic %s: %v", topic, err)
	}
}

// newDialer gives each Kafka client its own connections.
func newDialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
}

// spanRate is the event rate (events/s) whose density the generated event
// times have: the sustained-ingest target.
const spanRate = 200000
