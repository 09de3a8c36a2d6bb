package node

import (
	"crypto/cipher"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// envPrefix turns a service name into an environment variable prefix.
func envPrefix(service string) string {
	return strings.ToUpper(strings.ReplaceAll(service, "-", "_"))
}

// injectedEnv computes the variables a service gets from the stateful
// services it uses: NAME_HOST, NAME_PORT and NAME_ADDR always, and
// REDIS_URL or DATABASE_URL for recognised datastores, with the credentials
// from the datastore's own environment. Dependencies not placed yet are
// left out; the reconciler replaces the container when they appear or move.
func injectedEnv(s *raftfsm.State, svc *raftfsm.Service, spec raftfsm.ServiceSpec, sealer cipher.AEAD) (map[string]string, error) {
	if len(spec.Uses) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, use := range spec.Uses {
		key := raftfsm.ServiceKey(svc.WorkspaceID, svc.Project, svc.Env, use)
		dep, ok := s.Services[key]
		if !ok {
			continue
		}
		ins := s.ServiceInstances(key)
		if len(ins) == 0 {
			continue
		}
		n, ok := s.Nodes[ins[0].Node]
		if !ok || n.PrivateIP == "" {
			continue
		}
		depSpec := dep.Spec
		if live, ok := dep.Revision(dep.LiveGeneration); ok {
			depSpec = live
		}
		host, port := n.PrivateIP, strconv.Itoa(depSpec.Port)
		addr := net.JoinHostPort(host, port)
		p := envPrefix(use)
		out[p+"_HOST"], out[p+"_PORT"], out[p+"_ADDR"] = host, port, addr
		vars := map[string]string{}
		for k, v := range depSpec.Vars {
			vars[k] = v
		}
		if len(depSpec.SealedSecrets) > 0 && sealer != nil {
			secrets, err := raftfsm.OpenSecrets(sealer, key, depSpec)
			if err != nil {
				return nil, fmt.Errorf("inject %s into %s: %w", use, svc.Key, err)
			}
			for k, v := range secrets {
				vars[k] = v
			}
		}
		switch raftfsm.DetectDatastore(depSpec.Image, depSpec.Command, depSpec.Port) {
		case raftfsm.DatastoreRedis:
			u := url.URL{Scheme: "redis", Host: addr}
			if pw := vars["REDIS_PASSWORD"]; pw != "" {
				u.User = url.UserPassword("", pw)
			}
			out["REDIS_URL"] = u.String()
		case raftfsm.DatastorePostgres:
			user := orDefault(vars["POSTGRES_USER"], "postgres")
			u := url.URL{Scheme: "postgres", Host: addr, Path: "/" + orDefault(vars["POSTGRES_DB"], user), RawQuery: "sslmode=disable"}
			u.User = userInfo(user, vars["POSTGRES_PASSWORD"])
			out["DATABASE_URL"] = u.String()
		case raftfsm.DatastoreMySQL:
			user, pw := vars["MYSQL_USER"], vars["MYSQL_PASSWORD"]
			if user == "" {
				user, pw = "root", vars["MYSQL_ROOT_PASSWORD"]
			}
			u := url.URL{Scheme: "mysql", Host: addr, Path: "/" + vars["MYSQL_DATABASE"]}
			u.User = userInfo(user, pw)
			out["DATABASE_URL"] = u.String()
		}
	}
	return out, nil
}

func userInfo(user, password string) *url.Userinfo {
	if password == "" {
		return url.User(user)
	}
	return url.UserPassword(user, password)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
