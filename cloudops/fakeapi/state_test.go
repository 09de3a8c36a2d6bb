package fakeapi

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStateShape(t *testing.T) {
	_, url := start(t, Options{Zones: []string{"example.test"}})
	c := doClient(t, url, DefaultToken)
	d := createDroplet(t, c, "node-1")
	if _, _, err := c.DropletActions.Reboot(ctx(t), d.ID); err != nil {
		t.Fatal(err)
	}
	r := get(t, url+"/_fake/state", "")
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"droplets", "firewalls", "vpcs", "snapshots", "dns_records", "keys", "zones", "requests"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("state lacks %q", k)
		}
	}
	var droplets []map[string]json.RawMessage
	if err := json.Unmarshal(raw["droplets"], &droplets); err != nil || len(droplets) != 1 {
		t.Fatalf("droplets: %s %v", raw["droplets"], err)
	}
	for _, k := range []string{"id", "name", "status", "networks", "region", "tags", "vpc_uuid", "actions", "locked", "backup_ids", "size", "next_backup_window"} {
		if _, ok := droplets[0][k]; !ok {
			t.Errorf("droplet lacks %q (DigitalOcean's shape)", k)
		}
	}
	var actions []ActionSummary
	if err := json.Unmarshal(droplets[0]["actions"], &actions); err != nil || len(actions) != 2 || actions[0].Type != "create" || actions[1].Type != "reboot" {
		t.Fatalf("actions: %s %v", droplets[0]["actions"], err)
	}
	if strings.Contains(string(raw["droplets"]), "secret: x") {
		t.Fatal("state shows the droplet's user data")
	}
	// It decodes into State, godo's structs.
	var st State
	r2 := get(t, url+"/_fake/state", "")
	if err := json.NewDecoder(r2.Body).Decode(&st); err != nil || len(st.Droplets) != 1 || st.Droplets[0].Size == nil || st.Droplets[0].Size.Memory != 2048 || len(st.Droplets[0].Actions) != 2 {
		t.Fatalf("decoded state %+v %v", st, err)
	}
	var reqs map[string]int
	if err := json.Unmarshal(raw["requests"], &reqs); err != nil || reqs["POST /v2/droplets"] != 1 || reqs["POST /v2/droplets/{id}/actions"] != 1 {
		t.Fatalf("requests: %s %v", raw["requests"], err)
	}
}
