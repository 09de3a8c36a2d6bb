package raftfsm

import (
	"strings"
	"testing"
)

func TestDetectDatastore(t *testing.T) {
	cases := []struct {
		image   string
		command []string
		port    int
		want    Datastore
	}{
		{"redis:7", nil, 0, DatastoreRedis},
		{"registry.example.com:5000/cache/valkey/valkey:8-alpine", nil, 0, DatastoreRedis},
		{"eqalpha/keydb@sha256:" + strings.Repeat("ab", 32), nil, 0, DatastoreRedis},
		{"mycache:1", nil, 6379, DatastoreRedis},
		{"custom:1", []string{"/usr/bin/redis-server", "--appendonly", "yes"}, 0, DatastoreRedis},
		{"postgis/postgis:16", nil, 0, DatastorePostgres},
		{"ghcr.io/x/timescaledb-ha:pg16", nil, 0, DatastorePostgres},
		{"mariadb:11", nil, 0, DatastoreMySQL},
		{"nginx:1", nil, 80, DatastoreNone},
		{"not a ref", nil, 0, DatastoreNone},
	}
	for _, c := range cases {
		if got := DetectDatastore(c.image, c.command, c.port); got != c.want {
			t.Errorf("%s %v %d: %q, want %q", c.image, c.command, c.port, got, c.want)
		}
	}
	if DatastorePostgres.DefaultPort() != 5432 || DatastoreNone.DefaultPort() != 0 {
		t.Fatal("default ports")
	}
}
