package fakeapi

import (
	"slices"
	"strconv"

	"github.com/digitalocean/godo"
)

// The fake keeps its DigitalOcean resources as godo structs (that is also
// how they are persisted), but godo tags nearly every field omitempty: a
// false "locked" or an empty "backup_ids" would vanish from the answer,
// where DigitalOcean always sends them. The types below are the answers'
// wire shapes, every field DigitalOcean's spec requires always present.

// doRegion is a region as DigitalOcean shows it inside other objects and
// at /v2/regions.
type doRegion struct {
	Slug      string   `json:"slug"`
	Name      string   `json:"name"`
	Sizes     []string `json:"sizes"`
	Available bool     `json:"available"`
	Features  []string `json:"features"`
}

func regionOf(slug string) doRegion {
	name := regionNames[slug]
	if name == "" {
		name = slug
	}
	return doRegion{Slug: slug, Name: name, Sizes: regionSizes(), Available: true, Features: slices.Clone(regionFeatures)}
}

// doSize is a droplet size.
type doSize struct {
	Slug         string   `json:"slug"`
	Memory       int      `json:"memory"`
	Vcpus        int      `json:"vcpus"`
	Disk         int      `json:"disk"`
	Transfer     float64  `json:"transfer"`
	PriceMonthly float64  `json:"price_monthly"`
	PriceHourly  float64  `json:"price_hourly"`
	Regions      []string `json:"regions"`
	Available    bool     `json:"available"`
	Description  string   `json:"description"`
}

func (s *Server) sizeOf(slug string) doSize {
	si, ok := sizeBySlug(slug)
	if !ok { // a droplet loaded from an older state file
		si = sizeInfo{Slug: slug, Memory: 2048, Vcpus: 1, Disk: 50, Transfer: 2, Description: "Basic"}
	}
	return doSize{Slug: si.Slug, Memory: si.Memory, Vcpus: si.Vcpus, Disk: si.Disk, Transfer: si.Transfer,
		PriceMonthly: si.PriceMonthly, PriceHourly: si.PriceHourly, Regions: slices.Clone(s.opts.Regions), Available: true, Description: si.Description}
}

// doImage is an image (a public distribution or a snapshot).
type doImage struct {
	ID            int      `json:"id"`
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Distribution  string   `json:"distribution"`
	Slug          *string  `json:"slug"`
	Public        bool     `json:"public"`
	Regions       []string `json:"regions"`
	CreatedAt     string   `json:"created_at"`
	MinDiskSize   int      `json:"min_disk_size"`
	SizeGigabytes float64  `json:"size_gigabytes"`
	Description   string   `json:"description"`
	Tags          []string `json:"tags"`
	Status        string   `json:"status"`
	ErrorMessage  string   `json:"error_message"`
}

func imageOf(im godo.Image) doImage {
	out := doImage{ID: im.ID, Name: im.Name, Type: im.Type, Distribution: canonicalDistribution(im.Distribution), Public: im.Public,
		Regions: nonNil(im.Regions), CreatedAt: im.Created, MinDiskSize: im.MinDiskSize, SizeGigabytes: im.SizeGigaBytes,
		Description: im.Description, Tags: nonNil(im.Tags), Status: im.Status}
	if im.Slug != "" {
		slug := im.Slug
		out.Slug = &slug
	}
	if out.Status == "" {
		out.Status = "available"
	}
	return out
}

func distributionImage(d distribution, regions []string) godo.Image {
	return godo.Image{ID: d.ID, Name: d.Name, Type: "base", Distribution: d.Distribution, Slug: d.Slug, Public: true,
		Regions: slices.Clone(regions), MinDiskSize: d.MinDisk, SizeGigaBytes: d.SizeGB, Created: d.Created, Status: "available", Tags: []string{}}
}

// doNetworkV4 is one IPv4 address of a droplet.
type doNetworkV4 struct {
	IPAddress string `json:"ip_address"`
	Netmask   string `json:"netmask"`
	Gateway   string `json:"gateway"`
	Type      string `json:"type"`
}

type doNetworks struct {
	V4 []doNetworkV4 `json:"v4"`
	V6 []struct{}    `json:"v6"`
}

// doDroplet is a droplet.
type doDroplet struct {
	ID               int                `json:"id"`
	Name             string             `json:"name"`
	Memory           int                `json:"memory"`
	Vcpus            int                `json:"vcpus"`
	Disk             int                `json:"disk"`
	Locked           bool               `json:"locked"`
	Status           string             `json:"status"`
	CreatedAt        string             `json:"created_at"`
	Features         []string           `json:"features"`
	BackupIDs        []int              `json:"backup_ids"`
	NextBackupWindow *godo.BackupWindow `json:"next_backup_window"`
	SnapshotIDs      []int              `json:"snapshot_ids"`
	Image            doImage            `json:"image"`
	VolumeIDs        []string           `json:"volume_ids"`
	Size             doSize             `json:"size"`
	SizeSlug         string             `json:"size_slug"`
	Networks         doNetworks         `json:"networks"`
	Region           doRegion           `json:"region"`
	Tags             []string           `json:"tags"`
	VPCUUID          string             `json:"vpc_uuid,omitempty"`
}

func (s *Server) dropletOf(d godo.Droplet) doDroplet {
	out := doDroplet{ID: d.ID, Name: d.Name, Status: d.Status, CreatedAt: d.Created, Features: nonNil(d.Features),
		BackupIDs: nonNil(d.BackupIDs), SnapshotIDs: nonNil(d.SnapshotIDs), VolumeIDs: nonNil(d.VolumeIDs),
		Size: s.sizeOf(d.SizeSlug), SizeSlug: d.SizeSlug, Tags: nonNil(d.Tags), VPCUUID: d.VPCUUID, Locked: d.Locked,
		Networks: doNetworks{V4: []doNetworkV4{}, V6: []struct{}{}}}
	// Memory, vcpus and disk follow the size, as on DigitalOcean.
	out.Memory, out.Vcpus, out.Disk = out.Size.Memory, out.Size.Vcpus, out.Size.Disk
	if d.Region != nil {
		out.Region = regionOf(d.Region.Slug)
	}
	if d.Image != nil {
		out.Image = imageOf(*d.Image)
	}
	if d.Networks != nil {
		for _, n := range d.Networks.V4 {
			out.Networks.V4 = append(out.Networks.V4, doNetworkV4{IPAddress: n.IPAddress, Netmask: n.Netmask, Gateway: n.Gateway, Type: n.Type})
		}
	}
	return out
}

func (s *Server) dropletsOf(ds []godo.Droplet) []doDroplet {
	out := make([]doDroplet, len(ds))
	for i, d := range ds {
		out[i] = s.dropletOf(d)
	}
	return out
}

// doAction is an action.
type doAction struct {
	ID           int       `json:"id"`
	Status       string    `json:"status"`
	Type         string    `json:"type"`
	StartedAt    string    `json:"started_at"`
	CompletedAt  *string   `json:"completed_at"`
	ResourceID   int       `json:"resource_id"`
	ResourceType string    `json:"resource_type"`
	Region       *doRegion `json:"region,omitempty"`
	RegionSlug   *string   `json:"region_slug"`
}

func actionOf(a godo.Action) doAction {
	out := doAction{ID: a.ID, Status: a.Status, Type: a.Type, ResourceID: a.ResourceID, ResourceType: a.ResourceType}
	if a.StartedAt != nil {
		out.StartedAt = a.StartedAt.UTC().Format(timeFormatDO)
	}
	if a.CompletedAt != nil {
		c := a.CompletedAt.UTC().Format(timeFormatDO)
		out.CompletedAt = &c
	}
	if a.RegionSlug != "" {
		r := regionOf(a.RegionSlug)
		slug := a.RegionSlug
		out.Region, out.RegionSlug = &r, &slug
	}
	return out
}

func actionsOf(as []godo.Action) []doAction {
	out := make([]doAction, len(as))
	for i, a := range as {
		out[i] = actionOf(a)
	}
	return out
}

// timeFormatDO is how DigitalOcean writes times: RFC 3339, to the second.
const timeFormatDO = "2006-01-02T15:04:05Z"

// doSnapshot is a snapshot at /v2/snapshots: string ids, tags always.
type doSnapshot struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	CreatedAt     string   `json:"created_at"`
	Regions       []string `json:"regions"`
	ResourceID    string   `json:"resource_id"`
	ResourceType  string   `json:"resource_type"`
	MinDiskSize   int      `json:"min_disk_size"`
	SizeGigabytes float64  `json:"size_gigabytes"`
	Tags          []string `json:"tags"`
}

func snapshotJSON(sn godo.Snapshot) doSnapshot {
	return doSnapshot{ID: sn.ID, Name: sn.Name, CreatedAt: sn.Created, Regions: nonNil(sn.Regions), ResourceID: sn.ResourceID,
		ResourceType: sn.ResourceType, MinDiskSize: sn.MinDiskSize, SizeGigabytes: sn.SizeGigaBytes, Tags: nonNil(sn.Tags)}
}

// doRule is a firewall rule: "ports" always present, "0" meaning all
// ports and always "0" on icmp, as DigitalOcean answers.
type doRule struct {
	Protocol     string             `json:"protocol"`
	Ports        string             `json:"ports"`
	Sources      *godo.Sources      `json:"sources,omitempty"`
	Destinations *godo.Destinations `json:"destinations,omitempty"`
}

// doFirewall is a cloud firewall.
type doFirewall struct {
	ID             string               `json:"id"`
	Name           string               `json:"name"`
	Status         string               `json:"status"`
	InboundRules   []doRule             `json:"inbound_rules"`
	OutboundRules  []doRule             `json:"outbound_rules"`
	DropletIDs     []int                `json:"droplet_ids"`
	Tags           []string             `json:"tags"`
	CreatedAt      string               `json:"created_at"`
	PendingChanges []godo.PendingChange `json:"pending_changes"`
}

// wirePorts is how DigitalOcean shows a rule's ports.
func wirePorts(proto, ports string) string {
	if proto == "icmp" || ports == "" || ports == "all" {
		return "0"
	}
	return ports
}

func firewallOf(fw godo.Firewall) doFirewall {
	out := doFirewall{ID: fw.ID, Name: fw.Name, Status: fw.Status, InboundRules: []doRule{}, OutboundRules: []doRule{},
		DropletIDs: nonNil(fw.DropletIDs), Tags: nonNil(fw.Tags), CreatedAt: fw.Created, PendingChanges: nonNil(fw.PendingChanges)}
	for _, r := range fw.InboundRules {
		out.InboundRules = append(out.InboundRules, doRule{Protocol: r.Protocol, Ports: wirePorts(r.Protocol, r.PortRange), Sources: r.Sources})
	}
	for _, r := range fw.OutboundRules {
		out.OutboundRules = append(out.OutboundRules, doRule{Protocol: r.Protocol, Ports: wirePorts(r.Protocol, r.PortRange), Destinations: r.Destinations})
	}
	return out
}

func firewallsOf(fws []godo.Firewall) []doFirewall {
	out := make([]doFirewall, len(fws))
	for i, fw := range fws {
		out[i] = firewallOf(fw)
	}
	return out
}

// itoaID writes an id for a URL.
func itoaID(id int) string { return strconv.Itoa(id) }
