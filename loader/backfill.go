package loader

// Backfill: the same JSON events from a file (or any reader) instead of
// Kafka, through the same decode → COPY → dead-letter path (add,
// commitWithRetry). The input is loaded like one Kafka
// partition: topic "file:"+ID, partition 0, offset = 0-based line number,
// and the next line is committed in zonestats_internal.kafka_offsets in the
// same transaction as the rows — so a rerun resumes after the last
// committed line and never loads a line twice.

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
)

// MaxLine is the longest line LoadFile decodes (16 MiB, without its
// newline). A longer line is a dead letter whose payload is its first
// truncatedPayload bytes; reading goes on with the next line.
const MaxLine = 16 << 20

// truncatedPayload is how much of a line longer than MaxLine the dead
// letter keeps.
const truncatedPayload = 4 << 10

// FileTopicPrefix starts the topic under which a file's offsets and dead
// letters are kept: "file:" + FileInput.ID.
const FileTopicPrefix = "file:"

// NewFileLoader returns a Loader for LoadFile only: the Kafka settings of
// cfg (Brokers, Topic, Group) are not needed and not used.
func NewFileLoader(cfg Config, pool *pgxpool.Pool) (*Loader, error) {
	return newLoader(cfg, pool)
}

// FileInput is what LoadFile reads.
type FileInput struct {
	// R gives the input as stored: lines of JSON events (NDJSON), or a
	// gzip stream of them — recognised by its magic bytes, whatever the
	// name.
	R io.Reader
	// ID is the input's identity: its offsets and dead letters are kept
	// under topic "file:"+ID. For a file, the hex SHA-256 of its bytes
	// (Hash); for a stream, a name the caller vouches for.
	ID string
	// Name is how messages refer to the input (a path, "stdin").
	Name string
	// Size is the number of bytes R will give, when known (progress and
	// ETA); 0 when unknown.
	Size int64
	// SHA256, when set, is the hex SHA-256 R's bytes must have: what is
	// read is hashed again and, at the end of the input, a mismatch (the
	// file changed after it was hashed) is an error.
	SHA256 string
	// Progress, when set, is called with a snapshot every
	// Config.ProgressEvery and once at the end; when nil, progress is
	// logged every Config.ProgressEvery (negative: never).
	Progress func(FileProgress)
}

// FileProgress is a snapshot of a LoadFile in progress.
type FileProgress struct {
	Phase       string // "skipping" (lines an earlier run loaded), "loading", "done"
	Lines       int64  // lines read so far, skipped ones included
	Skip        int64  // lines loaded by an earlier run, read again but not loaded
	Loaded      int64  // lines committed by this run (events + dead letters)
	Events      int64
	DeadLetters int64
	Bytes       int64         // bytes of the input read so far (compressed bytes for gzip)
	Size        int64         // the input's size, 0 when unknown
	Elapsed     time.Duration // since LoadFile began
	Rate        float64       // lines committed per second since the skipping ended
	ETA         time.Duration // from the bytes still to read at the rate they are read; -1 when unknown
}

// FileSummary is the outcome of a LoadFile.
type FileSummary struct {
	Name  string
	Topic string // "file:" + the input's ID
	// Lines is the number of lines of the input when it was read to the
	// end; when it was not (interrupted, an error), the lines loaded so far
	// (Skipped + Loaded).
	Lines       int64
	Skipped     int64 // lines loaded by an earlier run: skipped
	Loaded      int64 // lines committed by this run (Events + DeadLetters)
	Events      int64
	DeadLetters int64
	TooOld      int64 // of the dead letters: events older than MaxEventAge
	Duration    time.Duration
	Complete    bool // every line of the input is loaded (now or by earlier runs)
	Interrupted bool // the context ended first; a rerun resumes at line Skipped+Loaded
	MaxEventAge time.Duration
}

// Rate is the lines committed per second of the run.
func (s FileSummary) Rate() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Loaded) / s.Duration.Seconds()
}

// String is the summary for people, a few lines.
func (s FileSummary) String() string {
	var b strings.Builder
	state := "incomplete"
	switch {
	case s.Complete && s.Loaded == 0 && s.Skipped > 0:
		state = "nothing to load: every line was loaded by an earlier run"
	case s.Complete && s.Loaded == 0:
		state = "nothing to load: the input has no lines"
	case s.Complete:
		state = "complete"
	case s.Interrupted:
		state = fmt.Sprintf("interrupted: the first %d lines are loaded; run the same command again to load the rest", s.Skipped+s.Loaded)
	}
	fmt.Fprintf(&b, "backfill of %s (%s): %s\n", s.Name, s.Topic, state)
	fmt.Fprintf(&b, "  lines          %d", s.Lines)
	if !s.Complete {
		b.WriteString(" loaded so far")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  skipped        %d (loaded by an earlier run)\n", s.Skipped)
	fmt.Fprintf(&b, "  loaded         %d: %d events, %d dead letters\n", s.Loaded, s.Events, s.DeadLetters)
	fmt.Fprintf(&b, "  duration       %s, %.0f rows/s\n", s.Duration.Round(time.Millisecond), s.Rate())
	if s.TooOld > 0 {
		fmt.Fprintf(&b, "  too old        %d events were older than -max-event-age (%s) and went to zonestats.dead_letters\n"+
			"                 (reason 'ts too old'); to backfill old data, load with -max-event-age raised (e.g. 8760h)\n"+
			"                 or negative (-1s: no limit). The README (Backfill) shows how to load these dead letters again.\n",
			s.TooOld, s.MaxEventAge)
	}
	return b.String()
}

// Hash returns the hex SHA-256 of what r gives (for a file: its bytes as
// stored, a gzip file's compressed bytes) and their number: a file's ID
// for LoadFile. progress, when set, is called with the bytes hashed so
// far, every MiB or so.
func Hash(ctx context.Context, r io.Reader, progress func(done int64)) (sum string, n int64, err error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", n, err
		}
		m, err := r.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if progress != nil && m > 0 {
			progress(n)
		}
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), n, nil
		}
		if err != nil {
			return "", n, err
		}
	}
}

// LoadFile loads the lines of in as events, in transactions of
// Config.BatchSize lines (or fewer after Config.BatchWait, for a slow
// stream), each committing the next line number under topic "file:"+in.ID,
// partition 0. It starts after the lines an earlier run committed. A line
// is one message: the JSON event schema of the Kafka loader, the same
// decoder, event-time policy and dead letters (kafka_offset = the 0-based
// line number, no message key). A final newline does not start a line; an
// empty line is a line (a dead letter, "empty message"); "\r\n" endings are
// accepted. A line longer than MaxLine is a dead letter with its first
// bytes as payload.
//
// When ctx ends, LoadFile commits the lines it has taken so far and
// returns the summary (Interrupted) and a nil error; a Read blocked on
// in.R is left behind (close it to end it). It fails on a read error (the
// lines before it stay loaded), on an input shorter than the lines already
// recorded for its ID, on a hash mismatch (FileInput.SHA256), when another
// load of the same ID commits meanwhile, and — before committing anything
// — when at least half of the first batch of a run is older than
// MaxEventAge (old data needs MaxEventAge raised or negative).
func (l *Loader) LoadFile(ctx context.Context, in FileInput) (FileSummary, error) {
	started := time.Now()
	sum := FileSummary{Name: in.Name, Topic: FileTopicPrefix + in.ID, MaxEventAge: l.cfg.MaxEventAge}
	if in.ID == "" {
		return sum, errors.New("backfill: the input has no ID")
	}
	dec, err := NewDecoder(l.cfg.Format)
	if err != nil {
		return sum, err
	}
	var stored int64
	err = l.withConn(ctx, func(ctx context.Context, c *pgxpool.Conn) (err error) {
		stored, err = storedOffset(ctx, c, sum.Topic, 0)
		return err
	})
	if err != nil {
		return sum, fmt.Errorf("backfill: read the stored offset of %s: %w", sum.Topic, err)
	}
	sum.Skipped = max(stored, 0)
	if stored > 0 {
		l.log.Info("backfill: resuming after the lines loaded before", "input", in.Name, "topic", sum.Topic, "lines_loaded", stored)
	} else {
		l.log.Info("backfill: loading", "input", in.Name, "topic", sum.Topic)
	}

	rd := startLineReader(in, sum.Skipped)
	defer rd.stop()
	var done atomic.Int64 // lines committed by this run
	var events, dead atomic.Int64
	stopProgress := l.fileProgress(in, rd, sum.Skipped, &done, &events, &dead, started)
	defer stopProgress()

	b := &batch{topic: sum.Topic, partition: 0, expected: stored}
	firstBatch := true
	var opened <-chan time.Time // fires BatchWait after the batch got its first line
	flush := func() error {
		opened = nil
		if b.messages == 0 {
			return nil
		}
		tooOld := 0
		for _, d := range b.dead {
			if strings.HasPrefix(d.reason, "ts too old") { // checkTime's reason
				tooOld++
			}
		}
		if firstBatch && l.cfg.MaxEventAge > 0 && 2*tooOld >= b.messages {
			return fmt.Errorf("backfill: %d of the first %d lines are older than -max-event-age (%s); nothing of this batch was loaded. "+
				"Backfilling old data needs -max-event-age raised (e.g. -max-event-age 8760h) or negative (-max-event-age -1s: no limit)",
				tooOld, b.messages, l.cfg.MaxEventAge)
		}
		if err := l.commitWithRetry(ctx, b); err != nil {
			if errors.Is(err, errStale) {
				return fmt.Errorf("backfill: another load of %s committed meanwhile (%w); run again to resume after it", sum.Topic, err)
			}
			return fmt.Errorf("backfill: %w", err)
		}
		firstBatch = false
		sum.Events += int64(b.events)
		sum.DeadLetters += int64(len(b.dead))
		sum.TooOld += int64(tooOld)
		events.Add(int64(b.events))
		dead.Add(int64(len(b.dead)))
		done.Add(int64(b.messages))
		b.reset(b.next)
		return nil
	}
	end := func(err error) (FileSummary, error) {
		sum.Loaded = done.Load()
		sum.Lines = sum.Skipped + sum.Loaded
		sum.Duration = time.Since(started)
		return sum, err
	}
	// finish commits the batch in flight and ends the run.
	finish := func(readErr error) (FileSummary, error) {
		if err := flush(); err != nil {
			return end(errors.Join(err, readErr))
		}
		if readErr == nil && ctx.Err() != nil {
			sum.Interrupted = true
		}
		return end(readErr)
	}

	for {
		if ctx.Err() != nil {
			return finish(nil)
		}
		select {
		case <-ctx.Done():
			return finish(nil)
		case <-opened:
			if err := flush(); err != nil {
				return end(err)
			}
		case c, ok := <-rd.chunks:
			if !ok {
				if rd.err != nil {
					return finish(rd.err)
				}
				if err := flush(); err != nil {
					return end(err)
				}
				sum.Complete = true
				s, _ := end(nil)
				s.Lines = rd.total
				return s, nil
			}
			tb := l.bounds()
			for i, ln := range c.lines {
				if b.messages == 0 {
					opened = time.After(l.cfg.BatchWait)
				}
				off := c.first + int64(i)
				data := c.buf[ln.start:ln.end]
				if ln.cut() {
					b.addDead(off, len(data), nil, append([]byte(nil), data...),
						fmt.Sprintf("line too long: %d bytes, more than %d; the payload is its first %d bytes", ln.size, MaxLine, len(data)))
				} else {
					l.add(dec, b, kafka.Message{Offset: off, Value: data}, tb)
				}
				if b.messages >= l.cfg.BatchSize {
					if err := flush(); err != nil {
						return end(err)
					}
					tb = l.bounds()
					if ctx.Err() != nil {
						return finish(nil)
					}
				}
			}
			rd.recycle(c)
		}
	}
}

// fileProgress reports a LoadFile's progress every ProgressEvery until
// stopped, and once more when stopped.
func (l *Loader) fileProgress(in FileInput, rd *lineReader, skip int64, done, events, dead *atomic.Int64, started time.Time) (stop func()) {
	report := in.Progress
	if report == nil {
		report = func(p FileProgress) {
			if p.Phase == "done" {
				return // the caller has the summary
			}
			args := []any{"input", in.Name, "phase", p.Phase, "lines", p.Lines, "loaded", p.Loaded,
				"events", p.Events, "dead_letters", p.DeadLetters, "rows_per_s", int64(p.Rate)}
			if p.Size > 0 {
				args = append(args, "percent", fmt.Sprintf("%.1f", 100*float64(p.Bytes)/float64(p.Size)))
			}
			if p.ETA >= 0 {
				args = append(args, "eta", p.ETA.Round(time.Second).String())
			}
			l.log.Info("backfill progress", args...)
		}
	}
	snapshot := func(final bool) FileProgress {
		p := FileProgress{Lines: rd.lines.Load(), Skip: skip, Loaded: done.Load(), Events: events.Load(),
			DeadLetters: dead.Load(), Bytes: rd.bytes.Load(), Size: in.Size, Elapsed: time.Since(started), ETA: -1}
		switch {
		case final:
			p.Phase = "done"
		case p.Lines < skip:
			p.Phase = "skipping"
		default:
			p.Phase = "loading"
		}
		if at := rd.loadStart.Load(); at != 0 {
			secs := time.Since(time.Unix(0, at)).Seconds()
			if secs > 0 {
				p.Rate = float64(p.Loaded) / secs
			}
			if read := p.Bytes - rd.loadBytes.Load(); p.Size > 0 && read > 0 && secs > 0.5 {
				p.ETA = time.Duration(float64(max(p.Size-p.Bytes, 0)) / (float64(read) / secs) * float64(time.Second))
			}
		}
		return p
	}
	if l.cfg.ProgressEvery < 0 {
		return func() {}
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(l.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				report(snapshot(true))
				return
			case <-t.C:
				report(snapshot(false))
			}
		}
	}()
	return func() { close(quit); <-exited }
}

// lineReader splits the input into lines on a goroutine of its own, so
// reading and decompressing overlap with decoding and committing, and a
// batch can close on time while a read blocks.
type lineReader struct {
	chunks chan *lineChunk // closed at the end of the input or on an error
	free   chan *lineChunk
	quit   chan struct{}
	err    error        // set before chunks is closed
	total  int64        // lines of the input, set before chunks is closed at its end
	lines  atomic.Int64 // lines read, skipped ones included
	bytes  atomic.Int64 // bytes of the input read
	// When the skipping ended (Unix ns; 0: not yet) and the bytes read by then.
	loadStart, loadBytes atomic.Int64
}

// lineChunk holds consecutive lines, from line number first on.
type lineChunk struct {
	first int64
	buf   []byte
	lines []lineRef
}

// lineRef is one line in a chunk's buf, without its newline; size is the
// line's length in the input, without its newline.
type lineRef struct {
	start, end int
	size       int64
}

// cut reports a line longer than MaxLine, of which only the first
// truncatedPayload bytes were kept.
func (l lineRef) cut() bool { return l.size > int64(l.end-l.start) }

const (
	chunkBytes = 256 << 10
	chunkLines = 1024
)

func startLineReader(in FileInput, skip int64) *lineReader {
	rd := &lineReader{chunks: make(chan *lineChunk, 4), free: make(chan *lineChunk, 6), quit: make(chan struct{})}
	go func() {
		defer close(rd.chunks)
		rd.err = rd.run(in, skip)
	}()
	return rd
}

func (rd *lineReader) stop() { close(rd.quit) }

// recycle gives a chunk whose lines have been taken back for reuse.
func (rd *lineReader) recycle(c *lineChunk) {
	if cap(c.buf) > 4<<20 {
		return // grown by a long line: not worth keeping
	}
	select {
	case rd.free <- c:
	default:
	}
}

var errReaderStopped = errors.New("stopped")

func (rd *lineReader) run(in FileInput, skip int64) error {
	var h hash.Hash
	var src io.Reader = &countingReader{r: in.R, n: &rd.bytes}
	if in.SHA256 != "" {
		h = sha256.New()
		src = io.TeeReader(src, h)
	}
	raw := bufio.NewReaderSize(src, 256<<10)
	var text io.Reader = raw
	if magic, _ := raw.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return fmt.Errorf("backfill: %s: gzip: %w", in.Name, err)
		}
		text = zr
	}
	br := bufio.NewReaderSize(text, 1<<20)

	var n int64 // number of the line being read
	c := rd.chunk(n)
	if skip == 0 {
		rd.skipped()
	}
	for {
		skipping := n < skip
		start := len(c.buf)
		var size int64 // bytes of the line so far, newline included
		cut := false   // longer than MaxLine: only its first truncatedPayload bytes are kept
		nl := false    // ended by a newline
		for {
			frag, err := br.ReadSlice('\n')
			size += int64(len(frag))
			if !skipping && !cut {
				c.buf = append(c.buf, frag...)
				if len(c.buf)-start > MaxLine+2 { // longer than MaxLine, even without a "\r\n"
					c.buf, cut = c.buf[:start+truncatedPayload], true
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF && size == 0 {
				// The end of the input.
				if n < skip {
					return fmt.Errorf("backfill: %s has %d lines, but %d are recorded as loaded under %s: "+
						"not the input loaded before (the same -source-id for another input?)", in.Name, n, skip, FileTopicPrefix+in.ID)
				}
				if len(c.lines) > 0 && !rd.send(c) {
					return errReaderStopped
				}
				if h != nil {
					io.Copy(io.Discard, raw) // the hash covers every byte
					if got := hex.EncodeToString(h.Sum(nil)); got != in.SHA256 {
						return fmt.Errorf("backfill: %s changed while it was loaded: its SHA-256 was %s when hashed, %s now; "+
							"this run's lines are recorded under %s", in.Name, in.SHA256, got, FileTopicPrefix+in.ID)
					}
				}
				rd.total = n
				return nil
			}
			if err != nil && err != io.EOF {
				// A partial line before a read error is not a line.
				return fmt.Errorf("backfill: read %s at line %d (0-based): %w", in.Name, n, err)
			}
			nl = err == nil
			break // a line: up to a newline, or the last one without
		}
		if !skipping {
			end := len(c.buf)
			if !cut {
				if end > start && c.buf[end-1] == '\n' {
					end--
					if end > start && c.buf[end-1] == '\r' {
						end--
					}
				}
				size = int64(end - start)
				if size > MaxLine {
					end, cut = start+truncatedPayload, true
				}
			} else if nl {
				size-- // the newline
			}
			c.buf = c.buf[:end]
			c.lines = append(c.lines, lineRef{start: start, end: end, size: size})
			// Hand the chunk over when full, and before a read that may
			// block (a slow stream's lines must not wait for more).
			if len(c.buf) >= chunkBytes || len(c.lines) >= chunkLines || br.Buffered() == 0 {
				if !rd.send(c) {
					return errReaderStopped
				}
				c = rd.chunk(n + 1)
			}
		}
		n++
		rd.lines.Store(n)
		if skipping && n == skip {
			c.first = n
			rd.skipped()
		}
	}
}

// skipped marks the end of the lines to skip.
func (rd *lineReader) skipped() {
	rd.loadBytes.Store(rd.bytes.Load())
	rd.loadStart.Store(time.Now().UnixNano())
}

// chunk returns an empty chunk starting at line first.
func (rd *lineReader) chunk(first int64) *lineChunk {
	select {
	case c := <-rd.free:
		c.first, c.buf, c.lines = first, c.buf[:0], c.lines[:0]
		return c
	default:
		return &lineChunk{first: first, buf: make([]byte, 0, chunkBytes+64<<10), lines: make([]lineRef, 0, chunkLines)}
	}
}

func (rd *lineReader) send(c *lineChunk) bool {
	select {
	case rd.chunks <- c:
		return true
	case <-rd.quit:
		return false
	}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
