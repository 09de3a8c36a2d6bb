package fakeapi

import "context"

// DropletBackend backs the fake's droplets with something real: local mode
// runs a `dropmesh agent` process per droplet. The fake calls it one call at
// a time, in the order the droplets' states changed, outside its lock; an
// error is logged and does not change the API's answers.
type DropletBackend interface {
	// Start runs the droplet: on create (once its status is active) and on
	// power_on (or reboot of a droplet that was off).
	Start(ctx context.Context, d BackedDroplet) error
	// Restart restarts a running droplet: reboot, power_cycle.
	Restart(ctx context.Context, id int) error
	// Stop stops it: delete, power_off, shutdown.
	Stop(ctx context.Context, id int) error
}

// BackedDroplet is what a backend needs to run a droplet.
type BackedDroplet struct {
	ID        int
	Name      string
	Region    string
	Status    string // new, active or off
	PublicIP  string
	PrivateIP string
	UserData  string
	Tags      []string
}
