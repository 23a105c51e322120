package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/store"
)

// ShipConfig is audit.ship: where committed records are sent as well.
type ShipConfig struct {
	Syslog SyslogConfig   `yaml:"syslog"`
	OTLP   OTLPLogsConfig `yaml:"otlp"`
}

// SyslogConfig sends every record as an RFC 5424 message to a syslog
// collector (a SIEM's).
type SyslogConfig struct {
	// Address is tcp://host:port (RFC 6587 octet counting) or
	// udp://host:port; empty: off.
	Address string `yaml:"address"`
	// Facility is the syslog facility (default 13, log audit).
	Facility *int `yaml:"facility"`
	// AppName is the APP-NAME field (default mcp-mediator).
	AppName string `yaml:"app_name"`
}

func (c *SyslogConfig) validate() []error {
	if c.Address == "" {
		return nil
	}
	u, err := url.Parse(c.Address)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "udp") || u.Host == "" || u.Port() == "" {
		return []error{fmt.Errorf("audit.ship.syslog.address %q: use tcp://host:port or udp://host:port", c.Address)}
	}
	if c.Facility != nil && (*c.Facility < 0 || *c.Facility > 23) {
		return []error{fmt.Errorf("audit.ship.syslog.facility %d: use 0..23 (13 is log audit)", *c.Facility)}
	}
	if len(c.AppName) > 48 || strings.ContainsAny(c.AppName, " \t\n") {
		return []error{fmt.Errorf("audit.ship.syslog.app_name %q: at most 48 printable characters, no spaces", c.AppName)}
	}
	return nil
}

// resendWindow is how many records are sent again after a syslog
// collector's outage: those a dying TCP connection may have swallowed.
const resendWindow = 64

// sink is where a shipper sends records.
type sink interface {
	// kind names the sink in records and settings: syslog, otlp.
	kind() string
	// where names the collector in messages.
	where() string
	// resend is how many records before the last delivered one to send
	// again after an outage.
	resend() int64
	// alive reports, before a batch, that what was sent before still got
	// through (nil) or why not.
	alive() error
	// send delivers recs in order; it returns how many were delivered.
	send(ctx context.Context, recs []mediator.ChainRecord) (int, error)
	close()
}

// shipper reads committed records from the database and sends them to a
// sink: it never sits in a call's way, and a collector that is down loses
// nothing (shipping resumes from the stored seq). An outage and its end
// are themselves audit records.
type shipper struct {
	st    *store.Store
	sink  sink
	log   *slog.Logger
	down  bool
	after int64
}

// shipSeqKey is the setting holding the seq of the last record shipped
// to a sink, so that a restart resumes there.
func shipSeqKey(kind string) string { return "audit.ship." + kind + ".seq" }

func newShipper(ctx context.Context, sk sink, st *store.Store, log *slog.Logger) (*shipper, error) {
	sh := &shipper{st: st, sink: sk, log: log}
	key := shipSeqKey(sk.kind())
	v, ok, err := st.Setting(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("audit.ship.%s: %w", sk.kind(), err)
	}
	if ok {
		if sh.after, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("audit.ship.%s: stored seq %q: %w", sk.kind(), v, err)
		}
	} else if sh.after, _, err = st.Head(ctx); err != nil { // from now on
		return nil, fmt.Errorf("audit.ship.%s: %w", sk.kind(), err)
	}
	return sh, nil
}

// run ships until ctx ends.
func (sh *shipper) run(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	defer sh.sink.close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sh.ship(ctx)
		}
	}
}

// ship sends what was committed since the last shipped record.
func (sh *shipper) ship(ctx context.Context) {
	for ctx.Err() == nil {
		recs, err := sh.st.RecordsAfter(ctx, sh.after, 500)
		if err != nil || len(recs) == 0 {
			return
		}
		if err := sh.sink.alive(); err != nil {
			// Gone since the last batch: what was sent last may be lost
			// too.
			sh.outage(ctx, err)
			continue
		}
		n, err := sh.sink.send(ctx, recs)
		if n > 0 {
			sh.after = recs[n-1].Seq
		}
		if err != nil {
			sh.outage(ctx, err)
			return
		}
		sh.recovered(ctx)
		if err := sh.st.SetSetting(ctx, shipSeqKey(sh.sink.kind()), strconv.FormatInt(sh.after, 10)); err != nil {
			sh.log.Warn("audit shipping: storing the shipped seq failed; records may be sent twice after a restart", "sink", sh.sink.kind(), "err", err)
		}
	}
}

// outage records, once per outage, that records are not reaching the
// collector (they are sent when it is back).
func (sh *shipper) outage(ctx context.Context, err error) {
	if sh.down {
		return
	}
	sh.down = true
	// The collector may not have received the last records before it went
	// away: send them again when it is back (at least once; seq and id let
	// it drop duplicates).
	sh.after = max(0, sh.after-sh.sink.resend())
	sh.log.Error("audit shipping: the collector is unreachable; records wait in the database and are sent when it is back",
		"sink", sh.sink.kind(), "collector", sh.sink.where(), "after_seq", sh.after, "err", err)
	sh.record(ctx, mediator.OutcomeFailed, fmt.Sprintf("audit shipping to %s %s failed after seq %d (%v); "+
		"records are kept and sent when the collector is back", sh.sink.kind(), sh.sink.where(), sh.after, err))
}

func (sh *shipper) recovered(ctx context.Context) {
	if !sh.down {
		return
	}
	sh.down = false
	sh.log.Info("audit shipping: the collector is back", "sink", sh.sink.kind(), "collector", sh.sink.where(), "seq", sh.after)
	sh.record(ctx, mediator.OutcomeOK, fmt.Sprintf("audit shipping to %s %s resumed; shipped up to seq %d", sh.sink.kind(), sh.sink.where(), sh.after))
}

func (sh *shipper) record(ctx context.Context, o mediator.Outcome, msg string) {
	rec := mediator.ChainRecord{Time: time.Now(), Method: "mediator/ship", Kind: mediator.KindProtocol, Name: sh.sink.kind(),
		Outcome: o, Decision: mediator.Decision{Effect: mediator.EffectAllow, Rule: "audit.ship", Reason: msg}}
	if o != mediator.OutcomeOK {
		rec.Error = msg
	}
	if err := sh.st.Record(ctx, rec); err != nil && !errors.Is(err, context.Canceled) {
		sh.log.Error("audit shipping: recording the shipping state failed", "err", err)
	}
}

// syslogSink sends each record as an RFC 5424 message.
type syslogSink struct {
	network, addr string
	facility      int
	app, host     string
	conn          net.Conn
}

func newSyslogSink(cfg SyslogConfig) *syslogSink {
	u, _ := url.Parse(cfg.Address) // validated
	sk := &syslogSink{network: u.Scheme, addr: u.Host, facility: 13, app: "mcp-mediator"}
	if cfg.Facility != nil {
		sk.facility = *cfg.Facility
	}
	if cfg.AppName != "" {
		sk.app = cfg.AppName
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		sk.host = h
	} else {
		sk.host = "-"
	}
	return sk
}

func (sk *syslogSink) kind() string  { return "syslog" }
func (sk *syslogSink) where() string { return sk.network + "://" + sk.addr }
func (sk *syslogSink) resend() int64 { return resendWindow }

func (sk *syslogSink) alive() error {
	if sk.conn != nil && sk.network == "tcp" && !connAlive(sk.conn) {
		_ = sk.conn.Close()
		sk.conn = nil
		return errors.New("the collector closed the connection")
	}
	return nil
}

func (sk *syslogSink) send(_ context.Context, recs []mediator.ChainRecord) (int, error) {
	for i, r := range recs {
		if err := sk.sendOne(r); err != nil {
			return i, err
		}
	}
	return len(recs), nil
}

func (sk *syslogSink) sendOne(r mediator.ChainRecord) error {
	if sk.conn == nil {
		c, err := net.DialTimeout(sk.network, sk.addr, 5*time.Second)
		if err != nil {
			return err
		}
		sk.conn = c
	}
	msg := syslogMessage(r, sk.facility, sk.host, sk.app)
	if sk.network == "tcp" {
		msg = strconv.Itoa(len(msg)) + " " + msg // RFC 6587 octet counting
	}
	_ = sk.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := sk.conn.Write([]byte(msg)); err != nil {
		_ = sk.conn.Close()
		sk.conn = nil
		return err
	}
	return nil
}

func (sk *syslogSink) close() {
	if sk.conn != nil {
		_ = sk.conn.Close()
	}
}

// connAlive reports whether a TCP connection to a collector (which never
// writes back) is still open: a read that does not time out means the
// peer closed it or reset it. A write to such a connection would succeed
// locally and be lost.
func connAlive(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	_ = c.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// syslogMessage is r as one RFC 5424 message: structured data naming the
// record, the record itself (JSON) as the message.
func syslogMessage(r mediator.ChainRecord, facility int, host, app string) string {
	sev := 6 // informational
	switch r.Outcome {
	case mediator.OutcomeDenied, mediator.OutcomeUnknown:
		sev = 4 // warning
	case mediator.OutcomeFailed:
		sev = 3 // error
	}
	body, _ := json.Marshal(r)
	msgID := string(r.Outcome)
	if msgID == "" {
		msgID = "-"
	}
	sd := fmt.Sprintf(`[mcpm@32473 seq="%d" id="%s" agent="%s" method="%s" name="%s" effect="%s" rule="%s" hash="%s"]`,
		r.Seq, sdEscape(r.ID), sdEscape(r.AgentID), sdEscape(r.Method), sdEscape(r.Name), sdEscape(string(r.Decision.Effect)),
		sdEscape(r.Decision.Rule), sdEscape(r.Hash))
	return fmt.Sprintf("<%d>1 %s %s %s %d %s %s %s\n", facility*8+sev, r.Time.UTC().Format("2006-01-02T15:04:05.000000Z"),
		header(host, 255), header(app, 48), os.Getpid(), header(msgID, 32), sd, body)
}

// sdEscape keeps a structured-data parameter value on one line, capped,
// then escapes it (RFC 5424 6.3.3): cut after escaping, a value could end
// in a lone backslash that escapes the closing quote.
func sdEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(oneLine(s, 256))
}

// header is a header field: printable ASCII without spaces, capped, "-"
// when empty.
func header(s string, n int) string {
	out := strings.Map(func(r rune) rune {
		if r <= 32 || r >= 127 {
			return '_'
		}
		return r
	}, s)
	if out == "" {
		return "-"
	}
	if len(out) > n {
		out = out[:n]
	}
	return out
}
