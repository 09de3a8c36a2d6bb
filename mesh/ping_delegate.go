package mesh

import (
	"time"

	"github.com/hashicorp/memberlist"
)

var _ memberlist.PingDelegate = (*pingDelegate)(nil)

// pingDelegate reports the round trip of every direct probe that was
// answered to Config.OnProbeRTT. Failed probes and indirect probes are not
// reported: memberlist only times a direct ping's ack. It sends no payload
// with acks and ignores the peer's.
type pingDelegate struct {
	onRTT func(peer string, rtt time.Duration)
}

// AckPayload has nothing to add to acks.
func (p *pingDelegate) AckPayload() []byte { return nil }

// NotifyPingComplete runs on memberlist's probe goroutine after a direct
// ping was acked.
func (p *pingDelegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, _ []byte) {
	if other == nil || rtt < 0 {
		return
	}
	p.onRTT(other.Name, rtt)
}
