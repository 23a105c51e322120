package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-mediator/mediator/mediator"
)

var (
	descApprovals = prometheus.NewDesc("mediator_approvals",
		"Approvals in the store by state: pending (waiting for a human), approved, denied, expired.", []string{"state"}, nil)
	descAuditRecords = prometheus.NewDesc("mediator_audit_records_total",
		"Audit chain records committed by this process.", nil, nil)
	descAuditCommits = prometheus.NewDesc("mediator_audit_commits_total",
		"Audit writer commits by this process; records_total / commits_total is the mean commit (group) size.", nil, nil)
	descUpstreamUp = prometheus.NewDesc("mediator_upstream_up",
		"1 when the upstream is connected, 0 when not; required is whether the mediator is ready without it.", []string{"upstream", "transport", "required"}, nil)
	descUpstreamRestarts = prometheus.NewDesc("mediator_upstream_restarts_total",
		"Connections to the upstream lost and restarted since this process started.", []string{"upstream"}, nil)
	descTrust = prometheus.NewDesc("mediator_agents_by_trust",
		"Agents this process knows, by behavioural trust level.", []string{"trust"}, nil)
	descScrapeErrors = prometheus.NewDesc("mediator_metrics_source_errors",
		"1 for each source that could not be read during this scrape.", []string{"source"}, nil)
)

// state reads Sources at scrape time.
type state struct{ src Sources }

func (s *state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApprovals, descAuditRecords, descAuditCommits, descUpstreamUp, descUpstreamRestarts, descTrust, descScrapeErrors} {
		ch <- d
	}
}

func (s *state) Collect(ch chan<- prometheus.Metric) {
	if f := s.src.Approvals; f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		counts, err := f(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.MustNewConstMetric(descScrapeErrors, prometheus.GaugeValue, 1, "approvals")
		} else {
			for _, st := range []mediator.ApprovalState{mediator.ApprovalPending, mediator.ApprovalApproved, mediator.ApprovalDenied, mediator.ApprovalExpired} {
				ch <- prometheus.MustNewConstMetric(descApprovals, prometheus.GaugeValue, float64(counts[st]), string(st))
			}
		}
	}
	if f := s.src.Audit; f != nil {
		records, commits := f()
		ch <- prometheus.MustNewConstMetric(descAuditRecords, prometheus.CounterValue, float64(records))
		ch <- prometheus.MustNewConstMetric(descAuditCommits, prometheus.CounterValue, float64(commits))
	}
	if f := s.src.Upstreams; f != nil {
		for _, u := range f() {
			up := 0.0
			if u.Connected {
				up = 1
			}
			req := "false"
			if u.Required {
				req = "true"
			}
			ch <- prometheus.MustNewConstMetric(descUpstreamUp, prometheus.GaugeValue, up, u.Name, u.Transport, req)
		}
	}
	if f := s.src.Restarts; f != nil {
		for name, n := range f() {
			ch <- prometheus.MustNewConstMetric(descUpstreamRestarts, prometheus.CounterValue, float64(n), name)
		}
	}
	if f := s.src.Trust; f != nil {
		counts := f()
		for _, l := range mediator.TrustLevels {
			ch <- prometheus.MustNewConstMetric(descTrust, prometheus.GaugeValue, float64(counts[l]), string(l))
		}
	}
}
