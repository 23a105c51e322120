package store

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mcp-mediator/mediator/mediator"
)

func benchStore(b *testing.B) *Store {
	b.Helper()
	return openTest(b, testDB(b), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
}

// BenchmarkRecordBatched measures Record from many goroutines at once, so
// that the writer commits them in batches.
func BenchmarkRecordBatched(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Record(ctx, testRecord("b", int(n.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRecordSerial measures Record from one goroutine: one commit per
// record.
func BenchmarkRecordSerial(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if err := s.Record(ctx, testRecord("s", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRecordBatchedLargeChain appends from 64 goroutines to a chain
// that already holds 200,000 records, with record ids as the mediator makes
// them (mediator.NewID: they sort by time, so the unique index on id grows
// at its end) and with random ids (a random page of that index per record).
func BenchmarkRecordBatchedLargeChain(b *testing.B) {
	const prefill = 200_000
	for _, tc := range []struct {
		name string
		id   func() string
	}{
		{"ids=time-ordered", mediator.NewID},
		{"ids=random", func() string { return strings.ToLower(rand.Text()[:26]) }},
	} {
		// Filled once per id scheme: b.Run calls its function again for
		// every b.N it tries.
		s := benchStore(b)
		ctx := context.Background()
		var wg sync.WaitGroup
		for g := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < prefill; i += 64 {
					r := testRecord("p", i)
					r.ID = tc.id()
					if err := s.Record(ctx, r); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.Run(tc.name, func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(64)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := testRecord("b", int(n.Add(1)))
					r.ID = tc.id()
					if err := s.Record(ctx, r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
