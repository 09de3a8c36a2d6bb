// Package rollout is the leader duty that moves rolling deploys forward:
// on every state change it plans the next step of each deploy in progress
// (Plan, pure) and commits it, advancing a batch of instances to the new
// generation or finishing the deploy. The per-node side (starting the new
// containers, reporting their health) is package converge's.
package rollout
