package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"zonestats/internal/gen"
	"zonestats/internal/kafkakit"
)

func runGen(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, c := newFlags("gen", getenv, stderr)
	var k kafkaFlags
	k.register(fs, getenv)
	n := fs.Int("n", 1000000, "messages to produce")
	seed := fs.Int64("seed", 1, "random seed (same seed and flags: same messages)")
	zones := fs.Int("zones", 1000, "number of zones (Zipf-skewed traffic)")
	span := fs.Duration("span", time.Hour, "event times are spread over this span, ending now")
	late := fs.Float64("late-share", 0, "share of late events (1-6 hours old)")
	bad := fs.Float64("bad-share", 0, "share of malformed messages")
	rate := fs.Float64("rate", 0, "messages per second (0: as fast as possible)")
	partitions := fs.Int("partitions", 8, "partitions of the topic if gen has to create it")
	out := fs.String("out", "", "write the messages to this file instead of Kafka, one JSON event per line (gzip when it ends in .gz; - for stdout), for load -from-file")
	format := fs.String("format", envOr(getenv, "ZONESTATS_FORMAT", "json"), "message format: "+strings.Join(gen.Formats, " or ")+" (env ZONESTATS_FORMAT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !slices.Contains(gen.Formats, *format) {
		return fmt.Errorf("gen: -format: unknown message format %q (known: %s)", *format, strings.Join(gen.Formats, ", "))
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	end := time.Now().UTC().Truncate(time.Minute)
	g := gen.New(gen.Config{Seed: *seed, Zones: *zones, Start: end.Add(-*span), End: end, LateShare: *late, BadShare: *bad, Format: *format}, *n)
	if *out != "" {
		if *format != "json" {
			return fmt.Errorf("gen: -out writes JSON lines (for load -from-file); -format %s is for Kafka", *format)
		}
		start := time.Now()
		if err := writeNDJSON(ctx, *out, g, stdout); err != nil {
			return fmt.Errorf("gen: %w", err)
		}
		log.Info("written", "messages", g.Emitted(), "malformed", g.Malformed(), "file", *out,
			"per_s", int64(float64(g.Emitted())/time.Since(start).Seconds()))
		return nil
	}
	brokers := k.brokerList()
	if len(brokers) == 0 {
		return fmt.Errorf("gen: no Kafka brokers: set -brokers or KAFKA_BROKERS")
	}
	if err := ensureTopic(ctx, brokers, k.topic, *partitions); err != nil {
		return err
	}
	start := time.Now()
	sent, err := kafkakit.Produce(ctx, brokers, k.topic, g, *rate)
	if err != nil {
		return err
	}
	log.Info("produced", "messages", sent, "malformed", g.Malformed(), "topic", k.topic, "format", *format,
		"per_s", int64(float64(sent)/time.Since(start).Seconds()))
	return nil
}

// writeNDJSON writes the generator's messages (their values), one a line,
// to path ("-": stdout), gzip-compressed when path ends in .gz.
func writeNDJSON(ctx context.Context, path string, g *gen.Generator, stdout io.Writer) (err error) {
	var w io.Writer = stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	w = bw
	var zw *gzip.Writer
	if strings.HasSuffix(path, ".gz") {
		zw = gzip.NewWriter(bw)
		w = zw
	}
	var key, value []byte
	for ok := true; ok; {
		if key, value, ok = g.Next(key[:0], value[:0]); ok {
			if _, err := w.Write(append(value, '\n')); err != nil {
				return err
			}
		}
		if g.Emitted()%65536 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ensureTopic creates the topic if the cluster does not have it.
func ensureTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: -1,
	}}})
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) {
			return fmt.Errorf("kafka at %v: %w", brokers, err)
		}
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if err := res.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s (%s partitions): %w", topic, strconv.Itoa(partitions), err)
	}
	return nil
}
