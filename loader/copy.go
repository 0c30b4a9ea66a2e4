package loader

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// rawColumns are the columns the loader COPYs into zonestats_internal.raw_events;
// event_id and loaded_at take their defaults.
var rawColumns = []string{
	"ts", "zone_id", "client_ip", "country", "colo", "method", "status", "content_type", "bytes",
	"cache_status", "ssl_protocol", "ip_class", "threat", "page_view", "browser",
	"kafka_partition", "kafka_offset",
}

var deadLetterColumns = []string{"topic", "partition", "kafka_offset", "message_key", "payload", "reason"}

// record is one Kafka message after decoding: an event, or a dead letter.
type record struct {
	offset int64
	ev     Event
	key    []byte
	value  []byte
	reason string // non-empty: a dead letter
}

// batch is the unit of one database transaction: consecutive messages of
// one partition, from offset first to next-1.
type batch struct {
	topic     string
	partition int
	expected  int64 // offset stored in the database when the batch began; -1: none stored
	first     int64 // offset of the first message
	next      int64 // offset after the last message
	records   []record
	events    int
	dead      int
}

// errStale means the stored offset is not where this batch starts: another
// loader committed this partition meanwhile. Nothing was written.
var errStale = errors.New("partition offset moved: another loader owns it")

// commit writes the batch in one transaction: COPY of the events, COPY of
// the dead letters, a record of any offset gap, and the new offset. If the
// batch was already committed (a retry after a lost COMMIT reply) it
// returns nil without writing anything.
func commit(ctx context.Context, conn *pgx.Conn, b *batch) (gap int64, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	// Lock the partition's offset row (creating it on first sight), so two
	// loaders that both think they own the partition commit one at a time.
	if _, err := tx.Exec(ctx, `INSERT INTO zonestats_internal.kafka_offsets (topic, partition, next_offset)
		VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, b.topic, b.partition, b.first); err != nil {
		return 0, fmt.Errorf("offsets: %w", err)
	}
	var stored int64
	if err := tx.QueryRow(ctx, `SELECT next_offset FROM zonestats_internal.kafka_offsets
		WHERE topic = $1 AND partition = $2 FOR UPDATE`, b.topic, b.partition).Scan(&stored); err != nil {
		return 0, fmt.Errorf("offsets: %w", err)
	}
	expected := b.expected
	if expected < 0 {
		expected = b.first // nothing was stored when this reader started
	}
	switch {
	case stored == b.next:
		return 0, nil // this very batch is already in (a retry after a lost COMMIT reply)
	case stored != expected:
		return 0, fmt.Errorf("%w (stored %d, batch %d..%d)", errStale, stored, b.first, b.next-1)
	case b.first > stored:
		// Kafka no longer had offsets stored..first-1 (retention deleted
		// them before they were loaded): record the gap, never silently.
		gap = b.first - stored
		if _, err := tx.Exec(ctx, `INSERT INTO zonestats_internal.offset_gaps (topic, partition, first_offset, last_offset)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, b.topic, b.partition, stored, b.first-1); err != nil {
			return 0, fmt.Errorf("offset gap: %w", err)
		}
	}

	if b.events > 0 {
		rows := make([]any, len(rawColumns))
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			for i < len(b.records) && b.records[i].reason != "" {
				i++
			}
			if i == len(b.records) {
				return nil, nil
			}
			r := &b.records[i]
			i++
			e := &r.ev
			rows[0], rows[1], rows[2], rows[3], rows[4], rows[5] = e.TS, e.ZoneID, e.ClientIP, e.Country, e.Colo, e.Method
			rows[6], rows[7], rows[8], rows[9], rows[10] = e.Status, e.ContentType, e.Bytes, e.CacheStatus, e.SSLProtocol
			rows[11], rows[12], rows[13], rows[14] = e.IPClass, e.Threat, e.PageView, e.Browser
			rows[15], rows[16] = int32(b.partition), r.offset
			return rows, nil
		})
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"zonestats_internal", "raw_events"}, rawColumns, src)
		if err != nil {
			return 0, fmt.Errorf("copy events: %w", err)
		}
		if int(n) != b.events {
			return 0, fmt.Errorf("copy events: %d rows copied, want %d", n, b.events)
		}
	}
	if b.dead > 0 {
		rows := make([][]any, 0, b.dead)
		for i := range b.records {
			if r := &b.records[i]; r.reason != "" {
				rows = append(rows, []any{b.topic, int32(b.partition), r.offset, r.key, r.value, r.reason})
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"zonestats", "dead_letters"}, deadLetterColumns, pgx.CopyFromRows(rows)); err != nil {
			return 0, fmt.Errorf("copy dead letters: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE zonestats_internal.kafka_offsets SET next_offset = $3, updated_at = now()
		WHERE topic = $1 AND partition = $2`, b.topic, b.partition, b.next); err != nil {
		return 0, fmt.Errorf("offsets: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return gap, nil
}

// storedOffset returns the next offset stored for a partition, or -1.
func storedOffset(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, topic string, partition int) (int64, error) {
	var off int64
	err := q.QueryRow(ctx, `SELECT next_offset FROM zonestats_internal.kafka_offsets WHERE topic = $1 AND partition = $2`,
		topic, partition).Scan(&off)
	if errors.Is(err, pgx.ErrNoRows) {
		return -1, nil
	}
	return off, err
}

// Behind returns how many messages the offsets stored for topic are behind
// the given high watermarks (partition → [first, next) from Kafka); a
// partition with no stored offset counts from its first offset.
func Behind(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, topic string, watermarks map[int][2]int64) (int64, error) {
	var behind int64
	for p, o := range watermarks {
		var next int64
		err := q.QueryRow(ctx, `SELECT coalesce((SELECT next_offset FROM zonestats_internal.kafka_offsets
			WHERE topic = $1 AND partition = $2), $3)`, topic, p, o[0]).Scan(&next)
		if err != nil {
			return 0, err
		}
		behind += o[1] - next
	}
	return behind, nil
}
