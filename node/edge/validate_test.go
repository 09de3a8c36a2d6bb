package edge

import (
	"errors"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestValidateAcceptsGoodConfigs(t *testing.T) {
	for name, cfg := range map[string]Config{
		"empty":    {},
		"full":     goldenFull(t),
		"ipv6":     {Routes: []Route{{Host: "a.example.test", Service: "shop/prod/web", Upstreams: []string{"[::1]:8080"}}}},
		"punycode": {Routes: []Route{{Host: "xn--bcher-kva.example", Service: "shop/prod/web", Upstreams: []string{"10.0.0.1:80"}}}},
		"max port": {Routes: []Route{{Host: "a.example.test", Service: "shop/prod/web", Upstreams: []string{"10.0.0.1:65535"}}}},
	} {
		if err := Validate(cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateRefusesBadConfigs(t *testing.T) {
	up := []string{"10.0.0.5:80"}
	good := Route{Host: "good.example.test", Service: "9fe5e6/shop/prod/web", Upstreams: up}
	for _, tc := range invalidConfigs(good.Service, up) {
		cfg := tc.cfg
		cfg.Routes = append([]Route{good}, cfg.Routes...)
		err := Validate(cfg)
		switch {
		case err == nil:
			t.Errorf("%s: accepted", tc.name)
		case !errors.Is(err, raftfsm.ErrInvalid):
			t.Errorf("%s: %v does not wrap raftfsm.ErrInvalid", tc.name, err)
		case tc.mention != "" && !strings.Contains(err.Error(), tc.mention):
			t.Errorf("%s: %q does not mention %q", tc.name, err, tc.mention)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Validate(Config{Routes: []Route{
		{Host: "a;.example.test", Service: "shop/prod/web", Upstreams: []string{"10.0.0.1:80"}},
		{Host: "b.example.test", Service: "shop/prod/web", Upstreams: []string{"nowhere"}},
		{Host: "b.example.test", Service: "shop/prod/web", Upstreams: []string{"10.0.0.1:80"}},
	}})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`"a;.example.test"`, `"nowhere"`, `duplicate host "b.example.test"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestValidatePort(t *testing.T) {
	for _, p := range []string{"1", "80", "8080", "65535"} {
		if err := validatePort(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "0", "080", "65536", "99999", "+80", "-1", "8a", "123456", " 80", "８０"} {
		if err := validatePort(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}
