package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

func TestRuntimeUsers(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "FROM a AS build\nUSER root\nFROM b\nUSER 10001:10001\n")
	write("Rootful", "FROM b\nUSER app\nUSER 0\n")
	write("NoUser", "FROM b\n")
	svc := func(name, image, user, dockerfile string) types.ServiceConfig {
		s := types.ServiceConfig{Name: name}
		s.Image, s.User = image, user
		if dockerfile != "" {
			s.Build = &types.BuildConfig{Context: root, Dockerfile: dockerfile}
		}
		return s
	}
	cases := []struct {
		svc      types.ServiceConfig
		failures int
	}{
		{svc("app", "local/app:1", "", "Dockerfile"), 0},
		{svc("app", "local/app:1", "", "Rootful"), 1},
		{svc("app", "local/app:1", "", "NoUser"), 1},
		{svc("app", "local/app:1", "0:0", "Dockerfile"), 1},
		{svc("app", "local/app:1", "root", "Dockerfile"), 1},
		{svc("init-volumes", "local/app:1", "0:0", "Dockerfile"), 0},
		{svc("grafana", "grafana/grafana:13.2.1", "", ""), 0},
		{svc("grafana", "grafana/grafana:13.2.1", "0", ""), 1},
		{svc("mystery", "example/unknown:1", "", ""), 1},
		{svc("mystery", "example/unknown:1", "1000", ""), 0},
	}
	for _, c := range cases {
		r := &report{}
		checkUsers(r, root, &types.Project{Services: types.Services{c.svc.Name: c.svc}})
		if r.failures != c.failures {
			t.Errorf("%s (user %q, dockerfile %v): want %d failure(s), got %d", c.svc.Name, c.svc.User, c.svc.Build, c.failures, r.failures)
		}
	}
}

func TestLoopback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compose.yml")
	project := func(hostIP string) *types.Project {
		gw := types.ServiceConfig{Name: "api-gateway"}
		gw.Ports = []types.ServicePortConfig{{HostIP: hostIP, Published: "8080", Target: 8080}}
		return &types.Project{Services: types.Services{"api-gateway": gw}}
	}
	for _, c := range []struct {
		text, hostIP string
		failures     int
	}{
		{`      - "${PUBLISH_ADDRESS:-127.0.0.1}:8080:8080"`, "127.0.0.1", 0},
		{`      - "${PUBLISH_ADDRESS:-127.0.0.1}:8080:8080"`, "0.0.0.0", 1},
		{`      - "${PUBLISH_ADDRESS:-127.0.0.1}:8080:8080"`, "", 1},
		{`      - "${PUBLISH_ADDRESS:-0.0.0.0}:8080:8080"`, "127.0.0.1", 1},
	} {
		if err := os.WriteFile(path, []byte(c.text+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := &report{}
		checkLoopback(r, path, project(c.hostIP))
		if r.failures != c.failures {
			t.Errorf("%s with host IP %q: want %d failure(s), got %d", c.text, c.hostIP, c.failures, r.failures)
		}
	}
}
