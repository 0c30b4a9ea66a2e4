package loader

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metrics of a Loader (Config.Registerer). The counters are the
// Loader's Stats, read at scrape time; the batch latency histogram and the
// dead letters by reason are recorded as batches commit. The rollup lag
// comes from the database (zonestats.rollup_lag()) at each scrape.
type metrics struct {
	batchSeconds prometheus.Histogram
	deadLetters  *prometheus.CounterVec
}

const namespace = "zonestats_loader"

var (
	descMessages   = prometheus.NewDesc(namespace+"_messages_total", "Messages committed (events and dead letters).", nil, nil)
	descBytes      = prometheus.NewDesc(namespace+"_message_bytes_total", "Bytes of the messages committed (message values).", nil, nil)
	descRows       = prometheus.NewDesc(namespace+"_rows_copied_total", "Events copied into zonestats_internal.raw_events.", nil, nil)
	descBatches    = prometheus.NewDesc(namespace+"_batches_total", "Batches committed (one transaction each).", nil, nil)
	descRebalances = prometheus.NewDesc(namespace+"_rebalances_total", "Consumer group generations this loader joined.", nil, nil)
	descDBErrors   = prometheus.NewDesc(namespace+"_db_errors_total", "Failed batch commits (retried).", nil, nil)
	descGaps       = prometheus.NewDesc(namespace+"_offsets_lost_total", "Offsets Kafka no longer had when the loader asked (retention); recorded in zonestats_internal.offset_gaps.", nil, nil)
	descLag        = prometheus.NewDesc(namespace+"_consumer_lag_messages", "Messages behind the partition's high watermark, per partition held.", []string{"partition"}, nil)
	descPartitions = prometheus.NewDesc(namespace+"_partitions_assigned", "Partitions this loader holds in its current generation.", nil, nil)
	descRollupLag  = prometheus.NewDesc("zonestats_rollup_lag_seconds", "Seconds of loaded events not rolled up yet: zonestats.rollup_lag().", nil, nil)
)

func newMetrics(reg prometheus.Registerer, l *Loader) (*metrics, error) {
	m := &metrics{
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "batch_duration_seconds",
			Help:    "Time to commit one batch (COPY of the events and dead letters, offset update, COMMIT), retries included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dead_letters_total",
			Help: "Messages committed to zonestats.dead_letters, by reason (its kind: details such as offsets are cut off).",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.batchSeconds, m.deadLetters, (*statsCollector)(l)} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// committed records a committed batch.
func (m *metrics) committed(b *batch, took time.Duration) {
	if m == nil {
		return
	}
	m.batchSeconds.Observe(took.Seconds())
	for _, d := range b.dead {
		m.deadLetters.WithLabelValues(reasonKind(d.reason)).Inc()
	}
}

// reasonKind is a dead-letter reason without its details, a label value
// of bounded cardinality: "missing field: zone_id" → "missing field",
// "invalid JSON at offset 17" → "invalid JSON".
func reasonKind(reason string) string {
	if i := strings.IndexByte(reason, ':'); i >= 0 {
		reason = reason[:i]
	}
	if i := strings.Index(reason, " at offset"); i >= 0 {
		reason = reason[:i]
	}
	if i := strings.IndexAny(reason, "0123456789"); i >= 0 {
		reason = reason[:i]
	}
	if reason = strings.TrimSpace(reason); len(reason) > 40 {
		reason = reason[:40]
	}
	if reason == "" {
		return "other"
	}
	return reason
}

// statsCollector reads a Loader's Stats, lag and rollup lag at scrape time.
type statsCollector Loader

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descBytes, descRows, descBatches, descRebalances,
		descDBErrors, descGaps, descLag, descPartitions, descRollupLag} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	l := (*Loader)(c)
	s := &l.Stats
	for _, v := range []struct {
		d *prometheus.Desc
		n int64
	}{
		{descMessages, s.Messages.Load()}, {descBytes, s.Bytes.Load()}, {descRows, s.Events.Load()},
		{descBatches, s.Batches.Load()}, {descRebalances, s.Rebalances.Load()},
		{descDBErrors, s.DBErrors.Load()}, {descGaps, s.Gaps.Load()},
	} {
		ch <- prometheus.MustNewConstMetric(v.d, prometheus.CounterValue, float64(v.n))
	}
	lag := l.Lag()
	for p, n := range lag {
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(n), strconv.Itoa(p))
	}
	ch <- prometheus.MustNewConstMetric(descPartitions, prometheus.GaugeValue, float64(l.assigned.Load()))
	// Left out of the scrape when the database does not answer (an
	// invalid metric would fail the whole scrape).
	if secs, err := l.RollupLag(context.Background()); err == nil {
		ch <- prometheus.MustNewConstMetric(descRollupLag, prometheus.GaugeValue, secs)
	} else {
		l.log.Debug("rollup lag", "err", err)
	}
}

// RollupLag returns zonestats.rollup_lag(): seconds of loaded events not
// rolled up yet (0 when the rollups are caught up).
func (l *Loader) RollupLag(ctx context.Context) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var secs float64
	err := l.pool.QueryRow(ctx, "SELECT zonestats.rollup_lag()").Scan(&secs)
	return secs, err
}

// Healthy reports whether the loader can do its job: it holds a consumer
// group generation (with or without partitions) and reaches the database.
// It returns why not otherwise.
func (l *Loader) Healthy(ctx context.Context) error {
	var errs []error
	if l.generation.Load() == 0 {
		errs = append(errs, errors.New("not in a consumer group generation (joining or rebalancing)"))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := l.pool.Ping(ctx); err != nil {
		errs = append(errs, errors.New("database: "+err.Error()))
	}
	return errors.Join(errs...)
}
