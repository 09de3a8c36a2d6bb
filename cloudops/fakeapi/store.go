package fakeapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/digitalocean/godo"
)

// storeVersion is the version of the persisted state file.
const storeVersion = 1

// store is everything the fake remembers, in the shape it is persisted.
type store struct {
	Version   int                       `json:"version"`
	Seq       counters                  `json:"seq"`
	Droplets  map[int]*droplet          `json:"droplets"`
	Actions   map[int]*action           `json:"actions"`
	Images    map[int]*image            `json:"images"`
	Firewalls map[string]*godo.Firewall `json:"firewalls"`
	VPCs      map[string]*godo.VPC      `json:"vpcs"`
	Keys      map[int]*godo.Key         `json:"keys"`
	Zones     map[string]*CFZone        `json:"zones"`
	Records   map[string]*CFRecord      `json:"records"`
}

// counters hand out ids; they only grow.
type counters struct {
	Droplet int `json:"droplet"`
	Action  int `json:"action"`
	Image   int `json:"image"`
	Key     int `json:"key"`
	UUID    int `json:"uuid"`
	CF      int `json:"cf"`
	Range   int `json:"range"`
}

// droplet is a droplet in DigitalOcean's shape plus what the API does not
// show back.
type droplet struct {
	D        godo.Droplet `json:"droplet"`
	Seq      int          `json:"seq"`
	UserData string       `json:"user_data"`
}

// action is an action in DigitalOcean's shape plus what completing it needs.
type action struct {
	A            godo.Action `json:"action"`
	DropletID    int         `json:"droplet_id,omitempty"`
	ImageID      int         `json:"image_id,omitempty"`
	SnapshotName string      `json:"snapshot_name,omitempty"`
	Region       string      `json:"region,omitempty"`
}

// image is a droplet snapshot.
type image struct {
	I         godo.Image `json:"image"`
	DropletID int        `json:"droplet_id"`
}

func newStore() *store {
	return &store{
		Version:   storeVersion,
		Droplets:  map[int]*droplet{},
		Actions:   map[int]*action{},
		Images:    map[int]*image{},
		Firewalls: map[string]*godo.Firewall{},
		VPCs:      map[string]*godo.VPC{},
		Keys:      map[int]*godo.Key{},
		Zones:     map[string]*CFZone{},
		Records:   map[string]*CFRecord{},
	}
}

// loadStore reads path; a missing file is an empty store.
func loadStore(path string) (*store, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newStore(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read fake cloud state %s: %w", path, err)
	}
	st := newStore()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("decode fake cloud state %s: %w", path, err)
	}
	if st.Version != storeVersion {
		return nil, fmt.Errorf("fake cloud state %s has version %d, this build reads %d", path, st.Version, storeVersion)
	}
	// A file written by hand may lack some maps.
	empty := newStore()
	if st.Droplets == nil {
		st.Droplets = empty.Droplets
	}
	if st.Actions == nil {
		st.Actions = empty.Actions
	}
	if st.Images == nil {
		st.Images = empty.Images
	}
	if st.Firewalls == nil {
		st.Firewalls = empty.Firewalls
	}
	if st.VPCs == nil {
		st.VPCs = empty.VPCs
	}
	if st.Keys == nil {
		st.Keys = empty.Keys
	}
	if st.Zones == nil {
		st.Zones = empty.Zones
	}
	if st.Records == nil {
		st.Records = empty.Records
	}
	return st, nil
}

// save writes the store to path atomically: a temporary file in the same
// directory, synced, then renamed over the old one. The file holds droplets'
// user data (cluster secrets), so it is private to the user.
func (st *store) save(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode fake cloud state: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("save fake cloud state: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Chmod(0o600)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save fake cloud state %s: %w", path, werr)
	}
	return nil
}
