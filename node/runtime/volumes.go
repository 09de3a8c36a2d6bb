package runtime

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/volume"
)

// EnsureVolume creates the named local volume with the labels unless it
// exists (an existing volume keeps its labels and data).
func (r *Runtime) EnsureVolume(ctx context.Context, name string, labels map[string]string) error {
	if err := checkName("volume", name, volumeNamePattern); err != nil {
		return err
	}
	if err := checkLabels(labels); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	_, err := r.cli.VolumeInspect(ctx, name)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect volume %s: %w", name, err)
	}
	if _, err := r.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: "local", Labels: labels}); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	r.logger.Info("volume created", "volume", name)
	return nil
}

// RemoveVolume deletes a named volume and its data. A volume that does not
// exist is not an error; one mounted by a container is (ErrVolumeInUse).
func (r *Runtime) RemoveVolume(ctx context.Context, name string) error {
	if err := checkName("volume", name, volumeNamePattern); err != nil {
		return err
	}
	err := r.cli.VolumeRemove(ctx, name, false)
	switch {
	case err == nil || cerrdefs.IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("remove volume %s: %w (%v)", name, ErrVolumeInUse, err)
	default:
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
}

// VolumeExists reports whether the named volume exists.
func (r *Runtime) VolumeExists(ctx context.Context, name string) (bool, error) {
	if err := checkName("volume", name, volumeNamePattern); err != nil {
		return false, err
	}
	_, err := r.cli.VolumeInspect(ctx, name)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("inspect volume %s: %w", name, err)
	}
}
