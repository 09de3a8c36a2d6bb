package compose

import "testing"

func TestIsComposeFile(t *testing.T) {
	spec := []byte("project: shop\nservice: web\nimage: nginx:1\nport: 80\n")
	compose := []byte("services:\n  web:\n    image: nginx:1\n")
	for _, c := range []struct {
		path string
		data []byte
		want bool
	}{
		{"compose.yaml", nil, true},
		{"deploy/docker-compose.yml", nil, true},
		{"compose.prod.yaml", nil, true},
		{"docker-compose.override.yml", nil, true},
		{"app.compose.yml", nil, true},
		{"stack.yaml", compose, true},
		{"web.yaml", spec, false},
		{"web.json", []byte(`{"project":"shop","service":"web","image":"nginx:1"}`), false},
		{"two.yaml", []byte("project: a\n---\nproject: b\n"), false},
		{"odd.yaml", []byte("services: [a, b]\n"), false},
		{"empty.yaml", []byte("services: {}\n"), false},
		{"garbage.yaml", []byte("\x00\x01: ["), false},
		{"composer.json", []byte(`{"require": {}}`), false},
	} {
		if got := IsComposeFile(c.path, c.data); got != c.want {
			t.Errorf("IsComposeFile(%s) = %v, want %v", c.path, got, c.want)
		}
	}
}

func TestDatastorePort(t *testing.T) {
	for image, want := range map[string]int{
		"redis:7": 6379, "valkey/valkey:8": 6379, "eqalpha/keydb": 6379, "ghcr.io/acme/redis-stack:1": 6379,
		"postgres:16-alpine": 5432, "postgis/postgis:16-3.4": 5432, "timescale/timescaledb:latest-pg16": 5432,
		"mysql:8": 3306, "mariadb:11": 3306, "127.0.0.1:5000/db/mariadb@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": 3306,
		"nginx:1": 0, "mongo:7": 0, "127.0.0.1:5000/shop/web:1.4": 0, "NOT A REF": 0,
	} {
		if got := datastorePort(image); got != want {
			t.Errorf("datastorePort(%s) = %d, want %d", image, got, want)
		}
	}
}

func TestHTTPCheck(t *testing.T) {
	for _, c := range []struct {
		test []string
		path string
		port int
		ok   bool
	}{
		{[]string{"CMD", "curl", "-f", "http://localhost:8080/health"}, "/health", 8080, true},
		{[]string{"CMD", "/usr/bin/wget", "-qO-", "http://127.0.0.1/ready?deep=1"}, "/ready?deep=1", 0, true},
		{[]string{"CMD-SHELL", "curl -fsS 'http://0.0.0.0:3000' || exit 1"}, "/", 3000, true},
		{[]string{"CMD-SHELL", "wget --spider http://[::1]:9000/h"}, "/h", 9000, true},
		{[]string{"CMD", "curl", "http://example.com/health"}, "", 0, false}, // not this container
		{[]string{"CMD", "pg_isready"}, "", 0, false},
		{[]string{"CMD", "echo", "http://localhost/health"}, "", 0, false}, // no curl or wget
		{[]string{"NONE"}, "", 0, false},
		{[]string{"CMD"}, "", 0, false},
		{nil, "", 0, false},
	} {
		p, port, ok := httpCheck(c.test)
		if p != c.path || port != c.port || ok != c.ok {
			t.Errorf("httpCheck(%q) = %q %d %v, want %q %d %v", c.test, p, port, ok, c.path, c.port, c.ok)
		}
	}
}
