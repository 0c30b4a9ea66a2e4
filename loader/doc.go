// Package loader consumes access-log events from Kafka and loads them into
// PostgreSQL, exactly once.
//
// One Kafka consumer group shares a topic's partitions among loader
// processes (kafka-go's generation API). Each assigned partition has a
// worker that reads from the offset stored in the database, decodes each
// message (decode_json.go) straight into a binary COPY row of a batch
// (bounded by count and time), and commits the batch in one PostgreSQL
// transaction (copy.go) while it fills the next one: a binary COPY of the
// good events into zonestats_internal.raw_events (straight into its time
// partition where the database names one), the malformed ones into
// zonestats.dead_letters with their reason, and the partition's next offset
// into zonestats_internal.kafka_offsets — fenced, so a member that lost the
// partition cannot overwrite a newer offset.
package loader
