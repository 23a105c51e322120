package store

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
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
