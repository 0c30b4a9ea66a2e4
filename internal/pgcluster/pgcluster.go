// Package pgcluster starts throwaway PostgreSQL clusters: initdb in a
// temporary directory, postgres on a free loopback port, removed on Stop.
// Tests, benchmarks and the demo use it; it never touches a system cluster.
//
// initdb and postgres refuse to run as root; when the current user is root
// the cluster is created and run as the "postgres" OS user.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options configure a throwaway cluster.
type Options struct {
	// BinDir holds initdb and postgres. Empty: $PG_BINDIR, then the newest
	// /usr/lib/postgresql/*/bin, then $PATH.
	BinDir string
	// Settings are extra postgresql.conf lines (name → value), e.g.
	// "shared_preload_libraries": "pg_cron".
	Settings map[string]string
	// Durable keeps fsync on. Throwaway clusters run with fsync off by default.
	Durable bool
}

// Cluster is one running throwaway PostgreSQL server.
type Cluster struct {
	Dir    string // data directory (and socket directory)
	Port   int
	BinDir string
	cmd    *exec.Cmd
	cred   *syscall.Credential
	done   chan struct{}
	opts   Options
}

// FindBinDir returns the directory holding initdb and postgres.
func FindBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("pgcluster: PostgreSQL server binaries not found (install postgresql-15 or set PG_BINDIR)")
}

// postgresCredential is the postgres OS user, which runs the server when
// the current user is root.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: running as root needs the postgres OS user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start creates and starts a cluster. Stop removes it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin := opts.BinDir
	if bin == "" {
		var err error
		if bin, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "zonestats-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, BinDir: bin, opts: opts}
	if os.Geteuid() == 0 {
		if c.cred, err = postgresCredential(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgcluster: initdb: %w\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			c.cleanup()
			return nil, err
		}
		c.Port = port
		if err = c.start(ctx); err == nil {
			return c, nil
		}
		if attempt == 4 {
			c.cleanup()
			return nil, err
		}
	}
}

func (c *Cluster) conf() []string {
	settings := map[string]string{
		"listen_addresses":          "'127.0.0.1'",
		"port":                      strconv.Itoa(c.Port),
		"unix_socket_directories":   "'" + c.Dir + "'",
		"max_connections":           "200",
		"shared_buffers":            "'256MB'",
		"work_mem":                  "'16MB'",
		"maintenance_work_mem":      "'256MB'",
		"max_wal_size":              "'4GB'",
		"checkpoint_timeout":        "'15min'",
		"log_min_messages":          "warning",
		"log_line_prefix":           "'%m [%p] '",
		"max_locks_per_transaction": "256",
	}
	if !c.opts.Durable {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range c.opts.Settings {
		settings[k] = v
	}
	var args []string
	for k, v := range settings {
		args = append(args, "-c", k+"="+strings.Trim(v, "'"))
	}
	return args
}

func (c *Cluster) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(c.Dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := append([]string{"-D", filepath.Join(c.Dir, "data")}, c.conf()...)
	cmd := exec.Command(filepath.Join(c.BinDir, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server's own client connections (Citus between nodes) read
	// client certificates from $HOME: keep it inside the cluster.
	cmd.Env = append(os.Environ(), "HOME="+c.Dir)
	// Pdeathsig: the server goes away with the process that started it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("pgcluster: start postgres: %w", err)
	}
	c.cmd = cmd
	c.done = make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(c.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return fmt.Errorf("pgcluster: postgres exited during start-up:\n%s", c.LogTail(2000))
		case <-ctx.Done():
			c.kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if c.ready() {
			return nil
		}
	}
	c.kill()
	return fmt.Errorf("pgcluster: postgres not ready after 60s:\n%s", c.LogTail(2000))
}

func (c *Cluster) ready() bool {
	out, err := exec.Command(filepath.Join(c.BinDir, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port)).CombinedOutput()
	_ = out
	return err == nil
}

// DSN returns a connection string for database db as superuser postgres.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// LogTail returns the last n bytes of the server log.
func (c *Cluster) LogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "postgres.log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// Stop shuts the server down ("fast" mode, SIGINT) and removes its directory.
func (c *Cluster) Stop() error {
	c.shutdown(syscall.SIGINT, 30*time.Second)
	return c.cleanup()
}

// Restart stops the server with the given mode ("fast": SIGINT, "immediate":
// SIGQUIT, "kill": SIGKILL) and starts it again on the same port and data.
func (c *Cluster) Restart(ctx context.Context, mode string) error {
	sig := map[string]syscall.Signal{"fast": syscall.SIGINT, "immediate": syscall.SIGQUIT, "kill": syscall.SIGKILL}[mode]
	if sig == 0 {
		return fmt.Errorf("pgcluster: unknown stop mode %q", mode)
	}
	c.shutdown(sig, 30*time.Second)
	if sig == syscall.SIGKILL {
		// Children of a SIGKILLed postmaster keep running until they notice.
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)
	}
	return c.start(ctx)
}

// Halt stops the server ("fast" or "immediate") and keeps its data
// directory; Resume starts it again on the same port.
func (c *Cluster) Halt(mode string) error {
	sig := map[string]syscall.Signal{"fast": syscall.SIGINT, "immediate": syscall.SIGQUIT}[mode]
	if sig == 0 {
		return fmt.Errorf("pgcluster: unknown stop mode %q", mode)
	}
	c.shutdown(sig, 30*time.Second)
	return nil
}

// Resume starts a server stopped by Halt.
func (c *Cluster) Resume(ctx context.Context) error { return c.start(ctx) }

func (c *Cluster) shutdown(sig syscall.Signal, wait time.Duration) {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(wait):
		c.kill()
	}
}

func (c *Cluster) kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

func (c *Cluster) cleanup() error { return os.RemoveAll(c.Dir) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
