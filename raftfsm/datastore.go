package raftfsm

import (
	"path"
	"slices"

	"github.com/distribution/reference"
)

// Datastore is a kind of database or cache dropmesh recognises, so that a
// service that uses it gets its address injected (REDIS_URL, DATABASE_URL).
type Datastore string

// The recognised datastores.
const (
	DatastoreNone     Datastore = ""
	DatastoreRedis    Datastore = "redis"
	DatastorePostgres Datastore = "postgres"
	DatastoreMySQL    Datastore = "mysql"
)

// datastores lists, per datastore, the repository names (the last path
// component of an image's repository, matched exactly), the server programs
// (a command's program, matched exactly) and the port it listens on. Exact
// matching keeps tools named after a datastore (redis-commander,
// postgres-exporter, mysqld-exporter) from being taken for one.
var datastores = []struct {
	d        Datastore
	repos    []string
	programs []string
	port     int
}{
	{DatastoreRedis,
		[]string{"redis", "redis-stack", "redis-stack-server", "valkey", "keydb", "dragonfly"},
		[]string{"redis-server", "redis-stack-server", "valkey-server", "keydb-server", "dragonfly"},
		6379},
	{DatastorePostgres,
		[]string{"postgres", "postgresql", "postgis", "pgvector", "timescaledb", "timescaledb-ha"},
		[]string{"postgres"},
		5432},
	{DatastoreMySQL,
		[]string{"mysql", "mysql-server", "mariadb", "percona", "percona-server"},
		[]string{"mysqld", "mariadbd"},
		3306},
}

// DetectDatastore recognises a datastore robustly, in this order: by the
// image's repository name (any registry prefix, any tag or digest:
// "redis:7", "bitnami/redis", "valkey/valkey", "ghcr.io/x/postgres@sha256:..."),
// by the command's program (redis-server, postgres, mysqld), then by port:
// the service's port, then the ports the image declares with EXPOSE (when
// the caller knows them). Any of them may be empty.
func DetectDatastore(image string, command []string, port int, exposed ...int) Datastore {
	repo := ""
	if ref, err := reference.ParseNormalizedNamed(image); err == nil {
		repo = path.Base(reference.Path(ref))
	}
	program := ""
	if len(command) > 0 {
		program = path.Base(command[0])
	}
	for _, d := range datastores {
		if (repo != "" && slices.Contains(d.repos, repo)) || (program != "" && slices.Contains(d.programs, program)) {
			return d.d
		}
	}
	for _, p := range append([]int{port}, exposed...) {
		for _, d := range datastores {
			if p != 0 && p == d.port {
				return d.d
			}
		}
	}
	return DatastoreNone
}

// DefaultPort is the port the datastore listens on by default (0 for none).
func (d Datastore) DefaultPort() int {
	for _, w := range datastores {
		if w.d == d {
			return w.port
		}
	}
	return 0
}
