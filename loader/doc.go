// Package loader consumes access-log events from Kafka and loads them into
// PostgreSQL, exactly once.
//
// One Kafka consumer group shares a topic's partitions among loader
// processes (kafka-go's generation API). Each assigned partition has a
// worker that reads from the offset stored in the database, gathers a batch
// (bounded by count and time), decodes it (decode_json.go), and commits it
// in one PostgreSQL transaction (copy.go): a binary COPY of the good events
// into zonestats_internal.raw_events, the malformed ones into
// zonestats.dead_letters with their reason, and the partition's next offset
// into zonestats_internal.kafka_offsets — fenced, so a member that lost the
// partition cannot overwrite a newer offset.
package loader
