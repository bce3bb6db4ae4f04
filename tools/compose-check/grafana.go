package main

// The rules for the Grafana container, each learnt from Grafana 13's source or issue tracker
// (Grafana cannot run on the machines that test this project, so these are checked by reading
// the compose file), and the rule that the budget table in the file's header comment states the
// limits the services really have.

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
)

var (
	// Grafana 13's documented minimum ("Minimum recommended memory: 512 MB").
	grafanaMinMemory = int64(512) << 20

	// Grafana 13 turned response gzip on, and up to these patch releases every HEAD request
	// with Accept-Encoding: gzip leaked a goroutine and its compression buffers (fixed by
	// grafana/grafana#130893). Per release line: the last affected patch.
	grafanaGzipLeak = map[string]int{"13.0": 7, "13.1": 4, "13.2": 0}
)

// grafanaProblems returns what is wrong with the grafana service; none when it is fine.
func grafanaProblems(svc types.ServiceConfig) []string {
	var problems []string
	env := func(key string) string {
		if v, ok := svc.Environment[key]; ok && v != nil {
			return *v
		}
		return ""
	}
	if ref, err := reference.ParseNormalizedNamed(svc.Image); err == nil {
		if tagged, ok := ref.(reference.Tagged); ok {
			if line, patch, ok := minorAndPatch(tagged.Tag()); ok {
				if last, affected := grafanaGzipLeak[line]; affected && patch <= last {
					problems = append(problems, fmt.Sprintf("image %s leaks memory per gzip HEAD "+
						"request; the first fixed %s release is %s.%d", svc.Image, line, line, last+1))
				}
			}
		}
	}
	// Gzip costs about 150 MiB of idle memory in Grafana 13 (grafana/grafana#123017); the
	// browser talks to it over loopback, where compression saves nothing.
	if env("GF_SERVER_ENABLE_GZIP") != "false" {
		problems = append(problems, "GF_SERVER_ENABLE_GZIP must be \"false\": Grafana 13 "+
			"compresses responses by default and needs far more memory for it")
	}
	if limit := memoryLimit(svc); limit > 0 && limit < grafanaMinMemory {
		problems = append(problems, fmt.Sprintf("mem_limit %d MiB is under Grafana's documented "+
			"minimum of %d MiB", limit>>20, grafanaMinMemory>>20))
	}
	// An anonymous Viewer cannot open Explore (the datasources:explore permission), and every
	// correlation link (exemplar, trace id, trace to logs) opens Explore; viewers_can_edit is
	// the setting that grants it to Viewers.
	if env("GF_AUTH_ANONYMOUS_ENABLED") == "true" && env("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer" &&
		env("GF_USERS_VIEWERS_CAN_EDIT") != "true" {
		problems = append(problems, "anonymous Viewers cannot open Explore, so no exemplar, "+
			"trace or log link works for them: set GF_USERS_VIEWERS_CAN_EDIT: \"true\"")
	}
	// Anonymous visitors may look and explore, never administer: Viewer is the only role
	// for them, sign-up stays off, and the admin login comes from .env (checkCredentials).
	if env("GF_AUTH_ANONYMOUS_ENABLED") == "true" && env("GF_AUTH_ANONYMOUS_ORG_ROLE") != "Viewer" {
		problems = append(problems, fmt.Sprintf("anonymous users get the role %q: only "+
			"Viewer keeps them from administering Grafana", env("GF_AUTH_ANONYMOUS_ORG_ROLE")))
	}
	if env("GF_USERS_ALLOW_SIGN_UP") != "false" {
		problems = append(problems, "GF_USERS_ALLOW_SIGN_UP must be \"false\": anyone "+
			"reaching the port could create an account")
	}
	return problems
}

func minorAndPatch(tag string) (string, int, bool) {
	parts := strings.SplitN(strings.TrimPrefix(tag, "v"), ".", 3)
	if len(parts) != 3 {
		return "", 0, false
	}
	digits := parts[2]
	if i := strings.IndexFunc(digits, func(c rune) bool { return c < '0' || c > '9' }); i >= 0 {
		digits = digits[:i]
	}
	patch, err := strconv.Atoi(digits)
	if err != nil {
		return "", 0, false
	}
	return parts[0] + "." + parts[1], patch, true
}

func checkGrafana(r *report, p *types.Project) {
	r.section("grafana (memory, gzip, what anonymous viewers can open)")
	svc, ok := p.Services["grafana"]
	if !ok {
		r.fail("no grafana service")
		return
	}
	problems := grafanaProblems(svc)
	for _, problem := range problems {
		r.fail("grafana: %s", problem)
	}
	if len(problems) == 0 {
		r.ok("grafana: %s, gzip off, %d MiB, anonymous viewers can explore", svc.Image, memoryLimit(svc)>>20)
	}
}

// budgetRow matches a row of the header comment's budget table: "#   name   123   note".
var budgetRow = regexp.MustCompile(`^#\s{2,}([a-z][a-z0-9-]*)\s+(\d+)(\s|$)`)

// budgetTable reads the "Memory budget" table from the compose file's header comment.
func budgetTable(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows := map[string]int64{}
	in := false
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasPrefix(line, "# Memory budget") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if len(rows) > 0 && (strings.TrimSpace(line) == "#" || !strings.HasPrefix(line, "#")) {
			break // a blank comment line ends the table
		}
		m := budgetRow.FindStringSubmatch(line)
		if m == nil {
			continue // the header, a note's continuation line
		}
		mib, _ := strconv.ParseInt(m[2], 10, 64)
		rows[m[1]] = mib
	}
	return rows, scanner.Err()
}

// checkBudgetTable keeps the table a reader sees in step with the limits Docker applies.
func checkBudgetTable(r *report, path string, p *types.Project) {
	r.section("memory budget table (header comment) matches mem_limit")
	rows, err := budgetTable(path)
	if err != nil {
		r.fail("cannot read %s: %v", path, err)
		return
	}
	if len(rows) == 0 {
		r.fail("no \"# Memory budget\" table in the header comment")
		return
	}
	var sum int64
	for _, name := range p.ServiceNames() {
		limit := memoryLimit(p.Services[name]) >> 20
		sum += limit
		stated, ok := rows[name]
		switch {
		case !ok:
			r.fail("%s (%d MiB) is missing from the budget table", name, limit)
		case stated != limit:
			r.fail("%s: the table says %d MiB, mem_limit is %d MiB", name, stated, limit)
		}
	}
	for name := range rows {
		if _, ok := p.Services[name]; !ok && name != "total" {
			r.fail("the budget table lists %s, which is not a service", name)
		}
	}
	if total, ok := rows["total"]; !ok || total != sum {
		r.fail("the table's total is %d MiB, the limits add up to %d MiB", total, sum)
		return
	}
	r.ok("%d rows, total %d MiB", len(rows)-1, sum)
}
