package raftfsm

import (
	"strings"
	"testing"
)

func TestDetectDatastore(t *testing.T) {
	digest := "@sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		image   string
		command []string
		port    int
		exposed []int
		want    Datastore
	}{
		// By repository name, with any registry prefix, tag or digest.
		{"redis", nil, 0, nil, DatastoreRedis},
		{"redis:7", nil, 0, nil, DatastoreRedis},
		{"docker.io/library/redis:7.2-alpine", nil, 0, nil, DatastoreRedis},
		{"bitnami/redis:7.2", nil, 0, nil, DatastoreRedis},
		{"registry.example.com:5000/cache/valkey/valkey:8-alpine", nil, 0, nil, DatastoreRedis},
		{"valkey/valkey" + digest, nil, 0, nil, DatastoreRedis},
		{"eqalpha/keydb" + digest, nil, 0, nil, DatastoreRedis},
		{"redis/redis-stack-server:latest", nil, 0, nil, DatastoreRedis},
		{"postgres:16", nil, 0, nil, DatastorePostgres},
		{"bitnami/postgresql:16", nil, 0, nil, DatastorePostgres},
		{"postgis/postgis:16", nil, 0, nil, DatastorePostgres},
		{"ghcr.io/x/timescaledb-ha:pg16", nil, 0, nil, DatastorePostgres},
		{"mysql:8", nil, 0, nil, DatastoreMySQL},
		{"mariadb:11", nil, 0, nil, DatastoreMySQL},
		{"127.0.0.1:5000/db/mariadb:11" + digest, nil, 0, nil, DatastoreMySQL},
		// Tools named after a datastore are not one.
		{"rediscommander/redis-commander:latest", nil, 8081, nil, DatastoreNone},
		{"redis-commander", nil, 0, nil, DatastoreNone},
		{"prometheuscommunity/postgres-exporter:v0.15", nil, 9187, []int{9187}, DatastoreNone},
		{"quay.io/prometheus/mysqld-exporter", nil, 9104, nil, DatastoreNone},
		{"oliver006/redis_exporter", nil, 9121, nil, DatastoreNone},
		{"myredis:1", nil, 8080, nil, DatastoreNone},
		{"dpage/pgadmin4", nil, 80, []int{80, 443}, DatastoreNone},
		// The registry host or a namespace is not the repository name.
		{"redis.example.com/team/app:1", nil, 8080, nil, DatastoreNone},
		{"postgres/app:1", nil, 8080, nil, DatastoreNone},
		// By the command's program, exactly.
		{"custom:1", []string{"/usr/bin/redis-server", "--appendonly", "yes"}, 0, nil, DatastoreRedis},
		{"custom:1", []string{"valkey-server"}, 0, nil, DatastoreRedis},
		{"custom:1", []string{"/usr/local/bin/postgres", "-c", "fsync=off"}, 0, nil, DatastorePostgres},
		{"custom:1", []string{"mysqld"}, 0, nil, DatastoreMySQL},
		{"custom:1", []string{"redis-commander"}, 8081, nil, DatastoreNone},
		{"custom:1", []string{"postgres-exporter"}, 9187, nil, DatastoreNone},
		// By the service's port, then by the image's EXPOSE.
		{"mycache:1", nil, 6379, nil, DatastoreRedis},
		{"mycache:1", nil, 7000, []int{6379}, DatastoreRedis},
		{"mydb:1", nil, 0, []int{5432}, DatastorePostgres},
		{"mydb:1", nil, 6000, []int{8080, 3306}, DatastoreMySQL},
		{"mydb:1", nil, 5432, []int{3306}, DatastorePostgres},
		{"nginx:1", nil, 80, []int{80}, DatastoreNone},
		{"not a ref", nil, 0, nil, DatastoreNone},
		{"", nil, 0, nil, DatastoreNone},
	}
	for _, c := range cases {
		if got := DetectDatastore(c.image, c.command, c.port, c.exposed...); got != c.want {
			t.Errorf("%q %v port %d exposed %v: %q, want %q", c.image, c.command, c.port, c.exposed, got, c.want)
		}
	}
	if DatastorePostgres.DefaultPort() != 5432 || DatastoreRedis.DefaultPort() != 6379 || DatastoreNone.DefaultPort() != 0 {
		t.Fatal("default ports")
	}
}
