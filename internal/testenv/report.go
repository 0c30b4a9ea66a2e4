package testenv

import (
	"encoding/json"
	"os"
	"sync"
	"testing"
)

// FaultReportEnv names the file the fault tests append their figures to
// (one JSON object a line); `make test-faults` sets it and prints the table
// (internal/faultreport). Unset: nothing is written.
const FaultReportEnv = "ZONESTATS_FAULT_REPORT"

// Fault is one fault test's outcome.
type Fault struct {
	Test       string `json:"test"`
	Kind       string `json:"kind"`
	Injected   int64  `json:"injected"`
	Produced   int64  `json:"produced"`
	Counted    int64  `json:"counted"`
	Lost       int64  `json:"lost"`
	Duplicated int64  `json:"duplicated"`
	DeadLetter int64  `json:"dead_lettered"`
}

var reportMu sync.Mutex

// ReportFault appends f to the fault report, if one is asked for.
func ReportFault(t testing.TB, f Fault) {
	t.Helper()
	path := os.Getenv(FaultReportEnv)
	if path == "" {
		return
	}
	f.Test = t.Name()
	b, _ := json.Marshal(f)
	reportMu.Lock()
	defer reportMu.Unlock()
	file, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Errorf("fault report: %v", err)
		return
	}
	defer file.Close()
	if _, err := file.Write(append(b, '\n')); err != nil {
		t.Errorf("fault report: %v", err)
	}
}
