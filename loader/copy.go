package loader

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// rawColumns are the columns the loader COPYs into zonestats_internal.raw_events;
// event_id and loaded_at take their defaults.
var rawColumns = []string{
	"ts", "zone_id", "client_ip", "country", "colo", "method", "status", "content_type", "bytes",
	"cache_status", "ssl_protocol", "ip_class", "threat", "page_view", "browser",
	"kafka_partition", "kafka_offset",
}

var copyEventsSQL = copyEventsInto("zonestats_internal.raw_events")

// copyEventsInto is the COPY statement of the events into table (a quoted,
// qualified name): raw_events or one of its partitions.
func copyEventsInto(table string) string {
	return "COPY " + table + " (" + strings.Join(rawColumns, ", ") + ") FROM STDIN (FORMAT binary)"
}

// copyStatement returns the COPY statement for the events of tx: straight
// into the raw partition that rows loaded now land in, when the database
// names one (zonestats_internal.raw_partition_for_now: PostgreSQL then
// skips routing every row through raw_events), else into raw_events — the
// default partition, Citus, or a database without that function
// (direct false). It must run in the transaction of the COPY: the
// partition is the one for that transaction's now(), loaded_at's default.
func copyStatement(ctx context.Context, tx pgx.Tx, direct bool) (string, error) {
	if !direct {
		return copyEventsSQL, nil
	}
	var part *string
	if err := tx.QueryRow(ctx, "SELECT zonestats_internal.raw_partition_for_now()").Scan(&part); err != nil {
		return "", fmt.Errorf("raw partition: %w", err)
	}
	if part == nil {
		return copyEventsSQL, nil
	}
	return copyEventsInto(*part), nil
}

var deadLetterColumns = []string{"topic", "partition", "kafka_offset", "message_key", "payload", "reason"}

// deadLetter is a message that is not loaded as an event, with the reason.
type deadLetter struct {
	offset int64
	key    []byte
	value  []byte
	reason string
}

// batch is the unit of one database transaction: consecutive messages of
// one partition, from offset first to next-1. Its events are held only as
// the binary COPY rows that will be sent (not as decoded Events): a batch
// of 20,000 events takes ~3 MB, not ~9 MB, so that a partition can fill
// one batch while the one before it commits.
type batch struct {
	topic     string
	partition int
	expected  int64 // offset stored in the database when the batch began; -1: none stored
	first     int64 // offset of the first message
	next      int64 // offset after the last message
	messages  int   // events + dead letters
	events    int
	rows      []byte // the events as rows of PostgreSQL's binary COPY format (rawColumns)
	dead      []deadLetter
	bytes     int64 // message bytes
	ev        Event // scratch for decoding
}

// reset empties the batch for the messages after it; expected is the
// offset now stored.
func (b *batch) reset(expected int64) {
	b.rows, b.dead, b.messages, b.events, b.bytes, b.expected = b.rows[:0], b.dead[:0], 0, 0, 0, expected
	b.first, b.next = 0, 0
}

// note counts a message at offset into the batch.
func (b *batch) note(offset int64, size int) {
	if b.messages == 0 {
		b.first = offset
	}
	b.messages++
	b.next = offset + 1
	b.bytes += int64(size)
}

// addEvent adds the message at offset as an event.
func (b *batch) addEvent(offset int64, size int, e *Event) {
	b.note(offset, size)
	b.rows = appendCopyRow(b.rows, e, int32(b.partition), offset)
	b.events++
}

// addDead adds the message at offset as a dead letter; value is kept as
// given (the caller copies bytes it will reuse).
func (b *batch) addDead(offset int64, size int, key, value []byte, reason string) {
	b.note(offset, size)
	b.dead = append(b.dead, deadLetter{offset: offset, key: key, value: value, reason: reason})
}

// copyReader returns the batch's events as one binary COPY stream.
func (b *batch) copyReader() io.Reader {
	return io.MultiReader(bytes.NewReader(copyHeader), bytes.NewReader(b.rows), bytes.NewReader(copyTrailer))
}

// errStale means the stored offset is not where this batch starts: another
// loader committed this partition meanwhile. Nothing was written.
var errStale = errors.New("partition offset moved: another loader owns it")

// commit writes the batch in one transaction: COPY of the events, COPY of
// the dead letters, a record of any offset gap, and the new offset. If the
// batch was already committed (a retry after a lost COMMIT reply) it
// returns nil without writing anything.
func commit(ctx context.Context, conn *pgx.Conn, b *batch, direct bool) (gap int64, err error) {
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
	case b.first < stored:
		// Kafka handed out offsets that are already loaded: the topic was
		// recreated or truncated. Loading them would count events twice.
		return 0, fmt.Errorf("partition %d: Kafka returned offset %d, below the stored next offset %d "+
			"(topic recreated?); not loading it — fix or reset zonestats_internal.kafka_offsets", b.partition, b.first, stored)
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
		// The events were encoded as they were decoded and are sent as they are.
		stmt, err := copyStatement(ctx, tx, direct)
		if err != nil {
			return 0, err
		}
		tag, err := tx.Conn().PgConn().CopyFrom(ctx, b.copyReader(), stmt)
		if err != nil {
			return 0, fmt.Errorf("copy events: %w", err)
		}
		if int(tag.RowsAffected()) != b.events {
			return 0, fmt.Errorf("copy events: %d rows copied, want %d", tag.RowsAffected(), b.events)
		}
	}
	if len(b.dead) > 0 {
		rows := make([][]any, 0, len(b.dead))
		for _, d := range b.dead {
			rows = append(rows, []any{b.topic, int32(b.partition), d.offset, d.key, d.value, d.reason})
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

// EncodeCopy appends events in the binary COPY format that CopyEventsSQL
// reads, as the loader sends them: kafka_partition is partition and
// kafka_offset counts up from firstOffset. For tools and benchmarks.
func EncodeCopy(buf []byte, events []Event, partition int32, firstOffset int64) []byte {
	buf = appendCopyHeader(buf)
	for i := range events {
		buf = appendCopyRow(buf, &events[i], partition, firstOffset+int64(i))
	}
	return appendCopyTrailer(buf)
}

// RawColumns returns the columns of zonestats_internal.raw_events that the
// loader writes, in the order EncodeCopy encodes them.
func RawColumns() []string { return append([]string(nil), rawColumns...) }

// CopyEventsSQL is the loader's COPY statement into raw_events.
func CopyEventsSQL() string { return copyEventsSQL }

// CopyStatement returns the COPY statement the loader uses in tx: straight
// into the raw partition of the transaction's now() where the database
// names one, else CopyEventsSQL. For tools and benchmarks.
func CopyStatement(ctx context.Context, tx pgx.Tx) (string, error) {
	return copyStatement(ctx, tx, true)
}

var (
	copyHeader  = appendCopyHeader(nil)
	copyTrailer = appendCopyTrailer(nil)
)

func appendCopyHeader(buf []byte) []byte {
	buf = append(buf, "PGCOPY\n\xff\r\n\x00"...)
	buf = binary.BigEndian.AppendUint32(buf, 0)  // flags
	return binary.BigEndian.AppendUint32(buf, 0) // header extension length
}

func appendCopyTrailer(buf []byte) []byte { return binary.BigEndian.AppendUint16(buf, 0xffff) }

// appendCopyRow appends one event as a row of rawColumns.
func appendCopyRow(buf []byte, e *Event, partition int32, offset int64) []byte {
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(rawColumns)))
	buf = appendInt64(buf, e.TS.UnixMicro()-pgEpochMicros)
	buf = appendInt64(buf, e.ZoneID)
	buf = appendInet(buf, e.ClientIP)
	buf = appendText(buf, e.Country)
	buf = appendText(buf, e.Colo)
	buf = appendText(buf, e.Method)
	buf = binary.BigEndian.AppendUint32(buf, 2)
	buf = binary.BigEndian.AppendUint16(buf, uint16(e.Status))
	buf = appendText(buf, e.ContentType)
	buf = appendInt64(buf, e.Bytes)
	buf = appendText(buf, e.CacheStatus)
	buf = appendText(buf, e.SSLProtocol)
	buf = appendText(buf, e.IPClass)
	buf = appendText(buf, e.Threat)
	buf = binary.BigEndian.AppendUint32(buf, 1)
	if e.PageView {
		buf = append(buf, 1)
	} else {
		buf = append(buf, 0)
	}
	buf = appendText(buf, e.Browser)
	buf = binary.BigEndian.AppendUint32(buf, 4)
	buf = binary.BigEndian.AppendUint32(buf, uint32(partition))
	return appendInt64(buf, offset)
}

// pgEpochMicros is 2000-01-01 00:00:00 UTC, PostgreSQL's epoch, in Unix microseconds.
const pgEpochMicros = 946684800 * 1000000

func appendInt64(buf []byte, v int64) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 8)
	return binary.BigEndian.AppendUint64(buf, uint64(v))
}

func appendText(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

// appendInet encodes an address as inet: family, bits, is_cidr, length, bytes.
func appendInet(buf []byte, a netip.Addr) []byte {
	if a.Is4() {
		buf = binary.BigEndian.AppendUint32(buf, 8)
		b := a.As4()
		return append(append(buf, 2, 32, 0, 4), b[:]...)
	}
	buf = binary.BigEndian.AppendUint32(buf, 20)
	b := a.As16()
	return append(append(buf, 3, 128, 0, 16), b[:]...)
}

// rowStarts returns where each row of a batch of COPY rows begins, and
// len(rows) last: row i is rows[starts[i]:starts[i+1]].
func rowStarts(rows []byte) ([]int, error) {
	var starts []int
	for p := 0; p < len(rows); {
		starts = append(starts, p)
		if p+2 > len(rows) {
			return nil, errors.New("COPY rows: truncated row")
		}
		fields := int(binary.BigEndian.Uint16(rows[p:]))
		p += 2
		for range fields {
			if p+4 > len(rows) {
				return nil, errors.New("COPY rows: truncated field")
			}
			n := int(int32(binary.BigEndian.Uint32(rows[p:])))
			p += 4
			if n > 0 {
				p += n
			}
		}
		if p > len(rows) {
			return nil, errors.New("COPY rows: truncated field")
		}
	}
	return append(starts, len(rows)), nil
}

// parseCopyRow reads back a row appendCopyRow wrote: the event and its
// Kafka offset.
func parseCopyRow(row []byte) (e Event, offset int64, err error) {
	fields := make([][]byte, 0, len(rawColumns))
	if len(row) < 2 || int(binary.BigEndian.Uint16(row)) != len(rawColumns) {
		return e, 0, errors.New("COPY row: not a raw_events row")
	}
	for p := 2; p < len(row); {
		if p+4 > len(row) {
			return e, 0, errors.New("COPY row: truncated")
		}
		n := int(int32(binary.BigEndian.Uint32(row[p:])))
		p += 4
		if n < 0 || p+n > len(row) {
			return e, 0, errors.New("COPY row: NULL or truncated field")
		}
		fields = append(fields, row[p:p+n])
		p += n
	}
	if len(fields) != len(rawColumns) {
		return e, 0, errors.New("COPY row: not a raw_events row")
	}
	i64 := func(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }
	e.TS = time.UnixMicro(i64(fields[0]) + pgEpochMicros).UTC()
	e.ZoneID = i64(fields[1])
	if ip := fields[2]; len(ip) == 8 {
		e.ClientIP = netip.AddrFrom4([4]byte(ip[4:]))
	} else {
		e.ClientIP = netip.AddrFrom16([16]byte(ip[4:]))
	}
	e.Country, e.Colo, e.Method = string(fields[3]), string(fields[4]), string(fields[5])
	e.Status = int16(binary.BigEndian.Uint16(fields[6]))
	e.ContentType = string(fields[7])
	e.Bytes = i64(fields[8])
	e.CacheStatus, e.SSLProtocol, e.IPClass, e.Threat = string(fields[9]), string(fields[10]), string(fields[11]), string(fields[12])
	e.PageView = fields[13][0] != 0
	e.Browser = string(fields[14])
	return e, i64(fields[16]), nil
}

// copyLine finds the row a COPY error is about in its context, e.g.
// "COPY raw_events, line 37, column zone_id: …" or, for a COPY straight
// into a partition, "COPY raw_events_p20261125_10, line 37, …".
var copyLine = regexp.MustCompile(`COPY raw_events(?:_\w+)?, line (\d+)`)

// refusal is an event the database refuses, by its row in the batch.
type refusal struct {
	i  int
	pe *pgconn.PgError
}

// findRefused finds the events of the batch that the database refuses for
// their data when the error names no line (Citus reports a shard's COPY
// error without it): it COPYs halves of the events in transactions that
// are always rolled back, and halves again those refused, down to single
// events. None when no event is refused on its own.
func findRefused(ctx context.Context, conn *pgx.Conn, b *batch) ([]refusal, error) {
	starts, err := rowStarts(b.rows)
	if err != nil {
		return nil, err
	}
	idx := make([]int, b.events)
	for i := range idx {
		idx[i] = i
	}
	var found []refusal
	var search func(part []int, known bool) error
	search = func(part []int, known bool) error {
		if !known {
			buf := append([]byte(nil), copyHeader...)
			for _, i := range part {
				buf = append(buf, b.rows[starts[i]:starts[i+1]]...)
			}
			buf = append(buf, copyTrailer...)
			tx, err := conn.Begin(ctx)
			if err != nil {
				return err
			}
			// One connection per worker, the one Citus keeps open between
			// transactions: a trial that opened a connection per shard cost
			// ~100 ms, and a batch needs a few hundred trials. (A placeholder
			// setting, without effect, where Citus is not loaded.)
			if _, err := tx.Exec(ctx, "SET LOCAL citus.multi_shard_modify_mode = 'sequential'"); err != nil {
				tx.Rollback(context.WithoutCancel(ctx))
				return err
			}
			_, err = tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), copyEventsSQL)
			tx.Rollback(context.WithoutCancel(ctx))
			pe := dataError(err)
			if pe == nil {
				return err // nil: this part is accepted
			}
			if len(part) == 1 {
				found = append(found, refusal{part[0], pe})
				return nil
			}
		}
		if len(part) < 2 {
			return nil
		}
		if err := search(part[:len(part)/2], false); err != nil {
			return err
		}
		return search(part[len(part)/2:], false)
	}
	// The whole batch is known to be refused.
	err = search(idx, true)
	return found, err
}

// dataError returns err's database error if it refuses data (SQLSTATE
// class 22 or 23), else nil. Citus passes a constraint violation on a
// shard on as an internal error (XX000) with the shard's message, which
// says "violates … constraint": that counts too.
func dataError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return nil
	}
	if strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23") ||
		pe.Code == "XX000" && strings.Contains(pe.Message, " violates ") && strings.Contains(pe.Message, " constraint ") {
		return pe
	}
	return nil
}

// refusedEvent returns the row of the batch the database refused in its
// COPY for a data or constraint error (SQLSTATE class 22 or 23: retrying
// it cannot help), with the error; -1 when err is not such an error or does
// not say which row.
func refusedEvent(b *batch, err error) (int, *pgconn.PgError) {
	pe := dataError(err)
	if pe == nil {
		return -1, nil
	}
	m := copyLine.FindStringSubmatch(pe.Where)
	if m == nil {
		return -1, pe
	}
	if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= b.events {
		return n - 1, pe
	}
	return -1, pe
}

// reject takes event row i out of the batch and makes it a dead letter with
// reason, its payload the event as JSON (the message's own bytes are not
// kept for events). It returns the event's offset. Rows after i move down
// by one.
func (b *batch) reject(i int, reason string) (int64, error) {
	starts, err := rowStarts(b.rows)
	if err != nil {
		return 0, err
	}
	if i < 0 || i >= len(starts)-1 {
		return 0, fmt.Errorf("reject: no row %d in a batch of %d", i, len(starts)-1)
	}
	e, offset, err := parseCopyRow(b.rows[starts[i]:starts[i+1]])
	if err != nil {
		return 0, err
	}
	b.rows = append(b.rows[:starts[i]], b.rows[starts[i+1]:]...)
	b.events--
	b.dead = append(b.dead, deadLetter{offset: offset, value: eventJSON(&e), reason: reason})
	return offset, nil
}

// wireEvent is an event in the JSON event schema the loader reads.
type wireEvent struct {
	TS          string `json:"ts"`
	ZoneID      int64  `json:"zone_id"`
	ClientIP    string `json:"client_ip"`
	Country     string `json:"country"`
	Colo        string `json:"colo"`
	Method      string `json:"method"`
	Status      int16  `json:"status"`
	ContentType string `json:"content_type"`
	Bytes       int64  `json:"bytes"`
	CacheStatus string `json:"cache_status"`
	SSLProtocol string `json:"ssl_protocol"`
	IPClass     string `json:"ip_class"`
	Threat      string `json:"threat"`
	PageView    bool   `json:"page_view"`
	Browser     string `json:"browser"`
}

// eventJSON encodes an event in the JSON event schema the loader reads.
func eventJSON(e *Event) []byte {
	out, _ := json.Marshal(wireEvent{
		TS: e.TS.UTC().Format(time.RFC3339Nano), ZoneID: e.ZoneID, ClientIP: e.ClientIP.String(),
		Country: e.Country, Colo: e.Colo, Method: e.Method, Status: e.Status,
		ContentType: e.ContentType, Bytes: e.Bytes, CacheStatus: e.CacheStatus,
		SSLProtocol: e.SSLProtocol, IPClass: e.IPClass, Threat: e.Threat,
		PageView: e.PageView, Browser: e.Browser})
	return out
}
