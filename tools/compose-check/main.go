// compose-check loads docker-compose.yml and .env with the compose-go project loader, the
// library Docker Compose itself uses (schema validation, interpolation, profiles,
// consistency), and then checks the demo's own rules:
//
//   - `docker compose up` starts every service except the profile-only ones (k6);
//   - every build context and Dockerfile exists;
//   - every bind-mounted host path exists inside the repository (Docker would otherwise
//     create an empty directory in its place and the container would fail later);
//   - every image is pinned (a tag other than `latest`, or a digest), names no registry
//     (the user's Docker picks it), and the images listed in the reference table carry
//     exactly that tag;
//   - every container has a memory limit, all of them together stay within 3 GiB, and the
//     budget table in the file's header comment states exactly those limits;
//   - Grafana: a release without the gzip leak, gzip off, at least its documented minimum
//     memory, and anonymous viewers allowed into Explore (grafana.go);
//   - only the allowed services publish ports, and only the allowed ones;
//   - the OpenTelemetry Collector is the only bridge between the `app` and
//     `observability` networks;
//   - every depends_on target exists, waits only on what can satisfy the condition, and
//     a default service never depends on a profile-only one;
//   - every long-running service has a healthcheck; the named data volumes exist;
//   - the credentials come from the env file, not from the compose file;
//   - no long-running container runs as root, and published ports bind to 127.0.0.1
//     unless .env says otherwise (security.go).
//
// Usage (from the repository root; scripts/check-compose.sh builds and runs it):
//
//	compose-check [-f docker-compose.yml] [--env-file .env] [--project-dir .]
//
// Exit status: 0 when every check passes, 1 when one fails, 2 when the file cannot be loaded.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
)

// The demo's rules. Keep them next to the comments in docker-compose.yml.
var (
	// All containers together, k6 included.
	memoryBudget = int64(3) << 30

	// Services that only run when their profile is asked for.
	profileOnly = map[string]string{"k6": "load"}

	// Who may publish which container ports to the host.
	allowedPorts = map[string][]uint32{
		"api-gateway": {8080},
		"grafana":     {3000},
		"prometheus":  {9090}, // optional: exemplar queries from the host
		"kafka":       {9094}, // optional: the broker's host listener
	}

	appNetwork           = "app"
	observabilityNetwork = "observability"
	bridge               = "otel-collector"

	// The pinned upstream images: docker-compose.yml must use exactly these tags.
	pinnedImages = map[string]string{
		"otel/opentelemetry-collector-contrib": "0.161.0",
		"grafana/tempo":                        "3.0.3",
		"grafana/loki":                         "3.7.6",
		"prom/prometheus":                      "v3.14.0",
		"prom/alertmanager":                    "v0.35.0",
		"grafana/grafana":                      "13.2.1",
		"apache/kafka":                         "4.3.1",
		"postgres":                             "18.4",
		"grafana/k6":                           "2.2.0",
	}

	requiredVolumes = []string{"postgres-data", "kafka-data", "tempo-data", "loki-data", "prometheus-data", "alertmanager-data"}

	// Credentials that must come from the env file (variable -> services that use it).
	credentials = map[string][]string{
		"POSTGRES_PASSWORD":          {"postgres"},
		"GF_SECURITY_ADMIN_USER":     {"grafana"},
		"GF_SECURITY_ADMIN_PASSWORD": {"grafana"},
		"ADMIN_TOKEN":                {"api-gateway", "service-a", "service-b", "service-c", "service-d", "third-party-stub"},
	}
)

type report struct {
	failures int
}

func (r *report) section(title string) { fmt.Printf("\n== %s\n", title) }
func (r *report) ok(format string, args ...any) {
	fmt.Printf("  ok    "+format+"\n", args...)
}
func (r *report) fail(format string, args ...any) {
	r.failures++
	fmt.Printf("  FAIL  "+format+"\n", args...)
}
func (r *report) info(format string, args ...any) {
	fmt.Printf("        "+format+"\n", args...)
}

func main() {
	composeFile := flag.String("f", "docker-compose.yml", "compose file")
	envFile := flag.String("env-file", ".env", "env file (as `docker compose --env-file`)")
	projectDir := flag.String("project-dir", ".", "project directory (the repository root)")
	overlay := flag.String("test-overlay", "", "also load this file on top (as a second -f): it must load and publish on loopback only")
	flag.Parse()

	root, err := filepath.Abs(*projectDir)
	if err != nil {
		fatal(err)
	}
	composePath := absUnder(root, *composeFile)
	envPath := absUnder(root, *envFile)

	ctx := context.Background()
	// As `docker compose up` sees it: default profiles (COMPOSE_PROFILES, if set).
	defaultProject, err := load(ctx, root, []string{composePath}, envPath, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: cannot load %s: %v\n", rel(root, composePath), err)
		os.Exit(2)
	}
	// Every service, whatever its profile: the rules apply to all of them.
	all, err := load(ctx, root, []string{composePath}, envPath, []string{"*"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: cannot load %s with all profiles: %v\n", rel(root, composePath), err)
		os.Exit(2)
	}
	fmt.Printf("compose-check: %s + %s loaded (project %q, %d services)\n",
		rel(root, composePath), rel(root, envPath), all.Name, len(all.Services))

	r := &report{}
	checkProfiles(r, defaultProject, all)
	checkBuilds(r, root, all)
	checkBindMounts(r, root, all)
	checkImages(r, all)
	checkMemory(r, all)
	checkBudgetTable(r, composePath, all)
	checkGrafana(r, all)
	checkPorts(r, all)
	checkNetworks(r, all)
	checkDependencies(r, all)
	checkHealthchecks(r, all)
	checkVolumes(r, all)
	checkCredentials(r, envPath, all)
	checkUsers(r, root, all)
	checkLoopback(r, composePath, all)
	if *overlay != "" {
		overlayPath := absUnder(root, *overlay)
		merged, err := load(ctx, root, []string{composePath, overlayPath}, envPath, nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "compose-check: cannot load %s with %s: %v\n", rel(root, composePath), rel(root, overlayPath), err)
			os.Exit(2)
		}
		checkOverlay(r, rel(root, overlayPath), merged)
	}

	if r.failures > 0 {
		fmt.Printf("\ncompose-check: %d check(s) FAILED\n", r.failures)
		os.Exit(1)
	}
	fmt.Println("\ncompose-check: all checks passed")
}

// load reads the project the way the docker compose CLI does: OS environment first, then
// the env file, the default config name resolution, resolved paths, schema validation and
// the consistency checks of the loader.
func load(ctx context.Context, root string, composePaths []string, envPath string, profiles []string) (*types.Project, error) {
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(root),
		cli.WithOsEnv,
		cli.WithEnvFiles(envPath),
		cli.WithDotEnv,
		cli.WithResolvedPaths(true),
	}
	if profiles == nil {
		opts = append(opts, cli.WithDefaultProfiles())
	} else {
		opts = append(opts, cli.WithProfiles(profiles))
	}
	po, err := cli.NewProjectOptions(composePaths, opts...)
	if err != nil {
		return nil, err
	}
	return po.LoadProject(ctx)
}

func checkProfiles(r *report, def, all *types.Project) {
	r.section("profiles: what `docker compose up` starts")
	for _, name := range all.ServiceNames() {
		svc := all.Services[name]
		_, enabled := def.Services[name]
		if want, ok := profileOnly[name]; ok {
			if enabled {
				r.fail("%s starts with `docker compose up`: it belongs under profiles: [%s]", name, want)
			} else if !contains(svc.Profiles, want) {
				r.fail("%s has profiles %v, want [%s]", name, svc.Profiles, want)
			} else {
				r.ok("%s only with --profile %s", name, want)
			}
			continue
		}
		if !enabled {
			r.fail("%s does not start with `docker compose up` (profiles %v)", name, svc.Profiles)
		}
	}
	r.info("default: %s", strings.Join(def.ServiceNames(), " "))
}

func checkBuilds(r *report, root string, p *types.Project) {
	r.section("builds")
	for _, name := range p.ServiceNames() {
		b := p.Services[name].Build
		if b == nil {
			continue
		}
		if st, err := os.Stat(b.Context); err != nil || !st.IsDir() {
			r.fail("%s: build context %s does not exist", name, rel(root, b.Context))
			continue
		}
		if b.DockerfileInline != "" {
			r.ok("%s: context %s, inline Dockerfile", name, rel(root, b.Context))
			continue
		}
		dockerfile := b.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(b.Context, dockerfile)
		}
		if st, err := os.Stat(dockerfile); err != nil || st.IsDir() {
			r.fail("%s: Dockerfile %s does not exist", name, rel(root, dockerfile))
			continue
		}
		r.ok("%s: context %s, %s", name, rel(root, b.Context), rel(root, dockerfile))
	}
}

func checkBindMounts(r *report, root string, p *types.Project) {
	r.section("bind mounts (host paths in the repository)")
	var missing []string
	for _, name := range p.ServiceNames() {
		for _, v := range p.Services[name].Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			where := fmt.Sprintf("%s: %s -> %s", name, rel(root, v.Source), v.Target)
			if !inside(root, v.Source) {
				r.fail("%s is outside the repository", where)
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				r.fail("%s is missing (docker would create an empty directory there)", where)
				missing = append(missing, rel(root, v.Source))
				continue
			}
			r.ok("%s", where)
		}
	}
	if len(missing) > 0 {
		r.info("missing: %s", strings.Join(missing, " "))
	}
}

func checkImages(r *report, p *types.Project) {
	r.section("images (pinned)")
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		if svc.Image == "" {
			r.fail("%s: no image (a built service needs an explicit, tagged image name too)", name)
			continue
		}
		ref, err := reference.ParseNormalizedNamed(svc.Image)
		if err != nil {
			r.fail("%s: image %q: %v", name, svc.Image, err)
			continue
		}
		tagged, isTagged := ref.(reference.Tagged)
		_, isDigested := ref.(reference.Digested)
		switch {
		case !isTagged && !isDigested:
			r.fail("%s: image %s has no tag (means latest)", name, svc.Image)
			continue
		case isTagged && tagged.Tag() == "latest":
			r.fail("%s: image %s is not pinned", name, svc.Image)
			continue
		}
		// The user's Docker resolves the registry: an image naming one (a host before the
		// first slash) would bypass their mirror settings and pin this file to one host.
		if familiar := reference.FamiliarString(ref); familiar != svc.Image {
			r.fail("%s: image %s names a registry; write it as %s", name, svc.Image, familiar)
			continue
		}
		path := reference.FamiliarName(ref)
		if want, listed := pinnedImages[path]; listed {
			if !isTagged || tagged.Tag() != want {
				r.fail("%s: image %s, the reference table pins %s:%s", name, svc.Image, path, want)
				continue
			}
		}
		built := ""
		if svc.Build != nil {
			built = " (built locally)"
		}
		r.ok("%-17s %s%s", name, svc.Image, built)
	}
}

func memoryLimit(svc types.ServiceConfig) int64 {
	if svc.Deploy != nil && svc.Deploy.Resources.Limits != nil && svc.Deploy.Resources.Limits.MemoryBytes > 0 {
		return int64(svc.Deploy.Resources.Limits.MemoryBytes)
	}
	return int64(svc.MemLimit)
}

func checkMemory(r *report, p *types.Project) {
	r.section("memory limits")
	var sum int64
	for _, name := range p.ServiceNames() {
		limit := memoryLimit(p.Services[name])
		if limit <= 0 {
			r.fail("%s has no memory limit (mem_limit or deploy.resources.limits.memory)", name)
			continue
		}
		sum += limit
		r.info("%-17s %5d MiB", name, limit>>20)
	}
	line := fmt.Sprintf("sum %d MiB (%.2f GiB) of %d MiB allowed", sum>>20, float64(sum)/float64(int64(1)<<30), memoryBudget>>20)
	if sum > memoryBudget {
		r.fail("%s", line)
	} else {
		r.ok("%s", line)
	}
}

func checkPorts(r *report, p *types.Project) {
	r.section("published ports")
	for _, name := range p.ServiceNames() {
		ports := p.Services[name].Ports
		if len(ports) == 0 {
			continue
		}
		allowed, ok := allowedPorts[name]
		for _, port := range ports {
			desc := fmt.Sprintf("%s: %s:%s -> %d/%s", name, orAll(port.HostIP), port.Published, port.Target, port.Protocol)
			switch {
			case !ok:
				r.fail("%s (this service may not publish ports)", desc)
			case !containsPort(allowed, port.Target) || (port.Published != "" && port.Published != fmt.Sprint(port.Target)):
				r.fail("%s (allowed: %v on the same host port)", desc, allowed)
			default:
				r.ok("%s", desc)
			}
		}
	}
}

// checkOverlay: a test overlay (tests/stack/compose.override.yml) may publish more ports,
// but only on loopback, and changes nothing else the rules above are about.
func checkOverlay(r *report, name string, merged *types.Project) {
	r.section("test overlay " + name)
	for _, svc := range merged.ServiceNames() {
		for _, port := range merged.Services[svc].Ports {
			desc := fmt.Sprintf("%s: %s:%s -> %d", svc, orAll(port.HostIP), port.Published, port.Target)
			if port.HostIP != "127.0.0.1" {
				r.fail("%s (a test overlay publishes on 127.0.0.1 only)", desc)
			} else {
				r.ok("%s", desc)
			}
		}
	}
}

func checkNetworks(r *report, p *types.Project) {
	r.section("networks")
	for _, n := range []string{appNetwork, observabilityNetwork} {
		if _, ok := p.Networks[n]; !ok {
			r.fail("network %q is not declared", n)
		}
	}
	var both []string
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		if svc.NetworkMode != "" {
			r.info("%-17s network_mode %s", name, svc.NetworkMode)
			continue
		}
		var joined []string
		for n := range svc.Networks {
			joined = append(joined, n)
			if n != appNetwork && n != observabilityNetwork {
				r.fail("%s is on network %q (only %s and %s exist in this design)", name, n, appNetwork, observabilityNetwork)
			}
		}
		if len(joined) == 0 {
			r.fail("%s joins no network (it would land on the implicit default network)", name)
			continue
		}
		sort.Strings(joined)
		r.info("%-17s %s", name, strings.Join(joined, " "))
		_, onApp := svc.Networks[appNetwork]
		_, onObs := svc.Networks[observabilityNetwork]
		if onApp && onObs {
			both = append(both, name)
		}
	}
	sawBridge := false
	for _, name := range both {
		if name == bridge {
			sawBridge = true
			r.ok("%s is the bridge between %s and %s", name, appNetwork, observabilityNetwork)
		} else {
			r.fail("%s is on both networks: only %s may bridge them", name, bridge)
		}
	}
	if !sawBridge {
		r.fail("%s is not on both %s and %s", bridge, appNetwork, observabilityNetwork)
	}
}

func checkDependencies(r *report, p *types.Project) {
	r.section("depends_on")
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		deps := make([]string, 0, len(svc.DependsOn))
		for d := range svc.DependsOn {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, dep := range deps {
			cond := svc.DependsOn[dep].Condition
			target, exists := p.Services[dep]
			desc := fmt.Sprintf("%s -> %s (%s)", name, dep, cond)
			switch {
			case !exists:
				r.fail("%s: no such service", desc)
			case len(svc.Profiles) == 0 && len(target.Profiles) > 0:
				r.fail("%s: a default service depends on a profile-only one", desc)
			case cond == types.ServiceConditionHealthy && !hasHealthcheck(target):
				r.fail("%s: %s has no healthcheck, it would never become healthy", desc, dep)
			case cond == types.ServiceConditionCompletedSuccessfully && target.Restart != "" && target.Restart != types.RestartPolicyNo:
				r.fail("%s: %s restarts (%s), it would never complete", desc, dep, target.Restart)
			default:
				r.ok("%s", desc)
			}
		}
	}
}

func checkHealthchecks(r *report, p *types.Project) {
	r.section("healthchecks")
	oneShot := map[string]bool{}
	for _, svc := range p.Services {
		for dep, d := range svc.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				oneShot[dep] = true
			}
		}
	}
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		switch {
		case oneShot[name]:
			r.info("%-17s one-shot (waited for with service_completed_successfully)", name)
		case len(svc.Profiles) > 0:
			r.info("%-17s on demand (profile %v)", name, svc.Profiles)
		case !hasHealthcheck(svc):
			r.fail("%s runs for good but has no healthcheck", name)
		default:
			r.ok("%-17s %s", name, strings.Join(svc.HealthCheck.Test, " "))
		}
	}
}

func checkVolumes(r *report, p *types.Project) {
	r.section("named volumes")
	for _, v := range requiredVolumes {
		if _, ok := p.Volumes[v]; !ok {
			r.fail("volume %s is not declared", v)
			continue
		}
		var users []string
		for _, name := range p.ServiceNames() {
			for _, m := range p.Services[name].Volumes {
				if m.Type == types.VolumeTypeVolume && m.Source == v {
					users = append(users, fmt.Sprintf("%s:%s", name, m.Target))
				}
			}
		}
		if len(users) == 0 {
			r.fail("volume %s is declared but no service mounts it", v)
			continue
		}
		r.ok("%s -> %s", v, strings.Join(users, ", "))
	}
}

func checkCredentials(r *report, envPath string, p *types.Project) {
	r.section("credentials (from the env file)")
	env, err := dotenv.GetEnvFromFile(types.Mapping{}, []string{envPath})
	if err != nil {
		r.fail("cannot read %s: %v", envPath, err)
		return
	}
	names := make([]string, 0, len(credentials))
	for k := range credentials {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, key := range names {
		want, ok := env[key]
		if !ok || want == "" {
			r.fail("%s is not set in %s", key, filepath.Base(envPath))
			continue
		}
		good := true
		for _, name := range credentials[key] {
			svc, exists := p.Services[name]
			if !exists {
				r.fail("%s: service %s does not exist", key, name)
				good = false
				continue
			}
			got := svc.Environment[key]
			if got == nil || *got != p.Environment[key] {
				r.fail("%s: service %s does not take it from the environment/env file", key, name)
				good = false
			}
		}
		if p.Environment[key] != want {
			r.info("%s is overridden by the shell environment", key)
		}
		if good {
			r.ok("%s -> %s", key, strings.Join(credentials[key], ", "))
		}
	}
}

// --- helpers ----------------------------------------------------------------------------

func hasHealthcheck(svc types.ServiceConfig) bool {
	hc := svc.HealthCheck
	return hc != nil && !hc.Disable && len(hc.Test) > 0 && hc.Test[0] != "NONE"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsPort(list []uint32, p uint32) bool {
	for _, x := range list {
		if x == p {
			return true
		}
	}
	return false
}

func orAll(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

func absUnder(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

func inside(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "compose-check:", err)
	os.Exit(2)
}
