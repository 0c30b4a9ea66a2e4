package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"zonestats/loader"
)

// backfillOptions are the load flags that matter with -from-file.
type backfillOptions struct {
	path     string // -from-file; "-" is stdin
	sourceID string
	common   *commonFlags
	explicit map[string]bool // flags given on the command line
	cfg      loader.Config
}

// explicitFlags returns the names of the flags given on the command line.
func explicitFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// runBackfill is `zonestats load -from-file`: the events of a file or of
// stdin through the loader's decode → COPY → dead-letter path, resumable
// (see loader.LoadFile). The summary goes to stdout; progress to stderr, as
// a bar on a terminal, else as log lines every -progress.
func runBackfill(ctx context.Context, o backfillOptions, stdout, stderr io.Writer) error {
	if o.path == "" {
		return errors.New("load: -source-id is for -from-file")
	}
	for _, f := range []string{"brokers", "topic", "group"} {
		if o.explicit[f] {
			return fmt.Errorf("load: -%s is a Kafka flag, and -from-file loads without Kafka: drop -%s", f, f)
		}
	}
	stdin := o.path == "-"
	if stdin && o.sourceID == "" {
		return errors.New(`load: -from-file - (stdin) needs -source-id NAME: a stream cannot be hashed before it is loaded, ` +
			`so NAME is its identity — its progress is kept under topic "file:NAME", and a rerun with the same NAME resumes after the lines already loaded`)
	}
	var bar *termBar
	if f, ok := stderr.(*os.File); ok && o.cfg.ProgressEvery >= 0 && term.IsTerminal(int(f.Fd())) {
		bar = &termBar{f: f}
		stderr = bar // log lines clear the bar, which is drawn again after them
	}
	log, stopProfile, err := o.common.start(stderr)
	if err != nil {
		return err
	}
	defer stopProfile()

	in := loader.FileInput{ID: o.sourceID, Name: o.path}
	if stdin {
		in.R, in.Name = os.Stdin, "stdin"
		if st, err := os.Stdin.Stat(); err == nil && st.Mode().IsRegular() {
			in.Size = st.Size() // stdin redirected from a file: a known size, an ETA
		}
	} else {
		f, err := os.Open(o.path)
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if st.Mode().IsRegular() {
			in.Size = st.Size()
		} else if o.sourceID == "" {
			return fmt.Errorf("load: %s is not a regular file, so it cannot be hashed for its identity: give -source-id NAME", o.path)
		}
		in.R = f
		if in.ID == "" {
			// First pass: the SHA-256 of the bytes as stored is the
			// file's identity; the loading pass checks it again.
			log.Info("hashing the file: its SHA-256 is its identity for resuming (first pass)", "file", o.path, "bytes", in.Size)
			started := time.Now()
			var progress func(int64)
			if bar != nil {
				progress = bar.hashing(o.path, in.Size)
			}
			sum, _, err := loader.Hash(ctx, f, progress)
			if bar != nil {
				bar.clear()
			}
			if ctx.Err() != nil {
				fmt.Fprintf(stdout, "backfill of %s: interrupted while hashing it; nothing loaded\n", o.path)
				return nil
			}
			if err != nil {
				return fmt.Errorf("load: hash %s: %w", o.path, err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("load: %w", err)
			}
			in.ID, in.SHA256 = sum, sum
			log.Info("hashed", "file", o.path, "sha256", sum, "seconds", fmt.Sprintf("%.1f", time.Since(started).Seconds()))
		}
	}

	pool, err := openPool(ctx, o.common.databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	cfg := o.cfg
	cfg.Logger = log
	if bar != nil {
		cfg.ProgressEvery = 200 * time.Millisecond
		in.Progress = bar.loading(in.Name)
	}
	l, err := loader.NewFileLoader(cfg, pool)
	if err != nil {
		return err
	}
	sum, err := l.LoadFile(ctx, in)
	if bar != nil {
		bar.clear()
	}
	fmt.Fprint(stdout, sum.String())
	return err
}

// termBar draws one progress line on a terminal, and lets log lines
// through above it.
type termBar struct {
	mu   sync.Mutex
	f    *os.File
	line string // on screen now; "" when none
	at   time.Time
}

// Write writes a log line: the bar is cleared, then drawn again below it.
func (b *termBar) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.line != "" {
		io.WriteString(b.f, "\r\x1b[K")
	}
	n, err := b.f.Write(p)
	if b.line != "" {
		io.WriteString(b.f, b.line)
	}
	return n, err
}

func (b *termBar) draw(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w, _, err := term.GetSize(int(b.f.Fd())); err == nil && w > 1 && len(s) >= w {
		s = s[:w-1] // a line that wraps cannot be redrawn in place
	}
	b.line = s
	io.WriteString(b.f, "\r"+s+"\x1b[K")
}

func (b *termBar) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.line != "" {
		io.WriteString(b.f, "\r\x1b[K")
		b.line = ""
	}
}

// hashing returns the progress function of the hashing pass.
func (b *termBar) hashing(name string, size int64) func(done int64) {
	started := time.Now()
	return func(done int64) {
		if time.Since(b.at) < 100*time.Millisecond && done < size {
			return
		}
		b.at = time.Now()
		rate := float64(done) / max(time.Since(started).Seconds(), 1e-3)
		b.draw(fmt.Sprintf("hashing %s (first pass: its identity for resuming)  %s %5.1f%%  %s/s",
			name, progressBar(done, size), percent(done, size), humanBytes(int64(rate))))
	}
}

// loading returns the progress function of LoadFile.
func (b *termBar) loading(name string) func(loader.FileProgress) {
	return func(p loader.FileProgress) {
		switch p.Phase {
		case "done":
			b.clear()
		case "skipping":
			s := fmt.Sprintf("skipping the %d lines loaded before: %d read", p.Skip, p.Lines)
			if p.Size > 0 {
				s += fmt.Sprintf("  %s %5.1f%%", progressBar(p.Bytes, p.Size), percent(p.Bytes, p.Size))
			}
			b.draw(s)
		default:
			s := "loading " + name
			if p.Size > 0 {
				s += fmt.Sprintf("  %s %5.1f%%", progressBar(p.Bytes, p.Size), percent(p.Bytes, p.Size))
			}
			s += fmt.Sprintf("  %d lines  %.0f rows/s", p.Skip+p.Loaded, p.Rate)
			if p.DeadLetters > 0 {
				s += fmt.Sprintf("  %d dead letters", p.DeadLetters)
			}
			if p.ETA >= 0 {
				s += "  ETA " + p.ETA.Round(time.Second).String()
			}
			b.draw(s)
		}
	}
}

func progressBar(done, total int64) string {
	const width = 24
	n := 0
	if total > 0 {
		n = int(min(done, total) * width / total)
	}
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}

func percent(done, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return 100 * float64(min(done, total)) / float64(total)
}
