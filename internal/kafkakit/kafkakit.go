// Package kafkakit holds the Kafka plumbing shared by the generator, the
// demo, the benchmarks and the tests: the embedded broker (franz-go's kfake,
// which speaks the real Kafka protocol over TCP), producing generated
// traffic, and reading partition watermarks.
package kafkakit

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"zonestats/internal/gen"
)

// Embedded starts an in-process Kafka broker on a free loopback port with
// one topic of the given partitions. Close it with Close().
func Embedded(topic string, partitions int, opts ...kfake.Opt) (*kfake.Cluster, []string, error) {
	opts = append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.SeedTopics(int32(partitions), topic),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }),
	}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("embedded kafka: %w", err)
	}
	return c, c.ListenAddrs(), nil
}

// Produce writes the generator's messages to topic, keyed by zone (Murmur2
// partitioning, as Java clients do). rate > 0 limits messages per second.
// It returns how many messages were acknowledged.
func Produce(ctx context.Context, brokers []string, topic string, g *gen.Generator, rate float64) (int, error) {
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		BatchSize:    5000,
		BatchBytes:   16 << 20,
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
		Compression:  kafka.Lz4,
		Transport:    &kafka.Transport{},
	}
	defer w.Close()
	const chunk = 5000
	msgs := make([]kafka.Message, 0, chunk)
	sent := 0
	start := time.Now()
	for {
		msgs = msgs[:0]
		for len(msgs) < chunk {
			k, v, ok := g.Next(nil, nil)
			if !ok {
				break
			}
			msgs = append(msgs, kafka.Message{Key: k, Value: v})
		}
		if len(msgs) == 0 {
			return sent, nil
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return sent, fmt.Errorf("produce: %w", err)
		}
		sent += len(msgs)
		if rate > 0 {
			ahead := time.Duration(float64(sent)/rate*float64(time.Second)) - time.Since(start)
			if ahead > 0 {
				select {
				case <-ctx.Done():
					return sent, ctx.Err()
				case <-time.After(ahead):
				}
			}
		}
	}
}

// Watermarks returns, per partition, the first offset still in the log and
// the next offset to be written (high watermark).
func Watermarks(ctx context.Context, brokers []string, topic string) (map[int][2]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata: topic %q not found", topic)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[int][2]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("list offsets of partition %d: %w", p.Partition, p.Error)
		}
		out[p.Partition] = [2]int64{p.FirstOffset, p.LastOffset}
	}
	return out, nil
}

// Total is the number of messages the topic holds (sum of high minus low watermarks).
func Total(w map[int][2]int64) int64 {
	var n int64
	for _, o := range w {
		n += o[1] - o[0]
	}
	return n
}

// ZoneKey is the message key of a zone: its id in decimal.
func ZoneKey(zone int64) []byte { return strconv.AppendInt(nil, zone, 10) }
