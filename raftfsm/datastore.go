package raftfsm

import (
	"path"
	"strings"

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

// datastoreWords are matched against the image's last path component and
// the command's program.
var datastoreWords = []struct {
	d     Datastore
	words []string
	port  int
}{
	{DatastoreRedis, []string{"redis", "valkey", "keydb", "dragonfly"}, 6379},
	{DatastorePostgres, []string{"postgres", "postgis", "timescaledb"}, 5432},
	{DatastoreMySQL, []string{"mysql", "mariadb", "percona"}, 3306},
}

// DetectDatastore recognises a datastore robustly: by image name (with any
// registry prefix, tag or digest), by its command (redis-server, ...), and
// last by its port (6379, 5432, 3306). Any of them may be empty.
func DetectDatastore(image string, command []string, port int) Datastore {
	name := ""
	if ref, err := reference.ParseNormalizedNamed(image); err == nil {
		name = path.Base(reference.Path(ref))
	}
	cmd := ""
	if len(command) > 0 {
		cmd = path.Base(command[0])
	}
	for _, d := range datastoreWords {
		for _, w := range d.words {
			if strings.Contains(name, w) || strings.HasPrefix(cmd, w) {
				return d.d
			}
		}
	}
	for _, d := range datastoreWords {
		if port == d.port {
			return d.d
		}
	}
	return DatastoreNone
}

// DefaultPort is the port the datastore listens on by default (0 for none).
func (d Datastore) DefaultPort() int {
	for _, w := range datastoreWords {
		if w.d == d {
			return w.port
		}
	}
	return 0
}
