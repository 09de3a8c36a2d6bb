package compose

import (
	"context"
	"testing"
)

// BenchmarkLoad measures reading and mapping a four-service Compose file
// (what `deploy -f compose.yaml` spends before it talks to the cluster).
func BenchmarkLoad(b *testing.B) {
	b.Setenv("DB_PASSWORD", "bench")
	b.ReportAllocs()
	for b.Loop() {
		r, err := Load(context.Background(), []string{"testdata/shop/compose.yaml"}, "", "")
		if err != nil || len(r.Specs) != 4 {
			b.Fatalf("%d specs, %v", len(r.Specs), err)
		}
	}
}
