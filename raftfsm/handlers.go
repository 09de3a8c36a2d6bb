package raftfsm

// handler decodes and applies one command type. Every apply function checks
// the whole command before it changes anything, so a refused command leaves
// the state exactly as it was.
type handler struct {
	new   func() Command
	apply func(s *State, c Command) (any, error)
}

// entry adapts a typed apply function to the table.
func entry[T any, P interface {
	*T
	Command
}](apply func(*State, P) (any, error)) handler {
	return handler{
		new:   func() Command { return P(new(T)) },
		apply: func(s *State, c Command) (any, error) { return apply(s, c.(P)) },
	}
}

// handlerFor returns the handler of a command type. The table is built per
// call from constant parts; it is small and this keeps the package free of
// mutable globals.
func handlerFor(t CommandType) (handler, bool) {
	switch t {
	case CmdInitCluster:
		return entry(applyInitCluster), true
	case CmdUpdateSettings:
		return entry(applyUpdateSettings), true
	case CmdPutUser:
		return entry(applyPutUser), true
	case CmdDeleteUser:
		return entry(applyDeleteUser), true
	case CmdUpsertNode:
		return entry(applyUpsertNode), true
	case CmdSetNodeStatus:
		return entry(applySetNodeStatus), true
	case CmdRecordPings:
		return entry(applyRecordPings), true
	case CmdRemoveNode:
		return entry(applyRemoveNode), true
	case CmdCreateWorkspace:
		return entry(applyCreateWorkspace), true
	case CmdDeleteWorkspace:
		return entry(applyDeleteWorkspace), true
	case CmdCreateProject:
		return entry(applyCreateProject), true
	case CmdCreateEnvironment:
		return entry(applyCreateEnvironment), true
	case CmdDeployService:
		return entry(applyDeployService), true
	case CmdUndeployService:
		return entry(applyUndeployService), true
	case CmdAdvanceRollout:
		return entry(applyAdvanceRollout), true
	case CmdReportInstances:
		return entry(applyReportInstances), true
	case CmdFinishDeploy:
		return entry(applyFinishDeploy), true
	case CmdReportHealth:
		return entry(applyReportHealth), true
	case CmdRestartInstance:
		return entry(applyRestartInstance), true
	case CmdRecordCronRun:
		return entry(applyRecordCronRun), true
	case CmdMoveInstance:
		return entry(applyMoveInstance), true
	case CmdPurgeHistory:
		return entry(applyPurgeHistory), true
	case CmdRecordIntent:
		return entry(applyRecordIntent), true
	case CmdResolveIntent:
		return entry(applyResolveIntent), true
	case CmdAppendEvent:
		return entry(applyAppendEvent), true
	case CmdPutWebhook:
		return entry(applyPutWebhook), true
	case CmdDeleteWebhook:
		return entry(applyDeleteWebhook), true
	case CmdAdvanceNotified:
		return entry(applyAdvanceNotified), true
	case CmdPutRegistry:
		return entry(applyPutRegistry), true
	case CmdDeleteRegistry:
		return entry(applyDeleteRegistry), true
	case CmdPutBuildContext:
		return entry(applyPutBuildContext), true
	case CmdImportState:
		return entry(applyImportState), true
	case CmdPutSnapshot:
		return entry(applyPutSnapshot), true
	case CmdSetStranded:
		return entry(applySetStranded), true
	case CmdPutOriginCert:
		return entry(applyPutOriginCert), true
	case CmdDeleteOriginCert:
		return entry(applyDeleteOriginCert), true
	case CmdSetGossipKeys:
		return entry(applySetGossipKeys), true
	case CmdSetClusterCA:
		return entry(applySetClusterCA), true
	case CmdRecordNodeCert:
		return entry(applyRecordNodeCert), true
	case CmdRevokeCerts:
		return entry(applyRevokeCerts), true
	case CmdCreateJoinToken:
		return entry(applyCreateJoinToken), true
	case CmdUseJoinToken:
		return entry(applyUseJoinToken), true
	case CmdDeleteJoinToken:
		return entry(applyDeleteJoinToken), true
	case CmdDeadlined:
		return entry(applyDeadlined), true
	case CmdCreateAPIToken:
		return entry(applyCreateAPIToken), true
	case CmdRevokeAPIToken:
		return entry(applyRevokeAPIToken), true
	case CmdRecordTokenUse:
		return entry(applyRecordTokenUse), true
	case CmdPutSealedWebhook:
		return entry(applyPutSealedWebhook), true
	case CmdSetEgressAllow:
		return entry(applySetEgressAllow), true
	case CmdPutImage:
		return entry(applyPutImage), true
	case CmdSetACMEConfig:
		return entry(applySetACMEConfig), true
	case CmdSetACMEAccount:
		return entry(applySetACMEAccount), true
	case CmdRecordACMEOrder:
		return entry(applyRecordACMEOrder), true
	case CmdPlaceACMEOrder:
		return entry(applyPlaceACMEOrder), true
	case CmdResolveACMEOrder:
		return entry(applyResolveACMEOrder), true
	case CmdDeleteIssuedCert:
		return entry(applyDeleteIssuedCert), true
	}
	return handler{}, false
}
