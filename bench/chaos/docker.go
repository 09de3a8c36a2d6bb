package chaos

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"
)

// Labels on everything the suite creates, so that a run cleans up after
// itself and the next run sweeps what a killed run left.
const (
	// LabelRun carries the run id.
	LabelRun = "dropmesh.chaos"
	// LabelRole is "agent", "disk" or "network".
	LabelRole = "dropmesh.chaos.role"
)

// dockerHost wraps the Docker client with the few operations the suite needs.
type dockerHost struct {
	cli *client.Client
}

func newDockerHost(ctx context.Context) (*dockerHost, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker engine: %w", err)
	}
	return &dockerHost{cli: cli}, nil
}

// socketPath is the engine's unix socket, which agents get mounted.
func (d *dockerHost) socketPath() (string, error) {
	host := d.cli.DaemonHost()
	if p, ok := strings.CutPrefix(host, "unix://"); ok {
		return p, nil
	}
	return "", fmt.Errorf("docker engine at %s: the agents need a unix socket to mount", host)
}

// createNetwork makes a bridge network on a free /24 of 10.200.0.0/13 with
// its gateway at .1 (the host's address on it).
func (d *dockerHost) createNetwork(ctx context.Context, name, run string) (id string, subnet netip.Prefix, err error) {
	for attempt := 0; attempt < 20; attempt++ {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", subnet, err
		}
		n := binary.BigEndian.Uint16(b[:]) % (8 * 256)
		subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + n/256), byte(n % 256), 0}), 24)
		gw := nthIP(subnet, 1)
		resp, err := d.cli.NetworkCreate(ctx, name, network.CreateOptions{
			Driver: "bridge",
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet.String(), Gateway: gw}}},
			Labels: map[string]string{LabelRun: run, LabelRole: "network"},
		})
		if err == nil {
			return resp.ID, subnet, nil
		}
		if !strings.Contains(err.Error(), "overlap") {
			return "", subnet, fmt.Errorf("create network %s: %w", name, err)
		}
	}
	return "", subnet, fmt.Errorf("create network %s: no free /24 in 10.200.0.0/13 after 20 tries", name)
}

// nthIP is the address n of a subnet (1 is the gateway).
func nthIP(p netip.Prefix, n int) string {
	a := p.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a).String()
}

// createTmpfsVolume makes a local volume backed by a tmpfs of size.
func (d *dockerHost) createTmpfsVolume(ctx context.Context, name, size, run string) error {
	_, err := d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: "local",
		DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=" + size},
		Labels:     map[string]string{LabelRun: run, LabelRole: "disk"}})
	if err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

// exec runs cmd in a running container and returns its output; a non-zero
// exit is an error carrying the output.
func (d *dockerHost) exec(ctx context.Context, ctr string, cmd ...string) (string, error) {
	created, err := d.cli.ContainerExecCreate(ctx, ctr, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", fmt.Errorf("exec %v in %s: %w", cmd, ctr, err)
	}
	att, err := d.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", fmt.Errorf("exec %v in %s: attach: %w", cmd, ctr, err)
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil && !errors.Is(err, io.EOF) {
		return out.String(), fmt.Errorf("exec %v in %s: read: %w", cmd, ctr, err)
	}
	res, err := d.cli.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return out.String(), fmt.Errorf("exec %v in %s: %w", cmd, ctr, err)
	}
	if res.ExitCode != 0 {
		return out.String(), fmt.Errorf("exec %v in %s: exit %d: %s", cmd, ctr, res.ExitCode, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// logsTail returns the last lines of a container's output.
func (d *dockerHost) logsTail(ctx context.Context, ctr string, lines int) string {
	rc, err := d.cli.ContainerLogs(ctx, ctr, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(lines)})
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	defer rc.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, rc)
	return out.String()
}

// logsAll copies a container's whole output to w.
func (d *dockerHost) logsAll(ctx context.Context, ctr string, w io.Writer) error {
	rc, err := d.cli.ContainerLogs(ctx, ctr, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(w, w, rc)
	return err
}

// removeByLabel force-removes every container carrying label=value.
func (d *dockerHost) removeByLabel(ctx context.Context, label, value string) error {
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label+"="+value))})
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range list {
		if err := d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweep removes what runs older than maxAge left behind (a killed test
// cannot clean up): containers, then volumes and networks.
func (d *dockerHost) sweep(ctx context.Context, maxAge time.Duration) error {
	var errs []error
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelRun))})
	if err != nil {
		return err
	}
	old := map[string]bool{}
	for _, c := range list {
		if time.Since(time.Unix(c.Created, 0)) > maxAge {
			old[c.Labels[LabelRun]] = true
		}
	}
	for run := range old {
		errs = append(errs, d.removeByLabel(ctx, LabelRun, run))
	}
	nets, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelRun))})
	if err == nil {
		for _, n := range nets {
			if time.Since(n.Created) > maxAge {
				errs = append(errs, d.cli.NetworkRemove(ctx, n.ID))
			}
		}
	}
	vols, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelRun))})
	if err == nil {
		for _, v := range vols.Volumes {
			if created, perr := time.Parse(time.RFC3339, v.CreatedAt); perr == nil && time.Since(created) > maxAge {
				errs = append(errs, d.cli.VolumeRemove(ctx, v.Name, true))
			}
		}
	}
	return errors.Join(errs...)
}

// copyFile reads one file out of a container (the agent image has no shell
// to cat it with).
func (d *dockerHost) copyFile(ctx context.Context, ctr, path string) ([]byte, error) {
	rc, _, err := d.cli.CopyFromContainer(ctx, ctr, path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", path, ctr, err)
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 1<<20))
		}
	}
}
