package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"zonestats/loader"
)

// runLoaderRSS runs `zonestats load` (default batch size) as a separate
// process over the run's topic, polls its peak RSS (VmHWM) every 50 ms
// while it loads, and stops it with SIGTERM once everything is loaded.
func runLoaderRSS(ctx context.Context, e *env, r *runState) error {
	url, conn, done, err := e.newDBConn(ctx, "rss")
	if err != nil {
		return err
	}
	defer done()

	groupSeq++
	logPath := filepath.Join(e.tmp, fmt.Sprintf("load-%d.log", groupSeq))
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(e.binPath, "load",
		"-brokers", strings.Join(e.brokers, ","), "-topic", r.topic,
		"-group", fmt.Sprintf("bench-rss-%d", groupSeq), "-database-url", url, "-log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the bench
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	running := true
	defer func() {
		if running {
			cmd.Process.Kill()
			<-exited
		}
	}()
	fail := func(err error) error {
		b, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w\nzonestats load output:\n%s", err, tail(string(b), 2000))
	}

	var peakKB int64
	deadline := time.Now().Add(30 * time.Minute)
	for {
		if kb, err := vmHWM(cmd.Process.Pid); err == nil {
			peakKB = max(peakKB, kb)
		}
		behind, err := loader.Behind(ctx, conn, r.topic, r.wm)
		if err != nil {
			return err
		}
		if behind == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("zonestats load still %d messages behind after 30 minutes", behind))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			running = false
			return fail(fmt.Errorf("zonestats load exited early: %v", err))
		case <-time.After(50 * time.Millisecond):
		}
	}
	if kb, err := vmHWM(cmd.Process.Pid); err == nil {
		peakKB = max(peakKB, kb)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		running = false
		if err != nil {
			return fail(fmt.Errorf("zonestats load did not exit cleanly on SIGTERM: %v", err))
		}
	case <-time.After(60 * time.Second):
		return fail(fmt.Errorf("zonestats load did not stop within 60s of SIGTERM"))
	}
	if peakKB == 0 {
		return fail(fmt.Errorf("could not read VmHWM of zonestats load"))
	}
	if err := checkRawCount(ctx, url, e.n); err != nil {
		return err
	}
	r.set("loader_rss_mb", float64(peakKB)/1024)
	return nil
}

// vmHWM reads the peak resident set size (kB) of a process.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

func tail(s string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
