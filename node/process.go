package node

import (
	"context"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// processOptions carries the spec's process fields (from Compose:
// entrypoint, user, working_dir, cap_add, further ports, named volumes,
// restart)
// into the container. base is the instance's container base name, which
// names its node-local volumes.
func processOptions(cs *runtime.ContainerSpec, spec raftfsm.ServiceSpec, base string) {
	cs.Entrypoint, cs.User, cs.WorkingDir = spec.Entrypoint, spec.User, spec.WorkingDir
	cs.ExposedPorts = spec.Ports
	cs.CapAdd = spec.CapAdd
	if spec.Kind == raftfsm.KindStateful {
		for _, v := range spec.Volumes {
			cs.Mounts = append(cs.Mounts, runtime.Mount{Volume: base + "_v_" + v.Name, Target: v.Path})
		}
	}
	switch spec.Restart {
	case raftfsm.RestartAlways, raftfsm.RestartUnlessStopped:
		cs.RestartPolicy = runtime.RestartUnlessStopped
	case raftfsm.RestartOnFailure:
		cs.RestartPolicy = runtime.RestartOnFailure
	}
}

// execCheck runs a service's health command inside its container.
func (a *Agent) execCheck(id string, cmd []string) func(ctx context.Context) (int, string, error) {
	return func(ctx context.Context) (int, string, error) {
		res, err := a.rt.Exec(ctx, id, cmd)
		return res.ExitCode, res.Output, err
	}
}
