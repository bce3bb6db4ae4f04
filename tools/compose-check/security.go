package main

// Security rules (issue 11): no long-running container runs as root, and published ports
// bind to loopback unless the user asks otherwise in .env.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
)

var (
	// The user each pinned upstream image runs as (its image config's USER), checked
	// against each image's published Dockerfile. A compose `user:` overrides it.
	imageUsers = map[string]string{
		"otel/opentelemetry-collector-contrib": "10001",
		"grafana/tempo":                        "10001",
		"grafana/loki":                         "10001",
		"prom/prometheus":                      "nobody",
		"prom/alertmanager":                    "nobody",
		"grafana/grafana":                      "472",
		"apache/kafka":                         "appuser",
		"grafana/k6":                           "12345",
		"postgres":                             "root", // see rootAllowed
	}

	// Containers allowed to start as root, each with the reason.
	rootAllowed = map[string]string{
		// One-shot: chowns the data volumes so the backends run unprivileged, then exits.
		"init-volumes": "one-shot volume setup",
		// The official image's entrypoint starts as root only to fix the data directory's
		// ownership, then re-executes itself as the `postgres` user (gosu).
		"postgres": "entrypoint drops to the postgres user",
	}
)

// isRoot: a compose `user:` or Dockerfile USER naming uid 0 or root.
func isRoot(user string) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	return name == "" || name == "0" || name == "root"
}

// dockerfileUser: the last USER instruction of a Dockerfile ("" when there is none, which
// means root).
func dockerfileUser(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	user := ""
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) >= 2 && strings.EqualFold(fields[0], "USER") {
			user = fields[1]
		}
	}
	return user, scanner.Err()
}

// runtimeUser says who a service's main process runs as, and where that was read.
func runtimeUser(root string, svc types.ServiceConfig) (user, source string, err error) {
	if svc.User != "" {
		return svc.User, "compose user:", nil
	}
	if svc.Build != nil {
		dockerfile := svc.Build.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		path := dockerfile
		if !filepath.IsAbs(path) {
			path = filepath.Join(absUnder(root, svc.Build.Context), dockerfile)
		}
		user, err := dockerfileUser(path)
		return user, "USER in " + rel(root, path), err
	}
	ref, err := reference.ParseNormalizedNamed(svc.Image)
	if err != nil {
		return "", "", err
	}
	name := reference.FamiliarName(ref)
	user, ok := imageUsers[name]
	if !ok {
		return "", "", fmt.Errorf("image %s: its runtime user is not known here (add it to imageUsers)", name)
	}
	return user, "image " + name, nil
}

func checkUsers(r *report, root string, p *types.Project) {
	r.section("runtime users (no container runs as root)")
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		user, source, err := runtimeUser(root, svc)
		switch {
		case err != nil:
			r.fail("%s: %v", name, err)
		case isRoot(user) && rootAllowed[name] != "":
			r.info("%s: root (%s), allowed: %s", name, source, rootAllowed[name])
		case isRoot(user):
			r.fail("%s: runs as root (%s)", name, source)
		default:
			r.ok("%s: %s (%s)", name, user, source)
		}
	}
}

// checkLoopback: with the committed .env every published port binds to 127.0.0.1, and
// the compose file's own default (when .env does not say) is 127.0.0.1 too.
func checkLoopback(r *report, composePath string, p *types.Project) {
	r.section("published ports bind to 127.0.0.1 by default")
	for _, name := range p.ServiceNames() {
		for _, port := range p.Services[name].Ports {
			if port.HostIP != "127.0.0.1" {
				r.fail("%s: %s -> %d binds to %s", name, port.Published, port.Target, orAll(port.HostIP))
			} else {
				r.ok("%s: 127.0.0.1:%s", name, port.Published)
			}
		}
	}
	text, err := os.ReadFile(composePath)
	if err != nil {
		r.fail("cannot read %s: %v", composePath, err)
		return
	}
	for i, line := range strings.Split(string(text), "\n") {
		trimmed := strings.TrimSpace(line)
		if !strings.HasPrefix(trimmed, "- \"") || !strings.Contains(trimmed, ":") {
			continue
		}
		if strings.Contains(trimmed, "${PUBLISH_ADDRESS") && !strings.Contains(trimmed, "${PUBLISH_ADDRESS:-127.0.0.1}") {
			r.fail("line %d: %s: the default must be ${PUBLISH_ADDRESS:-127.0.0.1}", i+1, trimmed)
		}
	}
}
