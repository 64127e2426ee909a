package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"talentledger/domain"
	"talentledger/domain/keystore"
	"talentledger/eventstore/pebble"
	"talentledger/projections"
)

// processCPU is the CPU the process has used, user and system, in
// nanoseconds: on a shared machine it varies far less with the load than
// the time on the clock does.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchCipher returns a cipher over a fresh key store, or nil for plain.
func benchCipher(b *testing.B, sealed bool) *domain.Cipher {
	b.Helper()
	if !sealed {
		return nil
	}
	master := make([]byte, keystore.MasterKeySize)
	ks, err := keystore.Open(filepath.Join(b.TempDir(), "keys"), master)
	if err != nil {
		b.Fatal(err)
	}
	return domain.NewCipher(ks)
}

// BenchmarkRegisterTalent registers talents with every personal field
// from 16 goroutines on the embedded store, as a sole writer: sealed, each
// registration also takes a data key for the talent.
func BenchmarkRegisterTalent(b *testing.B) { benchRegister(b, 16) }

// BenchmarkRegisterTalentSerial is BenchmarkRegisterTalent from one
// goroutine: each registration waits for its own durable writes, so what
// it measures is a registration's latency.
func BenchmarkRegisterTalentSerial(b *testing.B) { benchRegister(b, 0) }

func benchRegister(b *testing.B, parallelism int) {
	for _, mode := range []string{"plain", "sealed"} {
		b.Run(mode, func(b *testing.B) {
			store, err := pebble.Open(filepath.Join(b.TempDir(), "data"), pebble.WithLogger(quietLogger()))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			svc := domain.NewService(store, domain.WithSoleWriter(), domain.WithCipher(benchCipher(b, mode == "sealed")))
			ctx := context.Background()
			var n atomic.Int64
			register := func() error {
				i := n.Add(1)
				_, err := svc.RegisterTalent(ctx, domain.RegisterTalent{Meta: domain.CommandMeta{Actor: domain.Actor{Principal: "clerk", Role: domain.RoleClerk}},
					Name: fmt.Sprintf("欧阳震华 %d", i), Tier: "B", Employer: "平湖精密机械", IDNumber: "330482199001011234",
					BankAccount: "6222020200112233445", BankName: "中国工商银行平湖支行", Phone: "13900001111"})
				return err
			}
			b.ResetTimer()
			cpu := processCPU()
			defer func() { b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op") }()
			if parallelism == 0 {
				for range b.N {
					if err := register(); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.SetParallelism(parallelism)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := register(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkReplayPersonal folds the demo data set's log into fresh read
// models, written plain or sealed; it reports the time per event.
func BenchmarkReplayPersonal(b *testing.B) {
	for _, mode := range []string{"plain", "sealed"} {
		b.Run(mode, func(b *testing.B) {
			store, err := pebble.Open(filepath.Join(b.TempDir(), "data"), pebble.WithLogger(quietLogger()))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			ctx := context.Background()
			svc := domain.NewService(store, domain.WithCipher(benchCipher(b, mode == "sealed")))
			if err := loadDemo(ctx, svc); err != nil {
				b.Fatal(err)
			}
			last, err := store.LastPosition(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu := processCPU()
			for range b.N {
				if _, err := projections.Replay(ctx, store, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(last.Commit), "events")
		})
	}
}
