package converge

import (
	"cmp"
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

// Dependency is a stateful service a service uses, as placed: its spec (the
// live revision once there is one) and the node that runs it.
func Dependency(s *raftfsm.State, svc *raftfsm.Service, use string) (key string, spec raftfsm.ServiceSpec, node *raftfsm.Node, ok bool) {
	key = raftfsm.ServiceKey(svc.WorkspaceID, svc.Project, svc.Env, use)
	dep, found := s.Services[key]
	if !found {
		return key, spec, nil, false
	}
	ins := s.ServiceInstances(key)
	if len(ins) == 0 {
		return key, spec, nil, false
	}
	n, found := s.Nodes[ins[0].Node]
	if !found || n.PrivateIP == "" {
		return key, spec, nil, false
	}
	spec = dep.Spec
	if live, found := dep.Revision(dep.LiveGeneration); found {
		spec = live
	}
	return key, spec, n, true
}

// InjectedEnv computes the variables a service gets from the stateful
// services it uses: NAME_HOST, NAME_PORT and NAME_ADDR always, and
// REDIS_URL or DATABASE_URL for recognised datastores, with the credentials
// from the datastore's own environment. Dependencies not placed yet are
// left out; the reconciler replaces the container when they appear or move.
// exposed returns the EXPOSE ports of an image when this node knows them
// (nil: unknown); it must not call Docker, it runs inside a state view.
func InjectedEnv(s *raftfsm.State, svc *raftfsm.Service, spec raftfsm.ServiceSpec, sealer cipher.AEAD, exposed func(image string) []int) (map[string]string, error) {
	return InjectEnv(s, svc, spec, sealer, exposed, false)
}

// InjectEnv is InjectedEnv; byName (discovery on) injects the dependency's
// service name instead of its node's address: the name resolves on every
// node and follows a move, so a move changes no dependent's environment
// and restarts none of them.
func InjectEnv(s *raftfsm.State, svc *raftfsm.Service, spec raftfsm.ServiceSpec, sealer cipher.AEAD, exposed func(image string) []int, byName bool) (map[string]string, error) {
	if len(spec.Uses) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, use := range spec.Uses {
		key, depSpec, n, ok := Dependency(s, svc, use)
		if !ok {
			continue
		}
		host, port := n.PrivateIP, strconv.Itoa(depSpec.Port)
		if byName {
			host = use
		}
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
		var ports []int
		if exposed != nil && depSpec.Image != "" {
			ports = exposed(depSpec.Image)
		}
		switch raftfsm.DetectDatastore(depSpec.Image, depSpec.Command, depSpec.Port, ports...) {
		case raftfsm.DatastoreRedis:
			u := url.URL{Scheme: "redis", Host: addr}
			if pw := vars["REDIS_PASSWORD"]; pw != "" {
				u.User = url.UserPassword("", pw)
			}
			out["REDIS_URL"] = u.String()
		case raftfsm.DatastorePostgres:
			user := cmp.Or(vars["POSTGRES_USER"], "postgres")
			u := url.URL{Scheme: "postgres", Host: addr, Path: "/" + cmp.Or(vars["POSTGRES_DB"], user), RawQuery: "sslmode=disable"}
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
