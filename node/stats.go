package node

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
)

// Stats reports this node's load, memory and CPU use (from /proc; zeros
// where the platform has none) and how many dropmesh containers it runs.
func (a *Agent) Stats(ctx context.Context) (control.NodeStats, error) {
	st := control.NodeStats{Node: a.cfg.NodeID}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			st.Load1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if total, avail, err := meminfo(); err == nil {
		st.MemTotalBytes, st.MemUsedBytes = total, total-avail
	}
	if busy1, total1, err := cpuTimes(); err == nil {
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if busy2, total2, err := cpuTimes(); err == nil && total2 > total1 {
			st.CPUPercent = 100 * float64(busy2-busy1) / float64(total2-total1)
		}
	}
	st.ImageBytes = a.imageDiskUsage(ctx)
	if a.rt != nil {
		if list, err := a.rt.List(ctx, a.ownLabels(nil)); err == nil {
			for _, c := range list {
				if c.Running {
					st.Containers++
				}
			}
		}
	}
	return st, nil
}

func meminfo() (total, avail uint64, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseUint(fields[1], 10, 64)
		switch fields[0] {
		case "MemTotal:":
			total = v << 10
		case "MemAvailable:":
			avail = v << 10
		}
	}
	if total == 0 {
		return 0, 0, fmt.Errorf("meminfo: no MemTotal")
	}
	return total, avail, sc.Err()
}

func cpuTimes() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line")
	}
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}
