package mesh

import "github.com/hashicorp/memberlist"

var _ memberlist.MergeDelegate = (*mergeDelegate)(nil)

// mergeDelegate is the Mesh memberlist's merge delegate. Its only job is to
// refuse the push/pull "join" of Mesh's own state reader (states.go), so the
// reader reads this node's state table without ever becoming a member. Every
// other join is accepted; per-member checks are the alive delegate's.
type mergeDelegate struct{ readerName string }

// NotifyMerge refuses a merge that carries only the state reader.
func (d *mergeDelegate) NotifyMerge(peers []*memberlist.Node) error {
	if len(peers) == 1 && peers[0].Name == d.readerName {
		return errStateRead
	}
	return nil
}
