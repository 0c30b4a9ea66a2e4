package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Config configures a Loader. Zero values take the defaults below.
type Config struct {
	Brokers []string
	Topic   string
	Group   string // consumer group id; loaders with the same group share the partitions
	Format  string // message format, one of Formats (default "json")

	BatchSize int           // most messages in one transaction (default 20000)
	BatchWait time.Duration // longest a batch stays open (default 1s)

	// Event-time policy: an event older than MaxEventAge or further than
	// MaxEventFuture ahead of the loader's clock is a dead letter. 0 uses
	// the default (7 days, 1 hour); a negative value turns the check off.
	MaxEventAge    time.Duration
	MaxEventFuture time.Duration

	ProgressEvery  time.Duration // progress log period (default 10s; negative: never)
	SessionTimeout time.Duration // consumer group session timeout (default 10s): how soon a dead loader's partitions move
	Dialer         *kafka.Dialer // nil: kafka.DefaultDialer
	Logger         *slog.Logger  // nil: slog.Default()

	// Registerer gets the loader's Prometheus metrics (metrics.go); nil:
	// none.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 20000
	}
	if c.BatchWait <= 0 {
		c.BatchWait = time.Second
	}
	if c.MaxEventAge == 0 {
		c.MaxEventAge = 7 * 24 * time.Hour
	}
	if c.MaxEventFuture == 0 {
		c.MaxEventFuture = time.Hour
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 10 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.Dialer == nil {
		c.Dialer = kafka.DefaultDialer
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stats are running totals of one Loader.
type Stats struct {
	Messages    atomic.Int64 // messages committed (events + dead letters)
	Bytes       atomic.Int64 // bytes of those messages
	Events      atomic.Int64 // events committed to raw_events
	DeadLetters atomic.Int64 // messages committed to dead_letters
	Batches     atomic.Int64
	Rebalances  atomic.Int64
	Gaps        atomic.Int64 // offsets Kafka no longer had when asked
	DBErrors    atomic.Int64
}

// Loader consumes one topic with a consumer group and loads it into PostgreSQL.
type Loader struct {
	cfg   Config
	pool  *pgxpool.Pool
	log   *slog.Logger
	Stats Stats

	lagMu sync.Mutex
	lag   map[int]int64 // partition → messages behind the high watermark

	// direct: the database has raw_partition_for_now (migration 008), so
	// batches COPY straight into the raw partition; 0 not yet asked, 1 yes,
	// 2 no.
	direct atomic.Int32

	metrics    *metrics     // nil: no Registerer
	generation atomic.Int32 // the consumer group generation held; 0: none
	assigned   atomic.Int32 // partitions assigned in it
}

// New returns a Loader; pool must reach a migrated zonestats database.
func New(cfg Config, pool *pgxpool.Pool) (*Loader, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" || cfg.Group == "" {
		return nil, errors.New("loader: brokers, topic and group are required")
	}
	return newLoader(cfg, pool)
}

// newLoader makes a Loader of cfg, its zero values set to the defaults.
func newLoader(cfg Config, pool *pgxpool.Pool) (*Loader, error) {
	cfg.setDefaults()
	if _, err := NewDecoder(cfg.Format); err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	l := &Loader{cfg: cfg, pool: pool, log: cfg.Logger, lag: map[int]int64{}}
	if cfg.Registerer != nil {
		m, err := newMetrics(cfg.Registerer, l)
		if err != nil {
			return nil, fmt.Errorf("loader: metrics: %w", err)
		}
		l.metrics = m
	}
	return l, nil
}

// Run consumes until ctx ends, then finishes the batches in flight and
// returns nil. It returns an error only if it cannot join the group at all.
func (l *Loader) Run(ctx context.Context) error {
	var groupLog kafka.Logger
	if l.log.Enabled(ctx, slog.LevelDebug) {
		// The consumer group protocol's steps (join, sync, assignments).
		groupLog = kafka.LoggerFunc(func(msg string, args ...any) {
			l.log.Debug("consumer group: " + strings.TrimSpace(fmt.Sprintf(msg, args...)))
		})
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		Logger:            groupLog,
		ID:                l.cfg.Group,
		Brokers:           l.cfg.Brokers,
		Dialer:            l.cfg.Dialer,
		Topics:            []string{l.cfg.Topic},
		HeartbeatInterval: time.Second,
		SessionTimeout:    l.cfg.SessionTimeout,
		RebalanceTimeout:  l.cfg.SessionTimeout,
		JoinGroupBackoff:  time.Second,
		// Offsets live in PostgreSQL; Kafka's committed offsets are unused.
		StartOffset:           kafka.FirstOffset,
		WatchPartitionChanges: true,
	})
	if err != nil {
		return fmt.Errorf("consumer group: %w", err)
	}
	stopProgress := l.progress(ctx)
	defer stopProgress()

	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		group.Close() // ends the generation: workers flush and return
		close(done)
	}()
	defer func() { <-done }()

	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			l.log.Warn("consumer group", "err", err)
			continue // kafka-go backs off before rejoining
		}
		l.Stats.Rebalances.Add(1)
		parts := gen.Assignments[l.cfg.Topic]
		ids := make([]int, len(parts))
		for i, p := range parts {
			ids[i] = p.ID
		}
		l.log.Info("generation", "id", gen.ID, "member", gen.MemberID, "partitions", ids)
		l.generation.Store(gen.ID)
		l.assigned.Store(int32(len(ids)))
		gen.Start(func(gctx context.Context) {
			// Marks the end of this generation (for Healthy and metrics);
			// returns only then, as a partition worker must.
			<-gctx.Done()
			if l.generation.CompareAndSwap(gen.ID, 0) {
				l.assigned.Store(0)
			}
		})
		for _, p := range ids {
			gen.Start(func(gctx context.Context) { l.partitionWorker(gctx, p) })
		}
	}
}

// partitionWorker loads one partition until the generation ends. It must not
// return before that: a return would end the generation for every worker.
func (l *Loader) partitionWorker(ctx context.Context, partition int) {
	backoff := newBackoff()
	var failing time.Time // since when consume fails without a while of work between failures
	for ctx.Err() == nil {
		start := time.Now()
		err := l.consume(ctx, partition)
		if err == nil || ctx.Err() != nil {
			continue
		}
		if failing.IsZero() || time.Since(start) > time.Minute {
			failing = start
		}
		switch {
		case errors.Is(err, errStale):
			l.log.Warn("partition moved; resuming from the stored offset", "partition", partition, "err", err)
		case transient(err) && time.Since(failing) < transientFor:
			// A timeout, a dropped connection or a restarting database is
			// not worth an alarm; the same for transientFor is.
			l.log.Warn("partition worker: retrying", "partition", partition, "err", err)
		default:
			l.log.Error("partition worker", "partition", partition, "err", err,
				"failing_for", time.Since(failing).Round(time.Second))
		}
		backoff.wait(ctx)
	}
	l.lagMu.Lock()
	delete(l.lag, partition)
	l.lagMu.Unlock()
}

// consume reads one partition from the offset stored in the database and
// commits batches until ctx ends (nil) or something needs a fresh start
// from the stored offset (an error).
func (l *Loader) consume(ctx context.Context, partition int) error {
	var stored int64
	err := l.withConn(ctx, func(ctx context.Context, c *pgxpool.Conn) (err error) {
		stored, err = storedOffset(ctx, c, l.cfg.Topic, partition)
		return err
	})
	if err != nil {
		return fmt.Errorf("read stored offset: %w", err)
	}
	conn, err := l.dialLeader(ctx, partition)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Ending ctx unblocks a fetch in progress.
	defer context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })()
	next := stored
	if next < 0 {
		if next, err = conn.ReadFirstOffset(); err != nil {
			return fmt.Errorf("first offset: %w", err)
		}
	}
	if _, err := conn.Seek(next, kafka.SeekAbsolute); err != nil {
		if next, err = skipDeleted(conn, next, err); err != nil {
			return err
		}
	}

	dec, err := NewDecoder(l.cfg.Format)
	if err != nil {
		return err
	}
	// Two batches take turns: one fills with decoded messages while the
	// other commits, so that decoding the next batch overlaps the
	// database's work on the last one (with one batch, a partition's
	// decoding and its COPY took turns). Commits stay one at a time and in
	// order: a batch is handed to the database only once the batch before
	// it has committed, so each still starts at the offset the previous
	// one stored.
	b := &batch{topic: l.cfg.Topic, partition: partition, expected: stored}
	spare := &batch{topic: l.cfg.Topic, partition: partition}
	var committing chan error // the commit in flight (spare); nil: none
	waitCommit := func() error {
		if committing == nil {
			return nil
		}
		err := <-committing
		committing = nil
		return err
	}
	var opened time.Time // when the batch got its first message
	flush := func() error {
		if b.messages == 0 {
			return nil
		}
		if err := waitCommit(); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func(b *batch) { done <- l.commitWithRetry(ctx, b) }(b)
		committing = done
		b, spare = spare, b
		b.reset(spare.next)
		return nil
	}
	err = func() error {
		// Fetch and decode. One fetch brings up to 4 MiB of messages, read
		// straight off the connection (no goroutine or channel per
		// message). A batch goes to commit when it is full, when the
		// partition is caught up (the fetch reached the high watermark), or
		// after BatchWait.
		for {
			if ctx.Err() != nil {
				return flush() // commit what was read
			}
			conn.SetReadDeadline(time.Now().Add(fetchWait + 10*time.Second))
			fetch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: fetchWait})
			tb := l.bounds()
			for {
				m, err := fetch.ReadMessage()
				if err != nil {
					break
				}
				if b.messages == 0 {
					opened = time.Now()
				}
				l.add(dec, b, m, tb)
				next = m.Offset + 1
				if b.messages >= l.cfg.BatchSize {
					if err := flush(); err != nil {
						fetch.Close()
						return err
					}
					tb = l.bounds() // waiting for the previous commit may have taken long
					// A slow commit must not make the rest of this fetch time out.
					conn.SetReadDeadline(time.Now().Add(fetchWait + 10*time.Second))
				}
			}
			hwm := fetch.HighWaterMark()
			if err := fetch.Close(); err != nil {
				if ctx.Err() != nil {
					return flush()
				}
				if errors.Is(err, kafka.RequestTimedOut) {
					// Nothing new within fetchWait: the partition is caught up.
					if err := flush(); err != nil {
						return err
					}
					continue
				}
				if errors.Is(err, kafka.OffsetOutOfRange) {
					if next, err = skipDeleted(conn, next, err); err != nil {
						return err
					}
					continue
				}
				if ferr := flush(); ferr != nil {
					return ferr
				}
				return fmt.Errorf("fetch: %w", err)
			}
			l.setLag(partition, hwm-next)
			if b.messages > 0 && (next >= hwm || time.Since(opened) >= l.cfg.BatchWait) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}()
	// Finish the commit in flight (on shutdown too) before the stored
	// offset is read again.
	if werr := waitCommit(); err == nil {
		err = werr
	}
	return err
}

// fetchWait is how long a fetch waits for new messages when the partition
// is caught up.
const fetchWait = 500 * time.Millisecond

// skipDeleted handles an offset the partition no longer holds (err from a
// seek or a fetch at next): when retention deleted it before it was loaded,
// it seeks to the first offset still there and returns it — the commit then
// records the gap. Any other case is an error.
func skipDeleted(conn *kafka.Conn, next int64, err error) (int64, error) {
	first, last, ferr := conn.ReadOffsets()
	if !errors.Is(err, kafka.OffsetOutOfRange) || ferr != nil || next >= first {
		return next, fmt.Errorf("offset %d (partition holds [%d, %d)): %w", next, first, last, errors.Join(err, ferr))
	}
	if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
		return next, fmt.Errorf("seek to %d: %w", first, err)
	}
	return first, nil
}

// dialLeader connects to the leader of a partition through any broker.
func (l *Loader) dialLeader(ctx context.Context, partition int) (*kafka.Conn, error) {
	var errs []error
	for _, broker := range l.cfg.Brokers {
		conn, err := l.cfg.Dialer.DialLeader(ctx, "tcp", broker, l.cfg.Topic, partition)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("connect to the leader of partition %d: %w", partition, errors.Join(errs...))
}

// add decodes one message into the batch: an event or a dead letter.
func (l *Loader) add(dec Decoder, b *batch, m kafka.Message, tb timeBounds) {
	var reason string
	if err := dec.Decode(m.Value, &b.ev); err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			reason = de.Reason
		} else {
			reason = err.Error()
		}
	} else {
		reason = l.checkTime(b.ev.TS, tb)
	}
	if reason == "" {
		b.addEvent(m.Offset, len(m.Value), &b.ev)
		return
	}
	// Keep the bytes as they came; an empty message is an empty payload, not NULL.
	b.addDead(m.Offset, len(m.Value), m.Key, append(make([]byte, 0, len(m.Value)), m.Value...), reason)
}

// timeBounds are the event times the policy accepts, from one reading of
// the loader's clock (taken once per fetch and after every commit, not per
// message: reading the clock was 4 % of the loader's CPU).
type timeBounds struct {
	oldest, newest time.Time // zero: no bound
}

// bounds reads the clock for the event-time policy.
func (l *Loader) bounds() timeBounds {
	var tb timeBounds
	now := time.Now()
	if l.cfg.MaxEventAge > 0 {
		tb.oldest = now.Add(-l.cfg.MaxEventAge)
	}
	if l.cfg.MaxEventFuture > 0 {
		tb.newest = now.Add(l.cfg.MaxEventFuture)
	}
	return tb
}

// checkTime applies the event-time policy.
func (l *Loader) checkTime(ts time.Time, tb timeBounds) string {
	if !tb.oldest.IsZero() && ts.Before(tb.oldest) {
		return "ts too old: more than " + l.cfg.MaxEventAge.String() + " before the loader's clock"
	}
	if !tb.newest.IsZero() && ts.After(tb.newest) {
		return "ts in the future: more than " + l.cfg.MaxEventFuture.String() + " after the loader's clock"
	}
	return ""
}

// copiesIntoPartitions tells whether the database names the raw partition
// a batch should COPY into (zonestats_internal.raw_partition_for_now, from
// migration 008), asking once. Without it the loader COPYs into raw_events
// as before, and says once that migrating makes loading cheaper.
func (l *Loader) copiesIntoPartitions(ctx context.Context, conn *pgx.Conn) (bool, error) {
	switch l.direct.Load() {
	case 1:
		return true, nil
	case 2:
		return false, nil
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT to_regprocedure('zonestats_internal.raw_partition_for_now()') IS NOT NULL").Scan(&ok); err != nil {
		return false, err
	}
	if ok {
		l.direct.Store(1)
	} else if l.direct.CompareAndSwap(0, 2) {
		l.log.Warn("the database has no zonestats_internal.raw_partition_for_now(): COPYing through raw_events; run `zonestats migrate up` to load straight into its partitions")
	}
	return ok, nil
}

// commitWithRetry commits a batch, retrying database errors with backoff;
// an event the database refuses for its data goes to the dead letters.
// A stale partition is returned at once. When ctx has ended (shutdown) it
// still tries for a while, so the batch in flight is finished.
func (l *Loader) commitWithRetry(ctx context.Context, b *batch) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 24*time.Hour)
	defer cancel()
	backoff := newBackoff()
	var shutdownAt, failingSince time.Time
	firstTry := time.Now()
	for attempt := 1; ; attempt++ {
		started := time.Now()
		var gap int64
		err := l.withConn(bctx, func(cctx context.Context, c *pgxpool.Conn) (err error) {
			direct, err := l.copiesIntoPartitions(cctx, c.Conn())
			if err != nil {
				return err
			}
			gap, err = commit(cctx, c.Conn(), b, direct)
			return err
		})
		if err == nil {
			l.Stats.Batches.Add(1)
			l.Stats.Messages.Add(int64(b.messages))
			l.Stats.Bytes.Add(b.bytes)
			l.metrics.committed(b, time.Since(firstTry))
			l.Stats.Events.Add(int64(b.events))
			l.Stats.DeadLetters.Add(int64(len(b.dead)))
			if gap > 0 {
				l.Stats.Gaps.Add(gap)
				l.log.Error("offsets lost: Kafka no longer had them when the loader asked (retention?); recorded in zonestats_internal.offset_gaps",
					"partition", b.partition, "first", b.first-gap, "last", b.first-1, "count", gap)
			}
			l.log.Debug("batch committed", "partition", b.partition, "first", b.first, "next", b.next,
				"events", b.events, "dead_letters", len(b.dead), "ms", time.Since(started).Milliseconds())
			return nil
		}
		if errors.Is(err, errStale) {
			return err
		}
		var refused []refusal
		if i, pe := refusedEvent(b, err); i >= 0 {
			refused = []refusal{{i, pe}}
		} else if pe != nil {
			// The error names no line (Citus): find the events by trial.
			if werr := l.withConn(bctx, func(cctx context.Context, c *pgxpool.Conn) (ferr error) {
				refused, ferr = findRefused(cctx, c.Conn(), b)
				return ferr
			}); werr != nil {
				l.log.Warn("looking for the refused events", "partition", b.partition, "err", werr)
			}
		}
		if len(refused) > 0 {
			// Events the decoder let through but the database refuses (a
			// constraint added by the operator, say): retrying cannot
			// help, so they go to the dead letters and the rest commits.
			// Last row first: taking a row out moves the rows after it.
			slices.SortFunc(refused, func(x, y refusal) int { return y.i - x.i })
			for _, r := range refused {
				offset, err := b.reject(r.i, fmt.Sprintf("refused by the database: %s (SQLSTATE %s)", r.pe.Message, r.pe.Code))
				if err != nil {
					return err
				}
				l.log.Warn("event refused by the database; dead-lettered", "partition", b.partition,
					"offset", offset, "err", r.pe.Message, "sqlstate", r.pe.Code)
			}
			continue
		}
		l.Stats.DBErrors.Add(1)
		if ctx.Err() != nil {
			if shutdownAt.IsZero() {
				shutdownAt = time.Now()
			}
			if time.Since(shutdownAt) > 30*time.Second {
				return fmt.Errorf("shutting down with an uncommitted batch (it will be read again): %w", err)
			}
		}
		if failingSince.IsZero() {
			failingSince = started
		}
		if transient(err) && time.Since(failingSince) < transientFor {
			l.log.Warn("batch commit failed; retrying", "partition", b.partition, "attempt", attempt, "err", err)
		} else {
			l.log.Error("batch commit failed; retrying", "partition", b.partition, "attempt", attempt, "err", err,
				"failing_for", time.Since(failingSince).Round(time.Second))
		}
		backoff.wait(bctx)
	}
}

func (l *Loader) withConn(ctx context.Context, f func(context.Context, *pgxpool.Conn) error) error {
	c, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return f(ctx, c)
}

func (l *Loader) setLag(partition int, lag int64) {
	l.lagMu.Lock()
	l.lag[partition] = lag
	l.lagMu.Unlock()
}

// Lag returns the last known lag (messages) of each partition this loader holds.
func (l *Loader) Lag() map[int]int64 {
	l.lagMu.Lock()
	defer l.lagMu.Unlock()
	out := make(map[int]int64, len(l.lag))
	for k, v := range l.lag {
		out[k] = v
	}
	return out
}

// progress logs events/s and lag every ProgressEvery until stopped.
func (l *Loader) progress(ctx context.Context) (stop func()) {
	if l.cfg.ProgressEvery < 0 {
		return func() {}
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.cfg.ProgressEvery)
		defer t.Stop()
		last, lastDead, lastAt := l.Stats.Messages.Load(), l.Stats.DeadLetters.Load(), time.Now()
		for {
			select {
			case <-pctx.Done():
				return
			case now := <-t.C:
				n, d := l.Stats.Messages.Load(), l.Stats.DeadLetters.Load()
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				l.log.Info("progress", "messages_per_s", int64(rate), "events", l.Stats.Events.Load(),
					"dead_letters", d, "lag", l.Lag())
				if d-lastDead > 0 && (d-lastDead)*100 > n-last {
					l.log.Warn("more than 1% of the messages are dead letters", "dead_letters", d-lastDead,
						"messages", n-last, "seconds", int(now.Sub(lastAt).Seconds()),
						"hint", "SELECT reason, count(*) FROM zonestats.dead_letters GROUP BY 1")
				}
				last, lastDead, lastAt = n, d, now
			}
		}
	}()
	return func() { cancel(); <-done }
}

// backoff is jittered exponential backoff from 100ms to 10s.
type backoff struct{ d time.Duration }

// transientFor is how long transient failures are logged as warnings
// before they are errors.
const transientFor = 30 * time.Second

// transient reports an error that a retry usually cures: anything that is
// not the database's refusal (a network timeout, a dropped, closed or
// refused connection — to the broker or the database), or the database
// shutting down or starting up, out of connections, in a serialization
// conflict, or read-only (a standby during a failover). A refusal for
// privileges, a missing object, bad credentials or the like is not.
func transient(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return true
	}
	if len(pe.Code) != 5 {
		return false
	}
	switch pe.Code[:2] {
	case "08", "40", "53", "57":
		return true
	}
	return pe.Code == "25006"
}

func newBackoff() *backoff { return &backoff{d: 100 * time.Millisecond} }

func (b *backoff) wait(ctx context.Context) {
	d := b.d/2 + rand.N(b.d/2+1)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	if b.d *= 2; b.d > 10*time.Second {
		b.d = 10 * time.Second
	}
}
