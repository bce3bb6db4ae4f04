package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

func grafanaService(image string, memMiB int64, env map[string]string) types.ServiceConfig {
	svc := types.ServiceConfig{Name: "grafana"}
	svc.Image = image
	svc.MemLimit = types.UnitBytes(memMiB << 20)
	svc.Environment = types.MappingWithEquals{}
	for k, v := range env {
		svc.Environment[k] = &v
	}
	return svc
}

var goodGrafanaEnv = map[string]string{
	"GF_SERVER_ENABLE_GZIP":      "false",
	"GF_AUTH_ANONYMOUS_ENABLED":  "true",
	"GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
	"GF_USERS_VIEWERS_CAN_EDIT":  "true",
	"GF_USERS_ALLOW_SIGN_UP":     "false",
}

func with(env map[string]string, key, value string) map[string]string {
	out := without(env, key)
	out[key] = value
	return out
}

func without(env map[string]string, key string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func TestGrafanaRules(t *testing.T) {
	cases := []struct {
		name   string
		svc    types.ServiceConfig
		expect string // "" = no problem
	}{
		{"fixed release, gzip off, 512 MiB, viewers explore", grafanaService("grafana/grafana:13.2.1", 512, goodGrafanaEnv), ""},
		{"13.1.5 is fixed too", grafanaService("grafana/grafana:13.1.5", 512, goodGrafanaEnv), ""},
		{"13.2.0 leaks", grafanaService("grafana/grafana:13.2.0", 512, goodGrafanaEnv), "first fixed 13.2 release is 13.2.1"},
		{"13.0.7 leaks", grafanaService("grafana/grafana:13.0.7", 512, goodGrafanaEnv), "13.0.8"},
		{"gzip left on", grafanaService("grafana/grafana:13.2.1", 512, without(goodGrafanaEnv, "GF_SERVER_ENABLE_GZIP")), "GF_SERVER_ENABLE_GZIP"},
		{"256 MiB", grafanaService("grafana/grafana:13.2.1", 256, goodGrafanaEnv), "documented minimum"},
		{"anonymous admins", grafanaService("grafana/grafana:13.2.1", 512, with(goodGrafanaEnv, "GF_AUTH_ANONYMOUS_ORG_ROLE", "Admin")), "only Viewer"},
		{"anonymous editors", grafanaService("grafana/grafana:13.2.1", 512, with(goodGrafanaEnv, "GF_AUTH_ANONYMOUS_ORG_ROLE", "Editor")), "only Viewer"},
		{"sign-up open", grafanaService("grafana/grafana:13.2.1", 512, without(goodGrafanaEnv, "GF_USERS_ALLOW_SIGN_UP")), "GF_USERS_ALLOW_SIGN_UP"},
		{"viewers cannot explore", grafanaService("grafana/grafana:13.2.1", 512, without(goodGrafanaEnv, "GF_USERS_VIEWERS_CAN_EDIT")), "Explore"},
	}
	for _, c := range cases {
		problems := strings.Join(grafanaProblems(c.svc), "; ")
		if c.expect == "" && problems != "" {
			t.Errorf("%s: unexpected problems: %s", c.name, problems)
		}
		if c.expect != "" && !strings.Contains(problems, c.expect) {
			t.Errorf("%s: want a problem containing %q, got %q", c.name, c.expect, problems)
		}
	}
}

func TestBudgetTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compose.yml")
	text := "# intro\n#\n# Memory budget (mem_limit, MiB).\n#   container  limit  basis\n#   grafana   512   note\n#                 its continuation\n#   kafka     576\n#   total    1088\n#\n# Networks.\n#   app  12  not part of the table\nservices: {}\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	rows, err := budgetTable(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows["grafana"] != 512 || rows["kafka"] != 576 || rows["total"] != 1088 {
		t.Fatalf("rows %v", rows)
	}
	project := func(grafanaMiB int64) *types.Project {
		grafana, kafka := types.ServiceConfig{Name: "grafana"}, types.ServiceConfig{Name: "kafka"}
		grafana.MemLimit = types.UnitBytes(grafanaMiB << 20)
		kafka.MemLimit = types.UnitBytes(int64(576) << 20)
		return &types.Project{Services: types.Services{"grafana": grafana, "kafka": kafka}}
	}
	r := &report{}
	checkBudgetTable(r, path, project(512))
	if r.failures != 0 {
		t.Fatalf("a matching table failed %d check(s)", r.failures)
	}
	r = &report{}
	checkBudgetTable(r, path, project(256))
	if r.failures != 2 { // grafana's row and the total
		t.Fatalf("a stale table: want 2 failures, got %d", r.failures)
	}
}
