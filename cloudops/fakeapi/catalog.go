package fakeapi

import "strings"

// sizeInfo is one droplet size as DigitalOcean lists it at /v2/sizes.
type sizeInfo struct {
	Slug         string
	Memory       int // MiB
	Vcpus        int
	Disk         int     // GB
	Transfer     float64 // TB a month
	PriceMonthly float64
	PriceHourly  float64
	Description  string
}

// sizes are the droplet sizes the fake sells: DigitalOcean's common Basic,
// General Purpose and CPU-Optimized slugs with their published figures. A
// create with another slug is refused (422), as DigitalOcean refuses it.
var sizes = []sizeInfo{
	{"s-1vcpu-512mb-10gb", 512, 1, 10, 0.5, 4, 0.00595, "Basic"},
	{"s-1vcpu-1gb", 1024, 1, 25, 1, 6, 0.00893, "Basic"},
	{"s-1vcpu-2gb", 2048, 1, 50, 2, 12, 0.01786, "Basic"},
	{"s-2vcpu-2gb", 2048, 2, 60, 3, 18, 0.02679, "Basic"},
	{"s-2vcpu-4gb", 4096, 2, 80, 4, 24, 0.03571, "Basic"},
	{"s-4vcpu-8gb", 8192, 4, 160, 5, 48, 0.07143, "Basic"},
	{"s-8vcpu-16gb", 16384, 8, 320, 6, 96, 0.14286, "Basic"},
	{"g-2vcpu-8gb", 8192, 2, 25, 4, 63, 0.09375, "General Purpose"},
	{"c-2", 4096, 2, 25, 4, 42, 0.0625, "CPU-Optimized"},
}

func sizeBySlug(slug string) (sizeInfo, bool) {
	for _, s := range sizes {
		if s.Slug == slug {
			return s, true
		}
	}
	return sizeInfo{}, false
}

func sizeSlugs() []string {
	out := make([]string, len(sizes))
	for i, s := range sizes {
		out[i] = s.Slug
	}
	return out
}

// regionNames are DigitalOcean's names for its region slugs.
var regionNames = map[string]string{
	"ams3": "Amsterdam 3", "atl1": "Atlanta 1", "blr1": "Bangalore 1", "fra1": "Frankfurt 1", "lon1": "London 1",
	"nyc1": "New York 1", "nyc2": "New York 2", "nyc3": "New York 3", "ric1": "Richmond 1", "sfo2": "San Francisco 2",
	"sfo3": "San Francisco 3", "sgp1": "Singapore 1", "syd1": "Sydney 1", "tor1": "Toronto 1",
}

// regionFeatures are what every fake region offers.
var regionFeatures = []string{"backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"}

// distribution is a public base image.
type distribution struct {
	ID           int
	Slug         string
	Name         string
	Distribution string // as DigitalOcean spells it
	MinDisk      int
	SizeGB       float64
	Created      string
}

// distributionIDBase numbers the public images apart from snapshots.
const distributionIDBase = 190000000

// distributions are the public images a droplet can be created from by
// slug (or id); another slug is refused (422).
var distributions = []distribution{
	{distributionIDBase + 1, "debian-12-x64", "12 x64", "Debian", 10, 0.8, "2023-06-12T15:32:40Z"},
	{distributionIDBase + 2, "debian-11-x64", "11 x64", "Debian", 10, 0.7, "2021-08-16T10:01:19Z"},
	{distributionIDBase + 3, "ubuntu-24-04-x64", "24.04 (LTS) x64", "Ubuntu", 7, 2.3, "2024-04-25T10:27:57Z"},
	{distributionIDBase + 4, "ubuntu-22-04-x64", "22.04 (LTS) x64", "Ubuntu", 7, 2.1, "2022-04-21T14:58:23Z"},
	{distributionIDBase + 5, "fedora-40-x64", "40 x64", "Fedora", 7, 0.9, "2024-04-24T18:08:11Z"},
	{distributionIDBase + 6, "rockylinux-9-x64", "9 x64", "Rocky Linux", 10, 1.0, "2022-07-18T20:32:17Z"},
	{distributionIDBase + 7, "centos-stream-9-x64", "Stream 9 x64", "CentOS", 10, 1.1, "2022-01-12T19:53:04Z"},
}

func distributionBy(slug string, id int) (distribution, bool) {
	for _, d := range distributions {
		if (slug != "" && d.Slug == slug) || (id != 0 && d.ID == id) {
			return d, true
		}
	}
	return distribution{}, false
}

// distributionNames lists the slugs, for error messages.
func distributionNames() string {
	var s []string
	for _, d := range distributions {
		s = append(s, d.Slug)
	}
	return strings.Join(s, ", ")
}

// canonicalDistribution spells a distribution name the way DigitalOcean
// does ("Debian", "Rocky Linux"); unknown ones are "Unknown".
func canonicalDistribution(name string) string {
	for _, d := range []string{"Arch Linux", "CentOS", "CoreOS", "Debian", "Fedora", "Fedora Atomic", "FreeBSD", "Gentoo", "openSUSE", "RancherOS", "Rocky Linux", "Ubuntu"} {
		if strings.EqualFold(strings.ReplaceAll(d, " ", ""), strings.ReplaceAll(name, " ", "")) {
			return d
		}
	}
	return "Unknown"
}

// regionSizes are the sizes sold in every fake region.
func regionSizes() []string { return sizeSlugs() }
