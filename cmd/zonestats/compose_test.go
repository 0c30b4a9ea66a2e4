package main

// The Docker Compose cluster (docker/compose.yml) checked without Docker:
// its structure, the Dockerfiles it builds (and the files they copy), and
// that every zonestats subcommand, flag and environment variable it uses is
// one this binary has. Where a Docker Compose plugin is installed,
// `docker compose config -q` validates the file as well.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	repoRoot    = filepath.Join("..", "..")
	composeDir  = filepath.Join(repoRoot, "docker")
	composePath = filepath.Join(composeDir, "compose.yml")
)

// composeFile is the part of the Compose format that compose.yml uses.
// Top-level x- keys hold YAML anchors; any other unknown key, at the top or
// in a service, fails the test (a typo, or a key to add here).
type composeFile struct {
	Name       string                    `yaml:"name"`
	Services   map[string]composeService `yaml:"services"`
	Volumes    map[string]any            `yaml:"volumes"`
	Networks   map[string]any            `yaml:"networks"`
	Extensions map[string]any            `yaml:",inline"`
}

type composeService struct {
	Image       string              `yaml:"image"`
	Build       *composeBuild       `yaml:"build"`
	Command     any                 `yaml:"command"`
	Entrypoint  any                 `yaml:"entrypoint"`
	Environment any                 `yaml:"environment"`
	DependsOn   any                 `yaml:"depends_on"`
	Healthcheck *composeHealthcheck `yaml:"healthcheck"`
	Ports       []any               `yaml:"ports"`
	Volumes     []any               `yaml:"volumes"`
	Restart     string              `yaml:"restart"`
	Profiles    []string            `yaml:"profiles"`
	ShmSize     string              `yaml:"shm_size"`
}

// composeBuild is `build: DIR` or `build: {context, dockerfile, ...}`.
type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
	Target     string            `yaml:"target"`
}

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !slices.Contains([]string{"context", "dockerfile", "args", "target"}, k) {
			return fmt.Errorf("line %d: build: unknown key %q", n.Content[i].Line, k)
		}
	}
	type plain composeBuild
	return n.Decode((*plain)(b))
}

type composeHealthcheck struct {
	Test          any    `yaml:"test"`
	Interval      string `yaml:"interval"`
	Timeout       string `yaml:"timeout"`
	Retries       int    `yaml:"retries"`
	StartPeriod   string `yaml:"start_period"`
	StartInterval string `yaml:"start_interval"`
	Disable       bool   `yaml:"disable"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	if len(c.Services) == 0 {
		t.Fatalf("%s: no services", composePath)
	}
	return c
}

// TestComposeFile checks the structure: images or builds, dependencies
// and their conditions, healthchecks, ports, volumes, restart policies.
func TestComposeFile(t *testing.T) {
	c := readCompose(t)
	for k := range c.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("top-level key %q: not a Compose key", k)
		}
	}
	usedVolumes := map[string]bool{}
	hostPorts := map[string]string{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s: neither image nor build", name)
		}
		if s.Build != nil {
			if _, err := buildDockerfile(s.Build); err != nil {
				t.Errorf("service %s: %v", name, err)
			}
		}
		deps, err := dependencies(s.DependsOn)
		if err != nil {
			t.Errorf("service %s: depends_on: %v", name, err)
		}
		for _, dep := range sortedKeys(deps) {
			d, ok := c.Services[dep]
			if !ok {
				t.Errorf("service %s: depends on %s, which is not a service", name, dep)
				continue
			}
			switch cond := deps[dep]; cond {
			case "service_started":
			case "service_healthy":
				if d.Healthcheck == nil || d.Healthcheck.Disable {
					t.Errorf("service %s: waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			case "service_completed_successfully":
				if d.Restart == "always" || d.Restart == "unless-stopped" {
					t.Errorf("service %s: waits for %s to complete, which restarts %s", name, dep, d.Restart)
				}
			default:
				t.Errorf("service %s: depends on %s with unknown condition %q", name, dep, cond)
			}
			if len(s.Profiles) == 0 && len(d.Profiles) > 0 {
				t.Errorf("service %s (always started) depends on %s (profiles %v)", name, dep, d.Profiles)
			}
		}
		if h := s.Healthcheck; h != nil && !h.Disable {
			if len(words(h.Test)) == 0 {
				t.Errorf("service %s: healthcheck without test", name)
			}
			for _, d := range []string{h.Interval, h.Timeout, h.StartPeriod, h.StartInterval} {
				if _, err := time.ParseDuration(d); d != "" && err != nil {
					t.Errorf("service %s: healthcheck: %v", name, err)
				}
			}
		}
		switch r := s.Restart; {
		case r == "", r == "no", r == "always", r == "unless-stopped", r == "on-failure":
		case strings.HasPrefix(r, "on-failure:"):
			if _, err := strconv.Atoi(strings.TrimPrefix(r, "on-failure:")); err != nil {
				t.Errorf("service %s: restart %q", name, r)
			}
		default:
			t.Errorf("service %s: restart %q", name, r)
		}
		for _, p := range s.Ports {
			host, err := checkPort(p)
			if err != nil {
				t.Errorf("service %s: ports: %v", name, err)
			}
			if other, ok := hostPorts[host]; ok && host != "" {
				t.Errorf("service %s: host port %s also published by %s", name, host, other)
			}
			hostPorts[host] = name
		}
		for _, v := range s.Volumes {
			src, err := volumeSource(v)
			if err != nil {
				t.Errorf("service %s: volumes: %v", name, err)
				continue
			}
			switch {
			case src == "":
			case strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~"):
				if strings.HasPrefix(src, ".") {
					if _, err := os.Stat(filepath.Join(composeDir, src)); err != nil {
						t.Errorf("service %s: bind mount: %v", name, err)
					}
				}
			default:
				usedVolumes[src] = true
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("service %s: volume %s is not declared under volumes", name, src)
				}
			}
		}
	}
	for _, v := range sortedKeys(c.Volumes) {
		if !usedVolumes[v] {
			t.Errorf("volume %s is declared but no service uses it", v)
		}
	}
	if cycle := dependencyCycle(c); cycle != nil {
		t.Errorf("depends_on cycle: %s", strings.Join(cycle, " → "))
	}
}

// TestComposeDockerfiles checks the Dockerfiles the services build: the
// files they copy exist in the build context and are not left out of it by
// .dockerignore, a COPY --from names an earlier stage (or an image), and
// the zonestats image runs as a numeric non-root user. The build context
// holds everything the Go build needs (no .go or .sql file left out).
func TestComposeDockerfiles(t *testing.T) {
	c := readCompose(t)
	seen := map[string]bool{}
	for _, name := range sortedKeys(c.Services) {
		b := c.Services[name].Build
		if b == nil {
			continue
		}
		df, err := buildDockerfile(b)
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		if seen[df.path] {
			continue
		}
		seen[df.path] = true
		ignore, err := readDockerignore(df.context)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range df.copies {
			if cp.from != "" {
				if !slices.Contains(cp.stagesBefore, cp.from) && !strings.ContainsAny(cp.from, ":/") {
					t.Errorf("%s:%d: COPY --from=%s: no such stage before it", df.path, cp.line, cp.from)
				}
				continue
			}
			for _, src := range cp.sources {
				matches, err := filepath.Glob(filepath.Join(df.context, src))
				if err != nil || len(matches) == 0 {
					t.Errorf("%s:%d: COPY %s: not in the build context %s", df.path, cp.line, src, df.context)
					continue
				}
				if rel := path.Clean(src); rel != "." && ignore.excludes(rel) {
					t.Errorf("%s:%d: COPY %s: left out of the build context by .dockerignore", df.path, cp.line, src)
				}
			}
		}
		if len(df.entrypoint) > 0 && path.Base(df.entrypoint[0]) == "zonestats" {
			uid, _, _ := strings.Cut(df.user, ":")
			if n, err := strconv.Atoi(uid); err != nil || n == 0 {
				t.Errorf("%s: the zonestats image runs as USER %q, want a numeric non-root user", df.path, df.user)
			}
			err := filepath.WalkDir(df.context, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(df.context, p)
				rel = filepath.ToSlash(rel)
				if d.IsDir() && d.Name() == ".git" {
					return filepath.SkipDir
				}
				source := strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") ||
					strings.HasSuffix(p, ".sql") || rel == "go.mod" || rel == "go.sum"
				if !d.IsDir() && source && ignore.excludes(rel) {
					t.Errorf("%s: left out of the build context by .dockerignore, the Go build needs it", rel)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no service builds an image")
	}
}

// TestComposeMatchesBinary keeps compose.yml in step with the binary: every
// zonestats subcommand its services run exists, every flag passed is one
// of that subcommand's, every environment variable of ours that they set
// (ZONESTATS_*, KAFKA_BROKERS, DATABASE_URL) is one the subcommand reads,
// and every zonestats.NAME(...) called from a service exists in sql/.
func TestComposeMatchesBinary(t *testing.T) {
	c := readCompose(t)
	// The entrypoint of each built image, by service and by image name.
	entrypoints := map[string][]string{}
	imageEntrypoints := map[string][]string{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.Build == nil {
			continue
		}
		df, err := buildDockerfile(s.Build)
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		entrypoints[name] = df.entrypoint
		if s.Image != "" {
			imageEntrypoints[s.Image] = df.entrypoint
		}
	}
	used := map[string]bool{}
	sqlCall := regexp.MustCompile(`\bzonestats\.([a-z_][a-z0-9_]*)\s*\(`)
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		ep := words(s.Entrypoint)
		if ep == nil {
			ep = entrypoints[name]
			if s.Build == nil {
				ep = imageEntrypoints[s.Image]
			}
		}
		argv := append(slices.Clone(ep), words(s.Command)...)
		for _, m := range sqlCall.FindAllStringSubmatch(strings.Join(argv, " "), -1) {
			if !sqlObjectExists(m[1]) {
				t.Errorf("service %s: calls zonestats.%s, which sql/ does not define", name, m[1])
			}
		}
		if len(argv) == 0 || path.Base(argv[0]) != "zonestats" {
			continue
		}
		if len(argv) < 2 {
			t.Errorf("service %s: runs zonestats without a subcommand", name)
			continue
		}
		sub, args := argv[1], argv[2:]
		cmd, ok := binaryCommand(sub)
		if !ok {
			t.Errorf("service %s: zonestats has no subcommand %q", name, sub)
			continue
		}
		used[sub] = true
		for _, err := range cmd.check(args) {
			t.Errorf("service %s: zonestats %s: %v", name, sub, err)
		}
		env, err := environment(s.Environment)
		if err != nil {
			t.Errorf("service %s: environment: %v", name, err)
		}
		for _, k := range sortedKeys(env) {
			ours := strings.HasPrefix(k, "ZONESTATS_") || k == "KAFKA_BROKERS" || k == "DATABASE_URL"
			if ours && !cmd.env[k] {
				t.Errorf("service %s: sets %s, which zonestats %s does not read (it reads %s)",
					name, k, sub, strings.Join(sortedKeys(cmd.env), ", "))
			}
		}
	}
	for _, sub := range []string{"migrate", "load"} {
		if !used[sub] {
			t.Errorf("no service runs zonestats %s", sub)
		}
	}
}

// TestComposeConfig runs `docker compose config -q`, where Docker Compose
// is installed (it needs no Docker engine).
func TestComposeConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "compose", "version").CombinedOutput(); err != nil {
		t.Logf("docker compose config skipped: `docker compose version`: %v %s", err, bytes.TrimSpace(out))
		return
	}
	out, err := exec.CommandContext(ctx, "docker", "compose", "-f", composePath, "config", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("docker compose config: %v\n%s", err, out)
	}
}

// subcommand is what `zonestats NAME -h` tells of a subcommand.
type subcommand struct {
	name        string
	flags       map[string]bool // name → takes a value
	env         map[string]bool // environment variables it reads
	positionals []string        // allowed positional arguments (migrate: up, status)
}

var (
	flagLine  = regexp.MustCompile(`(?m)^  -([^\s=]+)( \S+)?`)
	envInHelp = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)\)|\[([A-Z][A-Z0-9_]*)\]`)
	usageLine = regexp.MustCompile(`(?m)^Usage: zonestats \S+ \[flags\] (\S+)$`)
)

// binaryCommand asks run for the subcommand's -h. The environment
// variables it reads are those it looks up while defining its flags
// (recorded through getenv) and those its help names.
func binaryCommand(name string) (subcommand, bool) {
	cmd := subcommand{name: name, flags: map[string]bool{}, env: map[string]bool{}}
	getenv := func(k string) string { cmd.env[k] = true; return "" }
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{name, "-h"}, getenv, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		return cmd, false
	}
	help := stdout.String() + stderr.String()
	for _, m := range flagLine.FindAllStringSubmatch(help, -1) {
		cmd.flags[m[1]] = m[2] != ""
	}
	for _, m := range envInHelp.FindAllStringSubmatch(help, -1) {
		cmd.env[m[1]+m[2]] = true
	}
	if m := usageLine.FindStringSubmatch(help); m != nil {
		cmd.positionals = strings.Split(m[1], "|")
	}
	return cmd, len(cmd.flags) > 0
}

// check parses args as the flag package does (flags, then positional
// arguments) and reports unknown flags and unexpected arguments.
func (c subcommand) check(args []string) []error {
	var errs []error
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		name, _, inline := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		value, ok := c.flags[name]
		if !ok {
			return append(errs, fmt.Errorf("no flag -%s", name)) // the rest cannot be told apart
		}
		if value && !inline {
			i++
			if i == len(args) {
				errs = append(errs, fmt.Errorf("flag -%s without a value", name))
			}
		}
	}
	rest := args[min(i, len(args)):]
	switch {
	case len(c.positionals) == 0 && len(rest) > 0:
		errs = append(errs, fmt.Errorf("takes no arguments, given %q", rest))
	case len(c.positionals) > 0 && (len(rest) != 1 || !slices.Contains(c.positionals, rest[0])):
		errs = append(errs, fmt.Errorf("arguments %q, want one of %s", rest, strings.Join(c.positionals, ", ")))
	}
	return errs
}

func sqlObjectExists(name string) bool {
	for _, dir := range []string{"functions", "procedures", "aggregates", "views"} {
		if _, err := os.Stat(filepath.Join(repoRoot, "sql", dir, name+".sql")); err == nil {
			return true
		}
	}
	return false
}

// dockerfile is what the test reads of a Dockerfile.
type dockerfile struct {
	path, context string
	copies        []dockerCopy
	entrypoint    []string // of the last stage
	user          string   // of the last stage
}

type dockerCopy struct {
	line         int
	from         string
	sources      []string
	stagesBefore []string
}

// buildDockerfile reads the Dockerfile of a build section (paths relative
// to compose.yml, the Dockerfile relative to the context).
func buildDockerfile(b *composeBuild) (*dockerfile, error) {
	ctx := filepath.Join(composeDir, b.Context)
	if st, err := os.Stat(ctx); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", b.Context)
	}
	name := b.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	return readDockerfile(filepath.Join(ctx, name), ctx)
}

func readDockerfile(p, context string) (*dockerfile, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	df := &dockerfile{path: p, context: context}
	var stages []string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			f := strings.Fields(rest)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stages = append(stages, f[2])
			} else {
				stages = append(stages, strconv.Itoa(len(stages)))
			}
			df.entrypoint, df.user = nil, ""
		case "COPY", "ADD":
			cp := dockerCopy{line: start, stagesBefore: slices.Clone(stages[:max(len(stages)-1, 0)])}
			args := strings.Fields(rest)
			for len(args) > 0 && strings.HasPrefix(args[0], "--") {
				if v, ok := strings.CutPrefix(args[0], "--from="); ok {
					cp.from = v
				}
				args = args[1:]
			}
			if len(args) > 0 && strings.HasPrefix(args[0], "[") {
				if err := json.Unmarshal([]byte(strings.Join(args, " ")), &args); err != nil {
					return nil, fmt.Errorf("%s:%d: %v", p, start, err)
				}
			}
			if len(args) < 2 {
				return nil, fmt.Errorf("%s:%d: %s without source and destination", p, start, instr)
			}
			cp.sources = args[:len(args)-1]
			df.copies = append(df.copies, cp)
		case "ENTRYPOINT":
			df.entrypoint = nil
			if err := json.Unmarshal([]byte(rest), &df.entrypoint); err != nil {
				df.entrypoint = []string{"/bin/sh", "-c", rest}
			}
		case "USER":
			df.user = rest
		}
	}
	return df, nil
}

// dockerignore is a build context's .dockerignore: patterns relative to
// the context root, a leading ! re-including; the last match decides. (No
// ** here: the project's .dockerignore does without it.)
type dockerignore []string

func readDockerignore(context string) (dockerignore, error) {
	b, err := os.ReadFile(filepath.Join(context, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var d dockerignore
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			d = append(d, l)
		}
	}
	return d, err
}

// excludes reports whether the slash-separated path rel (or a directory
// holding it) is left out of the build context.
func (d dockerignore) excludes(rel string) bool {
	excluded := false
	for _, p := range d {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(p, "!")), "/")
		for q := rel; q != "." && q != "/"; q = path.Dir(q) {
			if ok, _ := path.Match(p, q); ok {
				excluded = !neg
				break
			}
		}
	}
	return excluded
}

// dependencies is depends_on as service → condition (the list form means
// service_started).
func dependencies(v any) (map[string]string, error) {
	out := map[string]string{}
	switch v := v.(type) {
	case nil:
	case []any:
		for _, d := range v {
			s, ok := d.(string)
			if !ok {
				return nil, fmt.Errorf("%v is not a service name", d)
			}
			out[s] = "service_started"
		}
	case map[string]any:
		for s, d := range v {
			m, ok := d.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: %v is not a mapping", s, d)
			}
			cond, _ := m["condition"].(string)
			if cond == "" {
				cond = "service_started"
			}
			out[s] = cond
		}
	default:
		return nil, fmt.Errorf("%v is neither a list nor a mapping", v)
	}
	return out, nil
}

func dependencyCycle(c composeFile) []string {
	state := map[string]int{} // 1: on the path, 2: done
	var visit func(s string, trail []string) []string
	visit = func(s string, trail []string) []string {
		switch state[s] {
		case 1:
			return append(trail, s)
		case 2:
			return nil
		}
		state[s] = 1
		deps, _ := dependencies(c.Services[s].DependsOn)
		for _, d := range sortedKeys(deps) {
			if cycle := visit(d, append(trail, s)); cycle != nil {
				return cycle
			}
		}
		state[s] = 2
		return nil
	}
	for _, s := range sortedKeys(c.Services) {
		if cycle := visit(s, nil); cycle != nil {
			return cycle
		}
	}
	return nil
}

// environment is a service's environment as a mapping (the list form is
// KEY=VALUE items).
func environment(v any) (map[string]string, error) {
	out := map[string]string{}
	switch v := v.(type) {
	case nil:
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%v is not KEY=VALUE", e)
			}
			k, val, _ := strings.Cut(s, "=")
			out[k] = val
		}
	case map[string]any:
		for k, val := range v {
			if val == nil {
				out[k] = ""
			} else {
				out[k] = fmt.Sprint(val)
			}
		}
	default:
		return nil, fmt.Errorf("%v is neither a list nor a mapping", v)
	}
	return out, nil
}

// words is a command, entrypoint or healthcheck test as a list (a string
// is split at spaces); nil when unset.
func words(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, len(v))
		for i, w := range v {
			out[i] = fmt.Sprint(w)
		}
		return out
	}
	return nil
}

var interpolation = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}`)

// checkPort checks one ports entry ([[IP:]HOST:]CONTAINER[/PROTOCOL], with
// ${VAR:-default} taken as its default, or the long form) and returns its
// [IP:]HOST part ("" when not published on a fixed host port).
func checkPort(v any) (string, error) {
	var host, ip string
	var container string
	switch v := v.(type) {
	case string:
		s := interpolation.ReplaceAllString(v, "$1")
		s, proto, _ := strings.Cut(s, "/")
		if proto != "" && proto != "tcp" && proto != "udp" {
			return "", fmt.Errorf("%q: protocol %q", v, proto)
		}
		parts := strings.Split(s, ":")
		container = parts[len(parts)-1]
		switch len(parts) {
		case 1:
		case 2:
			host = parts[0]
		case 3:
			ip, host = parts[0], parts[1]
			if net.ParseIP(ip) == nil {
				return "", fmt.Errorf("%q: %q is not an IP address", v, ip)
			}
		default:
			return "", fmt.Errorf("%q: not [[IP:]HOST:]CONTAINER", v)
		}
	case map[string]any:
		container = fmt.Sprint(v["target"])
		if p, ok := v["published"]; ok {
			host = interpolation.ReplaceAllString(fmt.Sprint(p), "$1")
		}
		if i, ok := v["host_ip"]; ok {
			ip = fmt.Sprint(i)
		}
	default:
		return "", fmt.Errorf("%v: neither a string nor a mapping", v)
	}
	ports := []string{container}
	if host != "" {
		ports = append(ports, host)
	}
	for _, p := range ports {
		lo, hi, isRange := strings.Cut(p, "-")
		for _, n := range []string{lo, hi} {
			if n == "" && !isRange {
				continue
			}
			if port, err := strconv.Atoi(n); err != nil || port < 1 || port > 65535 {
				return "", fmt.Errorf("%v: %q is not a port", v, p)
			}
		}
	}
	if host == "" {
		return "", nil
	}
	return ip + ":" + host, nil
}

// volumeSource is the source of a volumes entry: a named volume, a path
// (bind mount), or "" (an anonymous volume).
func volumeSource(v any) (string, error) {
	switch v := v.(type) {
	case string:
		src, target, ok := strings.Cut(v, ":")
		if !ok {
			return "", nil
		}
		if !strings.HasPrefix(target, "/") {
			return "", fmt.Errorf("%q: target is not an absolute path", v)
		}
		return src, nil
	case map[string]any:
		src, _ := v["source"].(string)
		if t, _ := v["type"].(string); t == "bind" && src != "" && !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".") {
			src = "./" + src
		}
		return src, nil
	}
	return "", fmt.Errorf("%v: neither a string nor a mapping", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
