package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every dropmesh metric name.
const Namespace = "dropmesh"

// Path is where the API serves the metrics (node/api.NewMeasured mounts
// Handler there).
const Path = "/metrics"

// Metrics is one agent's metrics: a private registry, the collector that
// reads the Source at scrape time, and the series the agent feeds.
type Metrics struct {
	nodeID  string
	reg     *prometheus.Registry
	wrapped prometheus.Registerer
	handler http.Handler

	commit    prometheus.Histogram
	apply     prometheus.Histogram
	probeRTT  prometheus.Histogram
	reconcile prometheus.Histogram
	health    *prometheus.CounterVec
	heal      *prometheus.CounterVec
	api       *prometheus.HistogramVec
	// undecodable counts log entries this replica could not decode.
	undecodable prometheus.Counter
}

// New returns the metrics of the agent nodeID with DefaultConfig. A nil
// src leaves the scrape-time figures out (only the observed ones remain).
func New(src Source, nodeID string) *Metrics {
	m, err := NewWithConfig(src, nodeID, DefaultConfig())
	if err != nil {
		// DefaultConfig is valid and the node label is sanitised: only a
		// programming error here (two metrics with one name) gets this far.
		panic(fmt.Sprintf("metrics: default config refused: %v", err))
	}
	return m
}

// NewWithConfig is New with explicit buckets and limits; it refuses an
// invalid Config with an error wrapping ErrInvalidConfig.
func NewWithConfig(src Source, nodeID string, cfg Config) (*Metrics, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"node": cleanLabel(nodeID, maxNodeIDLen)}, reg)
	m := &Metrics{nodeID: nodeID, reg: reg, wrapped: wrapped}

	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "raft", Name: "commit_duration_seconds",
		Help:    "Time the leader took to commit a command through raft (Store.Apply), fed by the agent.",
		Buckets: cfg.CommitBuckets,
	})
	m.apply = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "raft", Name: "apply_duration_seconds",
		Help:    "Time the state machine took to apply committed entries on this node, fed by the agent.",
		Buckets: cfg.ApplyBuckets,
	})
	m.probeRTT = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "gossip", Name: "probe_rtt_seconds",
		Help:    "Round trip of this node's direct gossip probes (memberlist pings), fed by the mesh.",
		Buckets: cfg.ProbeRTTBuckets,
	})
	m.reconcile = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "reconcile_duration_seconds",
		Help:    "Time one reconcile pass took to converge this node's containers to the state.",
		Buckets: cfg.ReconcileBuckets,
	})
	m.health = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "health_checks_total",
		Help: "Health-check results of this node's containers, by status.",
	}, []string{"status"})
	m.heal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "heal_actions_total",
		Help: "Healing actions this node took as leader, by kind.",
	}, []string{"kind"})
	m.undecodable = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "raft", Name: "undecodable_entries_total",
		Help: "Log entries this replica could not decode (a command or field newer than its release, or a damaged entry) and skipped.",
	})
	m.api = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "api", Name: "request_duration_seconds",
		Help:    "Agent API requests served by this node, by method, route template and status code.",
		Buckets: cfg.APIBuckets,
	}, []string{"method", "route", "code"})
	// Known label values start at zero, so rate() works from the first
	// scrape and dashboards show the whole set.
	for _, s := range healthStatuses {
		m.health.WithLabelValues(s)
	}
	for _, k := range healKinds {
		m.heal.WithLabelValues(k)
	}

	cs := []prometheus.Collector{m.commit, m.apply, m.probeRTT, m.reconcile, m.health, m.heal, m.api, m.undecodable}
	if src != nil {
		cs = append(cs, &sourceCollector{src: src, nodeID: nodeID})
	}
	if cfg.RuntimeMetrics {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := wrapped.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{logger},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: cfg.MaxScrapesInFlight,
		CoalesceGather:      true,
	})
	return m, nil
}

// Handler serves the registry in the Prometheus text format (or what the
// scraper negotiates). It does no authentication: mount it through Route.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registerer is the agent's registry, with the node label added: other
// packages may register their own collectors on it.
func (m *Metrics) Registerer() prometheus.Registerer { return m.wrapped }

// Gatherer reads the registry directly (tests, benchmarks, a push gateway).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// slogPrinter adapts the logger to promhttp's Println logger.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.l.Warn("metrics scrape", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
